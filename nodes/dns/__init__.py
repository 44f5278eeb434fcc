"""The DNS redirector (`python -m nodes.dns --config FILE`): an authoritative server for the
CDN zone that answers each client with the cluster a policy chooses.

The record naming scheme it reads (cluster addresses, health, load, RTT) is shared with
the probes and the engine, in `nodes/common/records.py`.

    zone      the zone as an immutable snapshot; RFC 2136-style operations make a new one
    view      what policies read: clusters, health, load, RTT per client network
    policies  pure functions (query, client, view) → (cluster, reason)
    ecs       EDNS Client Subnet (RFC 7871) option parsing and answering
    resolver  a query (dnslib) → a reply, with its decision
    fastpath  the same answers for plain A queries straight from the wire, cached
    update    RFC 2136 UPDATE with TSIG (dnspython) → zone operations, signed replies
    rest      the JSON REST API over the same operations
    server    UDP on a thread of its own, TCP in asyncio, the decision log
"""
