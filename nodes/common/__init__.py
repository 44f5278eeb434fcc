"""What every node program shares: JSONL event logs, process lifecycle (SIGTERM, children
that die with their parent), DASH manifests, and nginx configured per host.

Nothing here knows about the engine; node programs import it, never `cdnlab`.
"""
