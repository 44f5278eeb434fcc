"""Programs that run on emulated hosts, one package each, each runnable as
`python -m nodes.<name>`: origin, edge, dns, probe, client, controller.

They are independent of the engine: they talk over the emulated network and write JSONL
events (`t`, `node`, `event`) to a path they are given. None has landed yet; the engine's
network stage (cdnlab.net) is what exists so far.
"""
