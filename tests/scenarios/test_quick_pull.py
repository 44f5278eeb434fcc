"""quick_pull: the smallest run, every stage, and the scenario the real-kernel tier replays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdnlab.capabilities import detect, emulated_cpu
from cdnlab.measure.fidelity import rtt_tolerance_ms
from tests.scenarios.conftest import RunScenario, assert_faithful

pytestmark = pytest.mark.root

@pytest.mark.vm
def test_quick_pull_end_to_end_on_this_kernels_paths(run_scenario: RunScenario) -> None:
    """The smallest run, every stage: in the real-kernel tier this is the scenario that runs
    on netem and OVS's kernel datapath."""
    # where fidelity.ok is asserted (not on the guest's emulated CPU), a run the emulator
    # could not keep up with is made once more
    summary = run_scenario("quick_pull", faithful=not emulated_cpu())
    if not emulated_cpu():
        assert_faithful(summary)
    bundle = Path(summary["bundle"])
    run = json.loads((bundle / "run.json").read_text())
    caps = detect()  # the bundle names the paths this kernel gave: netem and OVS in the guest
    assert (run["shaping"], run["datapath"]) == (caps.shaping_backend, caps.switch_datapath)
    dns, players, cache = summary["dns"], summary["players"], summary["cache"]["overall"]
    assert players["sessions"] == 3 and players["completed"] == 3, players
    assert players["rebuffer_s_total"] < 3, players
    assert dns["answers"] >= 3 and dns["judged"] == dns["answers"], dns
    assert dns["answers_by_cluster"].keys() == {"edge1"}, dns
    # three viewers of two titles: at least two share one, so its MPD at least is a hit
    assert cache["requests"] >= 3 * 4 and cache["hit_ratio"] > 0, cache
    assert summary["network"]["bytes"]["transit"] > 0, "misses pulled over transit"
    assert (bundle / "report.md").read_text().startswith("# quick_pull")
    if not emulated_cpu():
        assert summary["fidelity"]["ok"], summary["fidelity"]
        return
    # On the guest's emulated CPU, concurrent pings beside the run's own processes queue
    # for the CPU, which inflates averages but not the minimum: each path's fastest ping
    # must show the configured delay, within the tolerance (which here includes what
    # emulated forwarding adds). The idle shaping tests check averages there.
    fidelity = json.loads((bundle / "events" / "fidelity.json").read_text())
    assert len(fidelity["rtt"]) == 2  # c1 → edge1_1 and c1 → origin
    for sample in fidelity["rtt"]:
        assert sample["received"] > 0, sample
        assert abs(sample["min_ms"] - sample["expected_ms"]) <= rtt_tolerance_ms(
            sample["expected_ms"]), sample
