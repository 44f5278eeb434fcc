"""The origin in the cloud, where every title enters the CDN (`python -m nodes.origin`).

    profiles   bitrate ladders and device profiles (codec per player family) per title
    ffprobe    what a source file is, by ffprobe; refuses what is not a video
    transcode  one ffmpeg run (built with ffmpeg-python) → a DASH presentation, with progress
    verify     checks the bytes ffmpeg wrote: aligned segments, codecs, bitrates
    store      the content store: atomic, idempotent publishing and the JSON catalog
    ingest     source file → transcode → verify → publish, all or nothing
    catalog    catalog entries: representations and the size of every segment
    synth      synthetic titles (sizes without encoding) for scale experiments
    server     the HTTP ingest endpoint beside nginx, which serves the store
    fill       the push fill agent: ranked titles to edge clusters in a window, capped
    testsource test masters (grainy test pattern and a tone) made with ffmpeg
"""
