"""The engine's services stage: node programs (`python -m nodes.<name>`) started on emulated
hosts, checked healthy, and stopped again.

    base     NodeProgram: start on a host, record the PID in the run's ledger, wait until
             it answers, SIGTERM then SIGKILL on stop, stderr kept in the run directory
    origin   the origin (nginx over the content store, and the ingest endpoint)
    edge     edge servers in pull or push mode, with their load monitor
    fill     the push fill agent on the origin host
    dns      the DNS redirector, configured from the topology (clusters, TSIG key, token)
    probe    RTT probes, one per edge cluster, pushing signed updates to the redirector
    client   viewers: a plan of DASH sessions on a client host
"""
