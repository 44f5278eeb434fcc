"""The chaos scenario: a fault of each kind at seeded times in a youtube_pull-like run, three
seeds in a row. Each run must end, keep a complete bundle, report every fault it injected
with its effect and none it did not, and fail sessions only for reasons its faults explain
(`cdnlab/results/faults.py`); `run_scenario` checks the schema and that nothing is left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdnlab.scenario.spec import load_scenario
from tests.scenarios.conftest import RunScenario, assert_faithful

pytestmark = pytest.mark.root

INJECTED = {"kill_program", "stop_program", "pause_program", "origin_fault", "dns_drop",
            "fill_cache"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chaos_reports_every_fault_it_caused_and_no_other(run_scenario: RunScenario,
                                                          seed: int) -> None:
    summary = run_scenario("chaos", {"seed": seed}, faithful=True)
    assert_faithful(summary)
    bundle = Path(summary["bundle"])
    assert summary["interrupted"] is None
    assert (bundle / "report.md").read_text().count("## Faults") == 1
    assert list((bundle / "plots").glob("*.png")), "plots were drawn"
    for events in bundle.glob("events/*.jsonl"):
        for line in events.read_text().splitlines():
            json.loads(line)  # every line of every event file parses
    planned = [e for e in load_scenario("chaos", {"seed": seed}).timeline]
    assert summary["events"]["failed"] == [], summary["events"]
    assert sorted(summary["events"]["applied"]) == sorted(e.kind for e in planned)
    faults = summary["faults"]
    assert faults["unplanned"] == 0, faults["list"]
    listed = faults["list"]
    assert {f["injected_by"] for f in listed} == INJECTED
    assert faults["injected"] == len(listed) == 7
    for fault in listed:
        assert fault["t_s"] >= 0 and set(fault["effect"]) == {
            "requests_failed", "resolutions_failed", "origin_5xx", "cache_writes_failed"}
        if fault["what"] in ("pause_program", "origin_fault", "dns_drop", "fill_cache"):
            assert fault["until_s"] is not None and fault["until_s"] > fault["t_s"], fault
        # cache writes are counted for a full cache disk, and only there
        assert (fault["effect"]["cache_writes_failed"] is None) == \
            (fault["what"] != "fill_cache"), fault
    killed = next(f for f in listed if f["injected_by"] == "kill_program")
    assert killed["signal"] == "SIGKILL" and killed["restarted_after_s"] is not None
    stopped = next(f for f in listed if f["injected_by"] == "stop_program")
    assert stopped["restarted_after_s"] is not None, "restart_program started it again"
    # what the origin answered to requests that arrived while its 503 fault lasted (a
    # margin for the switch's edges; nginx logs a request when it ends, `duration_s` later)
    status = next(f for f in listed if f["how"] == "answered HTTP 503")
    epoch = json.loads((bundle / "run.json").read_text())["scenario_epoch"]
    requests = [json.loads(line) for line in
                (bundle / "events" / "origin.access.jsonl").read_text().splitlines()]
    answered = [r["status"] for r in requests if status["t_s"] + 0.2
                < float(r["time"]) - float(r["duration_s"]) - epoch < status["until_s"] - 0.2]
    assert set(answered) <= {503}, answered
    assert status["effect"]["origin_5xx"] >= len(answered)
    assert faults["unexplained_failures"] == 0, summary["players"]["per_session"]
