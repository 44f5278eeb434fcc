"""A content creator's uploader (`python -m nodes.uploader`): sends a video to the origin's
ingest endpoint over HTTP across the emulated network, and logs what the origin answered."""
