"""Bitrate ladders and device profiles: what versions of a title the origin makes.

A *profile* is a format for a family of players (H.264/AVC for everything, VP9 for browsers
that prefer it, HEVC for TVs) with its own ladder of rungs (bitrate, resolution). A title's
`TitleSpec` lists the profiles it asks for, the segment duration and the audio bitrate; its
`key()` is part of the content hash that makes ingest idempotent.

In YAML or JSON:

    segment_s: 4
    audio_kbps: 128
    profiles:
      avc: default                      # the ABR-research ladder
      vp9: [750k@640x360, 1850k@1280x720]
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from nodes.common import ladder as ladders
from nodes.common.conventions import AUDIO_KBPS
from nodes.common.ladder import DEFAULT_LADDER, Rung
from nodes.origin.errors import ContentError


@dataclass(frozen=True)
class Codec:
    name: str
    encoder: str
    sample_entry: str  # the MP4 sample entry the codec string starts with
    browsers: bool  # plays through Media Source Extensions in Chromium (see notes)

    def stream_options(self, index: int, rung: Rung, gop: int) -> dict[str, Any]:
        """ffmpeg options for output video stream `index` (per-stream specifiers only, so
        profiles never override each other)."""
        s = f"v:{index}"
        rate = f"{rung.kbps}k"
        opts: dict[str, Any] = {f"c:{s}": self.encoder, f"b:{s}": rate, f"maxrate:{s}": rate,
                                f"bufsize:{s}": rate, f"g:{s}": gop, f"keyint_min:{s}": gop}
        if self.encoder == "libx264":
            # constant rate with filler (nal-hrd=cbr): segments carry the ladder's bitrate
            opts |= {f"preset:{s}": "superfast", f"sc_threshold:{s}": 0,
                     f"x264-params:{s}": "nal-hrd=cbr:force-cfr=1"}
        elif self.encoder == "libvpx-vp9":
            opts |= {f"minrate:{s}": rate, f"deadline:{s}": "realtime", f"cpu-used:{s}": 8,
                     f"row-mt:{s}": 1, f"tile-columns:{s}": 2}
        elif self.encoder == "libx265":
            opts |= {f"preset:{s}": "ultrafast", f"tag:{s}": "hvc1",
                     f"x265-params:{s}": "scenecut=0:log-level=error"}
        return opts

    def settings(self) -> str:
        """The encoder settings `stream_options` gives every rung, in words."""
        fixed = {"c", "b", "maxrate", "bufsize", "minrate", "g", "keyint_min"}
        opts = self.stream_options(0, Rung(1, 2, 2), 1)
        own = " ".join(f"{k.split(':')[0]}={v}" for k, v in opts.items()
                       if k.split(":")[0] not in fixed)
        bounded = "min=" if any(k.startswith("minrate") for k in opts) else ""
        return (f"{self.encoder} {own}; rate = {bounded}max = buffer = the rung's bitrate, "
                "a key frame at every segment start (GOP one segment)")


CODECS = {
    "avc": Codec("avc", "libx264", "avc1", True),
    "vp9": Codec("vp9", "libvpx-vp9", "vp09", True),
    "hevc": Codec("hevc", "libx265", "hvc1", False),
}


@dataclass(frozen=True)
class Profile:
    name: str
    ladder: tuple[Rung, ...]

    @property
    def codec(self) -> Codec:
        return CODECS[self.name]


@dataclass(frozen=True)
class TitleSpec:
    profiles: tuple[Profile, ...] = field(default_factory=lambda: (
        Profile("avc", DEFAULT_LADDER), Profile("vp9", DEFAULT_LADDER)))
    segment_s: float = 4.0
    audio_kbps: int = AUDIO_KBPS

    def key(self) -> str:
        """A hash of everything that shapes the output, for idempotent ingest."""
        canonical = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def fitted(self, width: int, height: int) -> TitleSpec:
        """This spec for a master of `width`x`height`: no rung above its resolution
        (`nodes.common.ladder.fit_to_source`)."""
        return TitleSpec(tuple(Profile(p.name, ladders.fit_to_source(p.ladder, width, height))
                               for p in self.profiles), self.segment_s, self.audio_kbps)

    def to_dict(self) -> dict[str, Any]:
        return {"segment_s": self.segment_s, "audio_kbps": self.audio_kbps,
                "profiles": {p.name: [str(r) for r in p.ladder] for p in self.profiles}}


def parse_rung(value: Any, where: str) -> Rung:
    """`nodes.common.ladder.parse_rung`, refusing as an ingest does (ContentError)."""
    try:
        return ladders.parse_rung(value, where)
    except ladders.LadderError as err:
        raise ContentError(str(err)) from err


def parse_title_spec(data: dict[str, Any] | None, where: str = "title spec") -> TitleSpec:
    """A TitleSpec from YAML/JSON data; missing fields take the defaults."""
    if not data:
        return TitleSpec()
    if not isinstance(data, dict):
        raise ContentError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = set(data) - {"segment_s", "audio_kbps", "profiles"}
    if unknown:
        raise ContentError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} "
                           "(known: segment_s, audio_kbps, profiles)")
    default = TitleSpec()
    profiles = default.profiles
    if "profiles" in data:
        raw = data["profiles"]
        if isinstance(raw, list | tuple):
            raw = {name: "default" for name in raw}
        if not isinstance(raw, dict) or not raw:
            raise ContentError(f"{where}: profiles must name at least one of "
                               f"{', '.join(CODECS)}")
        built = []
        for name, ladder in raw.items():
            if name not in CODECS:
                raise ContentError(f"{where}: unknown profile {name!r} "
                                   f"(known: {', '.join(CODECS)})")
            if ladder in (None, "default"):
                rungs = DEFAULT_LADDER
            elif isinstance(ladder, list) and ladder:
                rungs = tuple(parse_rung(r, f"{where}: profiles.{name}") for r in ladder)
            else:
                raise ContentError(f"{where}: profiles.{name} must be 'default' or a list "
                                   "of rungs like 750k@640x360")
            built.append(Profile(name, tuple(sorted(rungs, key=lambda r: r.kbps))))
        profiles = tuple(built)
    try:
        segment_s = float(data.get("segment_s", default.segment_s))
        audio_kbps = int(data.get("audio_kbps", default.audio_kbps))
    except (TypeError, ValueError) as err:
        raise ContentError(f"{where}: segment_s and audio_kbps must be numbers ({err})") from err
    if not 0.5 <= segment_s <= 30:
        raise ContentError(f"{where}: segment_s {segment_s} is outside 0.5–30 seconds")
    if audio_kbps < 0:
        raise ContentError(f"{where}: audio_kbps must be 0 (no audio) or positive")
    return TitleSpec(profiles, segment_s, audio_kbps)
