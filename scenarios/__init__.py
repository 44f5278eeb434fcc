"""The shipped scenarios (YAML, see README.md here), installed with cdnlab as package data
and found through this package (`cdnlab.scenario.spec.SCENARIOS_DIR`)."""
