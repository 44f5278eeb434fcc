"""Scenarios: the YAML a user writes (spec), validated into a typed `Scenario`, and the
runner that replays it on a real network and writes a results bundle.

    spec      the scenario file → `Scenario`, with errors naming the field and the fix
    workload  viewers: arrivals, Zipf title choice, ABR mix → session plans per client host
    timeline  events in scenario seconds, applied to the running emulation
    runner    network → content → services → workload + timeline → results → teardown
"""
