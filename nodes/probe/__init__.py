"""RTT probes (`python -m nodes.probe`), one per edge cluster: measure the RTT from the
cluster to every client network (ICMP echo or TCP SYN, read through kernel-filtered
sockets), smooth it, and push it
(and the cluster's load, when an edge load endpoint is given) to the DNS redirector as
TSIG-signed RFC 2136 UPDATEs, so answers follow live measurements.

    measure  one round of probes: the best RTT per target
    smooth   exponentially weighted smoothing of each target's RTT
    push     the signed UPDATE that replaces the cluster's RTT (and load) records
"""
