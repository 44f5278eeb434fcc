"""Checks a presentation from the bytes on disk before it is published, and measures what
the catalog records: per representation, each segment's size and duration.

Checked: the MPD parses and lists every rung of every profile asked for, plus audio if
any; each init segment's sample entry is the profile's codec, and each representation's
`codecs` string is the one its init segment implies; every media segment exists
and starts where the same-numbered segment of every other video representation starts
(aligned switching points); the presentation covers the source's duration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from nodes.common.dash import ManifestError, Presentation, Representation, parse_mpd
from nodes.common.mp4 import Mp4Error, read_init, read_segment
from nodes.origin.errors import ContentError
from nodes.origin.profiles import CODECS, TitleSpec


@dataclass(frozen=True)
class RepresentationFacts:
    rep: Representation
    profile: str  # avc, vp9, hevc, audio
    sample_entry: str
    codecs: str  # what the init segment implies (RFC 6381)
    init_bytes: int
    segment_bytes: tuple[int, ...]
    segment_starts_s: tuple[float, ...]
    segment_durations_s: tuple[float, ...]

    @property
    def measured_kbps(self) -> float:
        seconds = sum(self.segment_durations_s)
        return sum(self.segment_bytes) * 8 / 1000 / seconds if seconds else 0.0


def _measure(directory: Path, presentation: Presentation, rep: Representation,
             profile: str) -> RepresentationFacts:
    init_path = directory / rep.init_path()
    try:
        track = read_init(init_path.read_bytes())
        sizes, starts, durations = [], [], []
        for k in range(presentation.segment_count(rep)):
            path = directory / rep.segment_path(rep.start_number + k)
            data = path.read_bytes()
            timing = read_segment(data, track)
            sizes.append(len(data))
            starts.append(timing.start / track.timescale)
            durations.append(timing.duration / track.timescale)
    except FileNotFoundError as err:
        raise ContentError(f"transcode incomplete: {Path(err.filename).name} is missing",
                           500) from err
    except Mp4Error as err:
        raise ContentError(f"transcode wrote a bad segment for representation {rep.id}: {err}",
                           500) from err
    if rep.codecs != track.codecs:
        raise ContentError(f"representation {rep.id}: the MPD says codecs={rep.codecs!r}, its "
                           f"init segment is {track.codecs!r}", 500)
    return RepresentationFacts(rep, profile, track.sample_entry, track.codecs,
                               init_path.stat().st_size, tuple(sizes), tuple(starts),
                               tuple(durations))


def verify_presentation(directory: Path, spec: TitleSpec, source_duration_s: float,
                        expect_audio: bool) -> tuple[Presentation, list[RepresentationFacts]]:
    try:
        presentation = parse_mpd((directory / "manifest.mpd").read_bytes())
    except (OSError, ManifestError) as err:
        raise ContentError(f"transcode produced no usable MPD: {err}", 500) from err
    videos = presentation.sets("video")
    if len(videos) != len(spec.profiles):
        raise ContentError(f"MPD has {len(videos)} video adaptation sets for "
                           f"{len(spec.profiles)} profiles", 500)
    facts: list[RepresentationFacts] = []
    for aset, profile in zip(videos, spec.profiles, strict=True):
        if len(aset.representations) != len(profile.ladder):
            raise ContentError(f"profile {profile.name}: {len(aset.representations)} "
                               f"representations for {len(profile.ladder)} rungs", 500)
        for rep in aset.representations:
            measured = _measure(directory, presentation, rep, profile.name)
            if measured.sample_entry != CODECS[profile.name].sample_entry:
                raise ContentError(f"profile {profile.name}: representation {rep.id} carries "
                                   f"{measured.sample_entry}", 500)
            facts.append(measured)
    audio = presentation.sets("audio")
    if expect_audio and not audio:
        raise ContentError("the source has audio but the MPD has none", 500)
    facts += [_measure(directory, presentation, rep, "audio")
              for aset in audio for rep in aset.representations]
    video_facts = [f for f in facts if f.profile != "audio"]
    reference = video_facts[0]
    for other in video_facts[1:]:
        if len(other.segment_starts_s) != len(reference.segment_starts_s) or any(
                not math.isclose(a, b, abs_tol=1e-3)
                for a, b in zip(other.segment_starts_s, reference.segment_starts_s,
                                strict=True)):
            raise ContentError(f"segments of representation {other.rep.id} do not start where "
                               f"those of {reference.rep.id} do: switching would break", 500)
    covered = reference.segment_starts_s[-1] + reference.segment_durations_s[-1]
    if covered < source_duration_s - max(0.5, spec.segment_s / 2):
        raise ContentError(f"the video decodes to {covered:.1f} s of {source_duration_s:.1f} s: "
                           "the file is damaged or cut short", 422)
    return presentation, facts
