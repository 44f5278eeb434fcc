"""`cdnlab bench edge` with the real nginx and wrk: its closing line repeats its table, and
each phase measured what it says (the command exits 1 otherwise: hits that missed, misses
that hit, errors, a CMSD edge whose responses lack its shares)."""

from __future__ import annotations

import subprocess
import sys


def test_bench_edge_prints_hits_misses_and_the_origin() -> None:
    done = subprocess.run([sys.executable, "-m", "cdnlab.cli", "bench", "edge", "--seconds",
                           "1"], capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("edge: hit_rps=")
    figures = dict(pair.split("=") for pair in lines[-1].removeprefix("edge: ").split())
    rows = {line.split()[0]: line.split() for line in lines
            if line.split() and line.split()[0] in ("origin", "hit", "miss", "cmsd_hit")}
    # phase requests MISS errors req/s Mbit/s ratio
    assert figures == {"hit_rps": rows["hit"][4], "miss_rps": rows["miss"][4],
                       "origin_rps": rows["origin"][4], "hit_mbps": rows["hit"][5],
                       "cmsd_hit_rps": rows["cmsd_hit"][4]}
    assert rows["origin"][2] == rows["hit"][2] == rows["cmsd_hit"][2] == "0", \
        "hits and the origin never missed"
    assert rows["miss"][1] == rows["miss"][2] == "2000", "every new segment was a miss"
