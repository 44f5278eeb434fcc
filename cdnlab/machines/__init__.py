"""One run across several machines, on Mininet Cluster Edition (`mininet.examples.cluster`).

`spec` reads which machines (`--cluster HOST,…`, or a `cluster:` section), `placement`
decides which machine holds each node, `remote` holds the node classes that run a node's
shell and programs on its machine over ssh, and `agent` is what the engine runs on the
other machines: it puts each remote process in the run's cgroup there, ties it to its ssh
session, and undoes what the run created there. The engine (`cdnlab.net.emulation`) uses
them when a run names machines; on one machine none of this is imported.
"""
