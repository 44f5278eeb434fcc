"""`cdnlab abr simulate`: replay a bandwidth trace against the ABR algorithms, offline.

The title is either a catalog entry (`--store DIR --title ID`, real segment sizes of the
chosen profile) or the default ladder at constant bitrate (`--duration`). The trace is a
file in either format of `cdnlab.traces`. `--algo all` compares every algorithm on the
same trace; `--json` prints one object per algorithm. To reproduce a reference's settings:
`--initial-kbps` sets the start-up estimate of every algorithm that takes one, and
`--param key=value` sets a parameter of every algorithm that has it (`--param gp=3`,
`--param avoid_oscillation=false`); the parameters in force are printed with the results.
"""

from __future__ import annotations

import inspect
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdnlab import jsonout
from cdnlab.errors import CdnlabError
from cdnlab.traces import load_trace
from nodes.client.algorithms import ALGORITHMS, make_abr
from nodes.client.simulate import SimTitle, TraceLink, simulate
from nodes.common.conventions import AUDIO_KBPS
from nodes.common.ladder import DEFAULT_LADDER

COLUMNS = ("algo", "qoe_per_s", "qoe", "avg_bitrate_kbps", "rebuffer_s", "rebuffer_count",
           "switches", "startup_s")


@dataclass(frozen=True)
class Settings:
    max_buffer_s: float = 30.0
    rtt_ms: float = 0.0
    initial_kbps: float | None = None
    audio_kbps: float = AUDIO_KBPS  # the synthetic title's audio; 0: video only (as Sabre)
    params: dict[str, Any] = field(default_factory=dict)

    def for_algorithm(self, name: str) -> dict[str, Any]:
        """The parameters of `params` (and the initial estimate) this algorithm takes."""
        accepted = set(inspect.signature(ALGORITHMS[name].__init__).parameters) - {"self"}
        chosen = {k: v for k, v in self.params.items() if k in accepted}
        if self.initial_kbps is not None and "initial_kbps" in accepted:
            chosen["initial_kbps"] = self.initial_kbps
        return chosen


def load_title(store: str | None, title: str | None, profile: str, duration_s: float,
               segment_s: float, audio_kbps: float) -> SimTitle:
    """The default ladder at constant bitrate, or a catalog title's real segment sizes; with
    audio (its lowest-bandwidth representation for a catalog title) unless `audio_kbps` is
    0."""
    if title is None:
        return SimTitle.constant([r.kbps for r in DEFAULT_LADDER], segment_s, duration_s,
                                 audio_kbps)
    if store is None:
        raise CdnlabError("--title needs --store DIR (a content store with catalog.json)")
    catalog_path = Path(store) / "catalog.json"
    try:
        entry = json.loads(catalog_path.read_text())["titles"][title]
    except OSError as err:
        raise CdnlabError(f"{catalog_path}: cannot read the catalog: {err.strerror}") from err
    except KeyError:
        raise CdnlabError(f"{catalog_path}: no title {title!r}") from None
    if profile not in entry["profiles"]:
        raise CdnlabError(f"title {title!r} has no profile {profile!r} "
                          f"(it has {', '.join(entry['profiles'])})")
    reps = sorted(entry["profiles"][profile]["representations"], key=lambda r: r["bandwidth"])
    sizes = tuple(zip(*(r["segment_bytes"] for r in reps), strict=True))
    audio = sorted(entry.get("audio", []), key=lambda r: r["bandwidth"])
    audio_sizes = tuple(audio[0]["segment_bytes"]) if audio and audio_kbps else ()
    return SimTitle(tuple(r["bandwidth"] / 1000 for r in reps), float(entry["segment_s"]),
                    sizes, audio_sizes)


def run(trace: str, algo: str, store: str | None, title: str | None, profile: str,
        duration_s: float, segment_s: float, settings: Settings, as_json: bool) -> int:
    bandwidth = load_trace(Path(trace))
    link = TraceLink(bandwidth.steps, bandwidth.period_s, loop=True)
    sim_title = load_title(store, title, profile, duration_s, segment_s,
                           settings.audio_kbps)
    names = list(ALGORITHMS) if algo == "all" else [algo]
    if any(name not in ALGORITHMS for name in names):
        raise CdnlabError(f"unknown ABR algorithm {algo!r}: use {', '.join(ALGORITHMS)} "
                          "or all")
    unused = set(settings.params) - {k for n in names for k in settings.for_algorithm(n)}
    if unused:
        raise CdnlabError(f"--param {', '.join(sorted(unused))}: no algorithm of "
                          f"{', '.join(names)} takes it (see nodes/client/abr.py)")
    results: list[dict[str, Any]] = []
    for name in names:
        try:
            abr = make_abr(name, **settings.for_algorithm(name))
        except ValueError as err:
            raise CdnlabError(str(err)) from None
        result = simulate(sim_title, link, abr, max_buffer_s=settings.max_buffer_s,
                          rtt_s=settings.rtt_ms / 1000)
        rules = Counter(r["rule"] for r in result.segments)
        results.append({"algo": name, **result.metrics, "params": abr.params(),
                        "rules": dict(rules), "audio_segments": len(result.audio_segments)})
    if as_json:
        print(jsonout.envelope("abr simulate", True, results))
        return 0
    seconds = len(sim_title.sizes) * sim_title.segment_s
    print(f"abr simulate: {trace} (mean {bandwidth.mean_mbps():.2f} Mbit/s), "
          f"{len(sim_title.sizes)} segments of {sim_title.segment_s:g} s ({seconds:g} s), "
          f"ladder {', '.join(f'{b:g}' for b in sim_title.bitrates_kbps)} kbit/s, "
          f"max buffer {settings.max_buffer_s:g} s, "
          f"audio {_audio_label(sim_title)}")
    print("".join(f"{c:>17}" if i else f"{c:<10}" for i, c in enumerate(COLUMNS)))
    for row in results:
        print("".join(f"{row[c]!s:>17}" if i else f"{row[c]:<10}"
                      for i, c in enumerate(COLUMNS)))
    return 0


def _audio_label(title: SimTitle) -> str:
    if not title.audio_sizes:
        return "off"
    kbps = sum(title.audio_sizes) * 8 / 1000 / (len(title.audio_sizes) * title.segment_s)
    return f"{kbps:.0f} kbit/s"
