"""Benchmarks (`cdnlab bench …`): speed and fidelity targets, printed as tables with ratios
against a baseline measured in the same run. Never timed assertions in tests."""
