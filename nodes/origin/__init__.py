"""The origin in the cloud, where every title enters the CDN (`python -m nodes.origin`).

    profiles   bitrate ladders and device profiles (codec per player family) per title
    probe      what a source file is, by ffprobe; refuses what is not a video
    transcode  one ffmpeg run (built with ffmpeg-python) → a DASH presentation, with progress
    verify     checks the bytes ffmpeg wrote: aligned segments, codecs, bitrates
    store      the content store: atomic, idempotent publishing and the JSON catalog
    ingest     source file → transcode → verify → publish, all or nothing
    synth      synthetic titles (sizes without encoding) for scale experiments
    server     the HTTP ingest endpoint beside nginx, which serves the store
"""
