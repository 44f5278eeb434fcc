"""Programs that run on emulated hosts, one package each, each runnable as
`python -m nodes.<name>`: origin, uploader, edge, dns, probe, client, controller.

They are independent of the engine: they talk over the emulated network and write JSONL
events (`t`, `node`, `event`) to a path they are given. `common` holds what they share
(event logs, lifecycle, DASH manifests, MP4 boxes, nginx per host, small HTTP tools).
"""
