"""Just enough ISO BMFF (MP4) box reading to check fragmented DASH segments: the track's
timescale and codec from an init segment, and each media segment's start time and
duration from its `moof` (tfdt, tfhd, trun).

This is how cdnlab verifies a transcode from the bytes ffmpeg wrote, rather than from what
the MPD claims: that every representation's segments start at the same instants (aligned
switching points), last the configured duration, and carry the declared codec.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf"}


class Mp4Error(ValueError):
    """Bytes that are not the fragmented MP4 expected."""


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box between start and end."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise Mp4Error("truncated 64-bit box header")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Mp4Error(f"box {kind!r} at {pos} runs past the end ({size} bytes)")
        yield kind, pos + header, pos + size
        pos += size


def find(data: bytes, path: list[bytes], start: int = 0, end: int | None = None
         ) -> tuple[int, int] | None:
    """Payload bounds of the first box at `path` (e.g. [b"moov", b"trak", b"mdia"])."""
    for kind, body, stop in boxes(data, start, end):
        if kind == path[0]:
            if len(path) == 1:
                return body, stop
            return find(data, path[1:], body, stop)
    return None


@dataclass(frozen=True)
class TrackInfo:
    timescale: int
    sample_entry: str  # avc1, vp09, mp4a, Opus, hev1…
    default_sample_duration: int


@dataclass(frozen=True)
class SegmentTiming:
    start: int  # in the track's timescale
    duration: int
    samples: int


def read_init(data: bytes) -> TrackInfo:
    mdhd = find(data, [b"moov", b"trak", b"mdia", b"mdhd"])
    stsd = find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
    if mdhd is None or stsd is None:
        raise Mp4Error("init segment has no moov/trak/mdia/mdhd and stsd")
    version = data[mdhd[0]]
    timescale = struct.unpack_from(">I", data, mdhd[0] + (20 if version == 1 else 12))[0]
    # stsd: full box header (4), entry count (4), then the first sample entry box
    entry_type = data[stsd[0] + 12: stsd[0] + 16].decode("latin-1")
    trex = find(data, [b"moov", b"mvex", b"trex"])
    default = struct.unpack_from(">I", data, trex[0] + 12)[0] if trex else 0
    return TrackInfo(timescale, entry_type, default)


def read_segment(data: bytes, track: TrackInfo) -> SegmentTiming:
    traf = find(data, [b"moof", b"traf"])
    if traf is None:
        raise Mp4Error("media segment has no moof/traf")
    start = 0
    default = track.default_sample_duration
    total = samples = 0
    seen_tfdt = False
    for kind, body, _stop in boxes(data, *traf):
        flags = int.from_bytes(data[body + 1: body + 4], "big")
        if kind == b"tfhd":
            pos = body + 8  # version/flags, track id
            if flags & 0x01:
                pos += 8
            if flags & 0x02:
                pos += 4
            if flags & 0x08:
                default = struct.unpack_from(">I", data, pos)[0]
        elif kind == b"tfdt":
            seen_tfdt = True
            fmt = ">Q" if data[body] == 1 else ">I"
            start = struct.unpack_from(fmt, data, body + 4)[0]
        elif kind == b"trun":
            count = struct.unpack_from(">I", data, body + 4)[0]
            pos = body + 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
            step = 4 * bin(flags & 0xF00).count("1")
            for _ in range(count):
                total += struct.unpack_from(">I", data, pos)[0] if flags & 0x100 else default
                pos += step
            samples += count
    if not seen_tfdt:
        raise Mp4Error("media segment has no tfdt (decode time)")
    return SegmentTiming(start, total, samples)
