"""What every node program shares, and the engine may import too: the testbed's names and
defaults (conventions), the DNS record naming scheme (records), bitrate ladders (ladder),
JSONL event logs (events), process lifecycle (SIGTERM, children that die with their
parent), DASH manifests (dash) and MP4 boxes (mp4), nginx configured per host, the JSON
base of their HTTP APIs (httpjson), file hashing (files), and two small HTTP tools run
inside hosts (fetch, wait_http).

Nothing here knows about the engine; node programs import it, never `cdnlab`.
"""
