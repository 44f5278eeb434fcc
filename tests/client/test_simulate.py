"""The offline simulator: constant and step traces against every algorithm, determinism,
the trace integration, and the `cdnlab abr simulate` command line."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nodes.client.algorithms import ALGORITHMS, make_abr
from nodes.client.simulate import SimTitle, TraceLink, simulate
from nodes.origin.store import ContentStore
from nodes.origin.synth import SynthOptions, synthesize

LADDER = (300.0, 750.0, 1200.0, 1850.0, 2850.0, 4300.0)
TITLE = SimTitle.constant(LADDER, 4.0, 600.0)
ADAPTIVE = [name for name in ALGORITHMS if name != "fixed"]
CDNLAB = [sys.executable, "-m", "cdnlab.cli"]


def test_transfer_time_integrates_the_piecewise_rate() -> None:
    link = TraceLink([(0.0, 8.0), (1.0, 4.0)], period_s=2.0)
    assert link.transfer_s(0.0, 10e6) == pytest.approx(1.5)
    assert link.transfer_s(1.5, 8e6) == pytest.approx(0.5 + 0.75)  # 2 Mb, then 6 Mb at 8
    assert TraceLink([(0.0, 2.0)], 10.0, loop=False).transfer_s(25.0, 4e6) == pytest.approx(2)
    with pytest.raises(ValueError):
        TraceLink([(1.0, 2.0)], 10.0)


@pytest.mark.parametrize("algo", ADAPTIVE)
@pytest.mark.parametrize(("mbps", "sustainable"), [(10.0, 4300.0), (3.3, 2850.0),
                                                   (1.0, 750.0)])
def test_constant_trace_settles_at_the_highest_sustainable_rung(
        algo: str, mbps: float, sustainable: float) -> None:
    result = simulate(TITLE, TraceLink([(0.0, mbps)], 60.0), make_abr(algo))
    steady = result.segments[len(result.segments) // 2:]
    rates = [s["bitrate_kbps"] for s in steady]
    mean = sum(rates) / len(rates)
    # the window may also spend what was buffered before it: up to 30 s of 300 s
    assert sustainable * 0.95 <= mean <= mbps * 1000 * 1.1, (algo, mean)
    common = collections.Counter(rates).most_common(1)[0][0]
    above = LADDER[min(LADDER.index(sustainable) + 1, len(LADDER) - 1)]
    assert common in (sustainable, above), (algo, collections.Counter(rates))
    steady_start = steady[0]["start_s"]
    assert not [s for s in result.segments if s["start_s"] > steady_start
                and s["buffer_s"] < 0.01], "no stall in steady state"


@pytest.mark.parametrize("algo", ADAPTIVE)
def test_a_step_down_lowers_every_algorithm_s_choice(algo: str) -> None:
    link = TraceLink([(0.0, 10.0), (150.0, 1.0)], 10_000.0, loop=False)
    result = simulate(TITLE, link, make_abr(algo))
    before = [s["bitrate_kbps"] for s in result.segments if s["start_s"] < 150][-10:]
    after = [s["bitrate_kbps"] for s in result.segments if s["start_s"] > 200][:10]
    assert sum(after) / len(after) < sum(before) / len(before), algo
    final = [s["bitrate_kbps"] for s in result.segments[-10:]]
    assert max(final) <= 1200.0, (algo, final)


def test_identical_inputs_give_identical_results() -> None:
    link = TraceLink([(0.0, 6.0), (20.0, 1.5), (45.0, 9.0)], 60.0)
    for algo in ALGORITHMS:
        first = simulate(TITLE, link, make_abr(algo))
        second = simulate(TITLE, link, make_abr(algo))
        assert first.segments == second.segments and first.metrics == second.metrics


def test_cli_compares_all_algorithms_as_json_and_table(tmp_path: Path) -> None:
    done = subprocess.run([*CDNLAB, "abr", "simulate", "--trace", "traces/step_down.csv",
                           "--algo", "all", "--json"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["data"]
    assert [r["algo"] for r in rows] == list(ALGORITHMS)
    for row in rows:
        assert {"algo", "qoe", "avg_bitrate_kbps", "rebuffer_s", "switches",
                "startup_s"} <= set(row)
    table = subprocess.run([*CDNLAB, "abr", "simulate", "--trace",
                            "traces/cellular_walk.mahi", "--algo", "mpc"],
                           capture_output=True, text=True, check=False).stdout
    assert table.splitlines()[-1].startswith("mpc")
    store = tmp_path / "store"
    synthesize(ContentStore(store), SynthOptions(titles=2, duration_s=40, seed=2))
    titled = subprocess.run([*CDNLAB, "abr", "simulate", "--trace", "traces/step_down.csv",
                             "--algo", "bola", "--store", str(store), "--title",
                             "synth-0002", "--json"], capture_output=True, text=True,
                            check=False)
    assert titled.returncode == 0, titled.stderr
    assert json.loads(titled.stdout)["data"][0]["segments"] == 10


@pytest.mark.parametrize(("args", "words"), [
    (["--trace", "traces/step_down.csv", "--algo", "pensieve"], "unknown ABR algorithm"),
    (["--trace", "nowhere.csv"], "nowhere.csv"),
    (["--trace", "traces/step_down.csv", "--title", "x"], "--title needs --store"),
])
def test_cli_errors_name_the_problem(args: list[str], words: str) -> None:
    done = subprocess.run([*CDNLAB, "abr", "simulate", *args], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2 and words in done.stderr
