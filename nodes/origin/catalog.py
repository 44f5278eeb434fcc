"""Catalog entries: what caches, fill agents and players need to plan without reading every
file — per title its profiles and audio, per representation the bandwidth, resolution and
codec, the URL templates, and the real size of the init segment and of every segment.

    {"version": 1, "titles": {"<title>": {
        "title", "content_key", "source_sha256", "synthetic", "published",
        "duration_s", "segment_s", "segments", "mpd", "bytes", "spec",
        "profiles": {"avc": {"codec_family": "avc1", "representations": [REP…]}, …},
        "audio": [REP…]}}}

    REP = {"id", "bandwidth", "kbps", "measured_kbps", "codecs", "mime_type", "width",
           "height", "init", "media", "start_number", "init_bytes", "segment_bytes": […]}

Paths are relative to the title's directory (`<title>/`), as in the MPD.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from nodes.common.dash import Representation


def representation_record(rep: Representation, init_bytes: int,
                          segment_bytes: Sequence[int], segment_s: float) -> dict[str, Any]:
    seconds = segment_s * len(segment_bytes)
    return {
        "id": rep.id, "bandwidth": rep.bandwidth, "kbps": round(rep.bandwidth / 1000),
        "measured_kbps": round(sum(segment_bytes) * 8 / 1000 / seconds, 1) if seconds else 0,
        "codecs": rep.codecs, "mime_type": rep.mime_type, "width": rep.width,
        "height": rep.height, "init": rep.init_path(), "media": rep.media.replace(
            "$RepresentationID$", rep.id), "start_number": rep.start_number,
        "init_bytes": init_bytes, "segment_bytes": list(segment_bytes)}


def title_entry(title: str, content_key: str, source_sha256: str | None, synthetic: bool,
                duration_s: float, segment_s: float, spec: dict[str, Any],
                profiles: dict[str, list[dict[str, Any]]],
                audio: list[dict[str, Any]]) -> dict[str, Any]:
    reps = [r for reps in profiles.values() for r in reps] + audio
    return {
        "title": title, "content_key": content_key, "source_sha256": source_sha256,
        "synthetic": synthetic, "published": round(time.time(), 3),
        "duration_s": round(duration_s, 3), "segment_s": segment_s,
        "segments": max((len(r["segment_bytes"]) for r in reps), default=0),
        "mpd": f"{title}/manifest.mpd",
        "bytes": sum(r["init_bytes"] + sum(r["segment_bytes"]) for r in reps),
        "spec": spec,
        "profiles": {name: {"codec_family": reps[0]["codecs"].split(".")[0] if reps else "",
                            "representations": reps}
                     for name, reps in profiles.items()},
        "audio": audio,
    }
