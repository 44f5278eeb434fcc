"""The engine's services stage: node programs (`python -m nodes.<name>`) started on emulated
hosts, checked healthy, and stopped again.

    base     NodeProgram: start on a host, record the PID in the run's ledger, wait until
             it answers, SIGTERM then SIGKILL on stop, stderr kept in the run directory
    origin   the origin (nginx over the content store, and the ingest endpoint)
"""
