"""`cdnlab bench transcode`: how fast this machine makes a DASH ladder, per profile.

A test master is generated (grainy test pattern, so encoders work as hard as on footage),
then each profile encodes the default ladder fitted to the master (no rung above its
resolution: the rungs up to 720p of a 720p master) exactly as ingest does, with the
settings `nodes/origin/profiles.py` states (printed); last, the default spec (every default
profile in one ffmpeg run, as ingest makes a title without a spec). Speed is the master's
duration over the wall time (×1 = real time). The baseline, measured in the same run, is
decoding the master alone; the ratio says how many times slower than decoding each is.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from nodes.origin.ffprobe import probe_source
from nodes.origin.profiles import CODECS, DEFAULT_LADDER, Profile, TitleSpec
from nodes.origin.testsource import make_test_master
from nodes.origin.transcode import transcode


def _decode_seconds(master: Path) -> float:
    started = time.monotonic()
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(master),
                    "-f", "null", "-"], check=True)
    return time.monotonic() - started


def run(seconds: float, size: str, profiles: list[str]) -> int:
    width, _, height = size.partition("x")
    with tempfile.TemporaryDirectory(prefix="cdnlab-bench-") as tmp:
        work = Path(tmp)
        master = make_test_master(work / "master.mp4", seconds, int(width), int(height))
        info = probe_source(master)
        decode_s = _decode_seconds(master)
        rows = []
        for name in profiles:
            spec = TitleSpec(profiles=(Profile(name, DEFAULT_LADDER),)).fitted(
                info.width, info.height)
            out = work / name
            out.mkdir()
            started = time.monotonic()
            transcode(master, info, spec, out)
            rows.append((name, time.monotonic() - started))
        # what ingest runs for a title without a spec: every default profile in one ffmpeg
        default = TitleSpec().fitted(info.width, info.height)
        (work / "default").mkdir()
        started = time.monotonic()
        transcode(master, info, default, work / "default")
        default_wall = time.monotonic() - started
    rungs = ", ".join(str(r) for r in TitleSpec(profiles=(Profile("avc", DEFAULT_LADDER),))
                      .fitted(info.width, info.height).profiles[0].ladder)
    print(f"transcode: {seconds:g} s master at {size}; ladder {rungs}; audio AAC")
    for name in profiles:
        print(f"  {name}: {CODECS[name].settings()}")
    print(f"{'profile':<10}{'encoder':<13}{'wall s':>8}{'speed ×rt':>11}{'vs decode':>11}")
    print(f"{'decode':<10}{'(baseline)':<13}{decode_s:>8.2f}{seconds / decode_s:>11.2f}"
          f"{1.0:>11.2f}")
    for name, wall in rows:
        print(f"{name:<10}{CODECS[name].encoder:<13}{wall:>8.2f}{seconds / wall:>11.2f}"
              f"{wall / decode_s:>11.1f}")
    names = "+".join(p.name for p in default.profiles)
    print(f"{'default':<10}{names:<13}{default_wall:>8.2f}{seconds / default_wall:>11.2f}"
          f"{default_wall / decode_s:>11.1f}")
    slowest = min(seconds / wall for _name, wall in rows)
    print(f"transcode: speed_x={slowest:.2f} default_x={seconds / default_wall:.2f}")
    return 0
