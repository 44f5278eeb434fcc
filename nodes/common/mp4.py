"""Just enough ISO BMFF (MP4) box reading to check fragmented DASH segments: the track's
timescale and codec from an init segment, and each media segment's start time and
duration from its `moof` (tfdt, tfhd, trun).

This is how cdnlab verifies a transcode from the bytes ffmpeg wrote, rather than from what
the MPD claims: that every representation's segments start at the same instants (aligned
switching points), last the configured duration, and carry the declared codec; and how
the MPD's `codecs` strings are made (`codec_string`, RFC 6381 §3 with the codec's own
rules, see its docstring).
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
    codecs: str = ""  # the RFC 6381 string its init segment implies (codec_string)


# bytes of a sample entry before its child boxes (ISO/IEC 14496-12 §12.1.3, §12.2.3):
# VisualSampleEntry 78, AudioSampleEntry (version 0) 28
_ENTRY_FIELDS = {"vide": 78, "soun": 28}


def _hevc(config: bytes) -> str:
    """ISO/IEC 14496-15 Annex E.3: profile space (none, A, B, C) and profile idc; the
    32 compatibility flags in reverse bit order, hex without leading zeros; tier (L/H) and
    level idc; the six constraint bytes, hex, trailing zero bytes dropped."""
    space, tier, idc = config[1] >> 6, (config[1] >> 5) & 1, config[1] & 0x1F
    flags = int(f"{int.from_bytes(config[2:6], 'big'):032b}"[::-1], 2)
    constraints = list(config[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    parts = [f"{'' if space == 0 else 'ABC'[space - 1]}{idc}", f"{flags:X}",
             f"{'LH'[tier]}{config[12]}", *(f"{b:02X}" for b in constraints)]
    return ".".join(parts)


def _descriptor(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, payload start, payload end) of an MPEG-4 descriptor (ISO/IEC 14496-1 §8.3.3:
    a tag byte, then the size in 7-bit groups)."""
    tag, pos, size = data[pos], pos + 1, 0
    for _ in range(4):
        byte = data[pos]
        pos += 1
        size = (size << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return tag, pos, pos + size


def _mp4a(data: bytes, body: int, end: int) -> str:
    """`mp4a.OTI.AOT` from esds (RFC 6381 §3.3): the DecoderConfigDescriptor's object type
    indication in hex, the AudioSpecificConfig's audio object type in decimal."""
    tag, pos, _end = _descriptor(data, body + 4)  # after the full box header
    if tag != 0x03:
        raise Mp4Error("esds holds no ES_Descriptor")
    flags = data[pos + 2]  # after ES_ID: dependence, URL and OCR flags
    pos += 3 + (2 if flags & 0x80 else 0)
    if flags & 0x40:
        pos += 1 + data[pos]
    pos += 2 if flags & 0x20 else 0
    tag, pos, _end = _descriptor(data, pos)
    if tag != 0x04:
        raise Mp4Error("esds holds no DecoderConfigDescriptor")
    oti = data[pos]
    tag, info, _ = _descriptor(data, pos + 13)
    if tag != 0x05:
        return f"mp4a.{oti:02x}"
    aot = data[info] >> 3
    if aot == 31:
        aot = 32 + (((data[info] & 0x07) << 3) | (data[info + 1] >> 5))
    return f"mp4a.{oti:02x}.{aot}"


def codec_string(data: bytes, entry_type: str, handler: str, body: int, end: int) -> str:
    """The RFC 6381 `codecs` value of a sample entry (payload `body`..`end`):
    avc1/avc3 `avc1.PPCCLL` (avcC profile, compatibility, level; ISO/IEC 14496-15 §5.3.3),
    hvc1/hev1 per `_hevc`, vp09 `vp09.PP.LL.DD` (vpcC profile, level, bit depth; VP9 codec
    ISO media file format binding §5), mp4a per `_mp4a`, Opus `opus`, av01 left to its
    sample entry name. An entry without the configuration box it needs raises Mp4Error."""
    children = body + _ENTRY_FIELDS.get(handler, 0)
    found = {kind: (start, stop) for kind, start, stop in boxes(data, children, end)}
    if entry_type in ("avc1", "avc3"):
        if b"avcC" not in found:
            raise Mp4Error(f"{entry_type} sample entry without avcC")
        config = data[found[b"avcC"][0]:]
        return f"{entry_type}.{config[1]:02x}{config[2]:02x}{config[3]:02x}"
    if entry_type in ("hvc1", "hev1"):
        if b"hvcC" not in found:
            raise Mp4Error(f"{entry_type} sample entry without hvcC")
        return f"{entry_type}.{_hevc(data[found[b'hvcC'][0]:])}"
    if entry_type == "vp09":
        if b"vpcC" not in found:
            raise Mp4Error("vp09 sample entry without vpcC")
        config = data[found[b"vpcC"][0] + 4:]  # after the full box header
        return f"vp09.{config[0]:02d}.{config[1]:02d}.{config[2] >> 4:02d}"
    if entry_type == "mp4a":
        if b"esds" not in found:
            raise Mp4Error("mp4a sample entry without esds")
        return _mp4a(data, *found[b"esds"])
    if entry_type == "Opus":
        return "opus"
    return entry_type


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
    entry = next(boxes(data, stsd[0] + 8, stsd[1]), None)
    if entry is None:
        raise Mp4Error("stsd holds no sample entry")
    entry_type = entry[0].decode("latin-1")
    hdlr = find(data, [b"moov", b"trak", b"mdia", b"hdlr"])
    handler = data[hdlr[0] + 8: hdlr[0] + 12].decode("latin-1") if hdlr else ""
    trex = find(data, [b"moov", b"mvex", b"trex"])
    default = struct.unpack_from(">I", data, trex[0] + 12)[0] if trex else 0
    return TrackInfo(timescale, entry_type, default,
                     codec_string(data, entry_type, handler, entry[1], entry[2]))


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
