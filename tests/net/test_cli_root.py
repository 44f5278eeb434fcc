"""The root commands users run: doctor, topo check, bench fidelity --quick."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from cdnlab.capabilities import detect

pytestmark = pytest.mark.root


def cdnlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cdnlab.cli", *args], capture_output=True,
                          text=True, check=False, timeout=600)


def test_doctor_reports_the_backend_and_datapath() -> None:
    done = cdnlab("doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"shaping backend \(auto\): (netem|nfqueue)", done.stdout)
    assert re.search(r"switch datapath \(auto\): (kernel|bridge|user)", done.stdout)


def test_topo_check_prints_connectivity_and_fidelity(nothing_left_behind: None) -> None:
    done = cdnlab("topo", "check", "minimal")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "connectivity: 12/12 host pairs reach each other" in done.stdout
    assert re.search(r"fidelity: backend=\w+ rtt_err_max=[\d.]+% .* within_bounds=yes",
                     done.stdout)


def test_bench_fidelity_quick_meets_the_targets(nothing_left_behind: None) -> None:
    done = cdnlab("bench", "fidelity", "--quick")
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    found = re.fullmatch(r"fidelity: backend=(\w+) rtt_err_max=([\d.]+)% "
                         r"rate_err_max=([\d.]+)% loss_err_max=([\d.]+)pp", last)
    assert found, last
    assert float(found[2]) <= 5.0 and float(found[3]) <= 10.0 and float(found[4]) <= 1.5
    assert "baseline, unshaped" in done.stdout


def test_bench_scale_steps_up_until_the_verdict_breaks(nothing_left_behind: None) -> None:
    """Two steps (2 and 4 viewers playing at once) as JSON; its result line as data, and
    topo check's fidelity report as JSON too."""
    done = cdnlab("bench", "scale", "--quick", "--max-viewers", "4", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout)
    assert document["command"] == "bench scale" and document["ok"]
    (result,) = document["data"]
    assert result["backend"] == detect().shaping_backend
    # the result line says what the table says: the most viewers judged faithful, and
    # what broke first above them (none when every step held)
    rows = [line.split() for line in done.stderr.splitlines()
            if line.split()[:1] in (["2"], ["4"])]
    steps = [(int(row[0]), row[2] == "True") for row in rows]
    assert steps and steps[0][0] == 2, done.stderr
    assert all(ok for _, ok in steps[:-1]), "steps stop at the first broken one"
    assert len(steps) == 2 or not steps[-1][1], "a faithful step is followed by the next"
    assert result["viewers_max"] == max((n for n, ok in steps if ok), default=0), result
    assert (result["limit"] == "none") == all(ok for _, ok in steps), result
    checked = json.loads(cdnlab("topo", "check", "minimal", "--no-goodput", "--json").stdout)
    assert checked["command"] == "topo check" and checked["data"]["summary"]["backend"]
