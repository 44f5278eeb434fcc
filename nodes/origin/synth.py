"""Synthetic titles: hundreds of DASH titles in seconds, for popularity and cache studies.

Each title gets a real MPD in the same shape ffmpeg writes and segment files whose sizes
follow each representation's bitrate with variable-bitrate noise (log-normal, mean kept,
seeded per title so a seed always gives the same bytes). Files are sparse (`truncate`), so
a 200-title catalog costs almost no disk, yet nginx serves every byte and caches store
them: players and caches cannot tell them from encoded titles.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodes.common.conventions import SYNTH_PREFIX, title_names
from nodes.common.dash import AdaptationSet, Presentation, Representation, write_mpd
from nodes.origin.catalog import representation_record, title_entry
from nodes.origin.profiles import DEFAULT_LADDER, Profile, TitleSpec
from nodes.origin.store import ContentStore
from nodes.origin.transcode import MANIFEST, VERSION_CHARS, segment_names

CODEC_STRINGS = {"avc": "avc1.64001f", "vp9": "vp09.00.31.08", "hevc": "hvc1.1.6.L93.B0"}
AUDIO_CODEC = "mp4a.40.2"
INIT_BYTES = 800
# one profile (H.264, the default ladder) with audio unless a spec says otherwise
SYNTH_SPEC = TitleSpec(profiles=(Profile("avc", DEFAULT_LADDER),))


@dataclass(frozen=True)
class SynthOptions:
    titles: int = 100
    duration_s: float = 60.0
    spec: TitleSpec = SYNTH_SPEC
    vbr_sigma: float = 0.25  # spread of segment sizes around the bitrate
    seed: int = 1
    prefix: str = SYNTH_PREFIX


def _segment_sizes(rng: random.Random, kbps: int, count: int, segment_s: float,
                   last_s: float, sigma: float) -> list[int]:
    mean = kbps * 1000 / 8 * segment_s
    sizes = []
    for k in range(count):
        scale = last_s / segment_s if k == count - 1 else 1.0
        noise = math.exp(rng.gauss(-sigma * sigma / 2, sigma)) if sigma else 1.0
        sizes.append(max(188, round(mean * scale * noise)))
    return sizes


def _presentation(spec: TitleSpec, duration_s: float, version: str) -> Presentation:
    init_name, media_name = segment_names(version)
    sets, next_id = [], 0
    for number, profile in enumerate(spec.profiles):
        reps = []
        for rung in profile.ladder:
            reps.append(Representation(str(next_id), "video", "video/mp4",
                                       CODEC_STRINGS[profile.name], rung.kbps * 1000,
                                       rung.width, rung.height, init_name, media_name, 1,
                                       spec.segment_s))
            next_id += 1
        sets.append(AdaptationSet(str(number), "video", tuple(reps)))
    if spec.audio_kbps:
        sets.append(AdaptationSet(str(len(sets)), "audio", (Representation(
            str(next_id), "audio", "audio/mp4", AUDIO_CODEC, spec.audio_kbps * 1000, None,
            None, init_name, media_name, 1, spec.segment_s),)))
    return Presentation(duration_s, tuple(sets))


def write_title(store: ContentStore, title: str,
                options: SynthOptions) -> tuple[Path, dict[str, Any]]:
    """Stage one synthetic title; (staging directory, catalog entry)."""
    spec = options.spec
    key = hashlib.sha256(f"synth:{options.seed}:{title}:{options.duration_s}:{options.vbr_sigma}"
                         f":{spec.key()}".encode()).hexdigest()
    rng = random.Random(key)
    presentation = _presentation(spec, options.duration_s, key[:VERSION_CHARS])
    staged = store.staging_dir(title)
    (staged / MANIFEST).write_text(write_mpd(presentation))
    count = math.ceil(options.duration_s / spec.segment_s - 1e-9)
    last_s = options.duration_s - spec.segment_s * (count - 1)
    profiles: dict[str, list[dict[str, Any]]] = {p.name: [] for p in spec.profiles}
    audio: list[dict[str, Any]] = []
    sets = presentation.adaptation_sets
    owners: list[Profile | None] = [*spec.profiles, None]
    for aset, owner in zip(sets, owners, strict=False):
        for rep in aset.representations:
            sizes = _segment_sizes(rng, rep.bandwidth // 1000, count, spec.segment_s, last_s,
                                   options.vbr_sigma if owner else 0.0)
            for path, size in [(rep.init_path(), INIT_BYTES)] + [
                    (rep.segment_path(rep.start_number + k), s) for k, s in enumerate(sizes)]:
                with open(staged / path, "wb") as out:
                    os.truncate(out.fileno(), size)
            record = representation_record(rep, INIT_BYTES, sizes, spec.segment_s)
            (profiles[owner.name] if owner else audio).append(record)
    entry = title_entry(title, key, None, True, options.duration_s, spec.segment_s,
                        spec.to_dict(), profiles, audio)
    return staged, entry


def synthesize(store: ContentStore, options: SynthOptions) -> list[str]:
    """Create `options.titles` titles and publish them in one catalog update."""
    titles = title_names(options.titles, options.prefix)
    staged: list[tuple[Path, dict[str, Any]]] = []
    try:
        for title in titles:
            staged.append(write_title(store, title, options))
        store.publish(staged)
    finally:  # published directories were moved away; anything left is a failure's
        for directory, _entry in staged:
            shutil.rmtree(directory, ignore_errors=True)
    return titles
