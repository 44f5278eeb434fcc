"""What a source file is, asked of ffprobe: duration, picture size, frame rate, audio.

Anything ffprobe cannot read as a video (a text file, random bytes, a file cut before its
index) is refused here with ffprobe's own words, before any transcoding starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg

from nodes.origin.errors import ContentError


@dataclass(frozen=True)
class SourceInfo:
    duration_s: float
    width: int
    height: int
    fps: float
    has_audio: bool
    container: str


def _last_line(text: bytes | None) -> str:
    lines = [line for line in (text or b"").decode(errors="replace").splitlines() if line]
    return lines[-1] if lines else "no output"


def probe_source(path: Path, label: str | None = None) -> SourceInfo:
    """`label` names the file in messages (an upload's temporary path means nothing)."""
    try:
        info = ffmpeg.probe(str(path))
    except ffmpeg.Error as err:
        said = _last_line(err.stderr).replace(str(path), label or path.name)
        raise ContentError(f"not a readable video file: ffprobe says: {said}", 415) from err
    streams = info.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    if video is None:
        raise ContentError("not a video file: it has no video stream", 415)
    try:
        duration = float(info.get("format", {}).get("duration") or video.get("duration") or 0)
    except ValueError:
        duration = 0.0
    if duration <= 0:
        raise ContentError("the video has no duration: it may be cut short or empty", 422)
    rate = video.get("avg_frame_rate") or video.get("r_frame_rate") or "0/1"
    try:
        fps = float(Fraction(rate)) if rate != "0/0" else 0.0
    except (ValueError, ZeroDivisionError):
        fps = 0.0
    return SourceInfo(duration, int(video.get("width", 0)), int(video.get("height", 0)),
                      fps or 25.0, any(s.get("codec_type") == "audio" for s in streams),
                      info.get("format", {}).get("format_name", ""))
