"""A run vouches for itself: the monitor watches the emulator's invariants for the whole
run, and a run whose CPUs were saturated says so, with when and how far, instead of
reporting itself faithful, and names the part of the run that took the CPU. The CPU hogs
here are this test's own processes, stopped by PID, accounted as players (as many viewers
on one host would be)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from cdnlab.results.report import write_report
from cdnlab.scenario.runner import Run
from cdnlab.scenario.spec import load_scenario
from tests.net.conftest import machine_state

pytestmark = pytest.mark.root

HOG_FROM_S, HOG_FOR_S = 3.0, 7.0
# quick_pull's three viewers play sessions of 6 segments of 2 s with 4 s of buffer, so they
# download at playback speed, one after another until second 16 (a closed loop): the run
# outlasts the hogs with three viewers playing throughout
LONGER = {"content.title_s": 24, "workload.segments": 6, "workload.max_buffer_s": 4,
          "workload.closed_loop": True, "duration_s": 16}


class HoggedRun(Run):
    """quick_pull with two CPU hogs per core from scenario second 3 to 10."""

    hogs: list[subprocess.Popen[bytes]]

    def __init__(self, *args: Any, hog: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hog, self.hogs = hog, []

    def _start_clock(self, emu: Any, meta: dict[str, Any], log: Any) -> float:
        epoch = super()._start_clock(emu, meta, log)
        self.ledger = emu.ledger
        if self.hog:
            threading.Timer(HOG_FROM_S, self._hog).start()
            threading.Timer(HOG_FROM_S + HOG_FOR_S, self.unhog).start()
        return epoch

    def _hog(self) -> None:
        for _ in range(2 * (os.cpu_count() or 1)):
            self.hogs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
            self.ledger.join_part(self.hogs[-1].pid, "players")

    def unhog(self) -> None:
        for hog in self.hogs:
            if hog.poll() is None:
                hog.kill()
            hog.wait()


def playing_at(bundle: Path, seconds: range) -> list[int]:
    """Sessions playing at each scenario second (started and not yet ended)."""
    events = [json.loads(line) for path in (bundle / "events").glob("*.players.jsonl")
              for line in path.read_text().splitlines()]
    zero = next(json.loads(line)["t"] for line in
                (bundle / "events" / "engine.jsonl").read_text().splitlines()
                if '"scenario_start"' in line)
    starts = {e["session"]: e["t"] - zero for e in events if e["event"] == "session_start"}
    ends = {e["session"]: e["t"] - zero for e in events if e["event"] == "session_end"}
    return [sum(1 for s, t in starts.items() if t <= second < ends.get(s, 1e9))
            for second in seconds]


@pytest.mark.parametrize("hog", [True, False], ids=["hogged", "alone"])
def test_a_saturated_run_is_not_reported_faithful(tmp_path: Path, hog: bool) -> None:
    before = machine_state()
    run = HoggedRun(load_scenario("quick_pull", LONGER), tmp_path / "bundle", tty=False,
                    hog=hog)
    try:
        run.execute()
    finally:
        run.unhog()
    summary = write_report(tmp_path / "bundle")
    fidelity = summary["fidelity"]
    assert machine_state() == before, "the run left something behind"
    assert fidelity["monitored"] and fidelity["monitor"]["samples"] >= 15, fidelity
    if fidelity["backend"] == "nfqueue":  # the delay processes report their own lateness
        assert fidelity["monitor"]["delay_lag_max_us"] is not None, fidelity["monitor"]
    if not hog:
        assert fidelity["ok"] and fidelity["violations"] == [], fidelity
        assert fidelity["verdict"].startswith("faithful")
        players = summary["players"]
        assert players["sessions"] > 3 and players["concurrent_peak"] == 3, players
        # the third viewer arrives at about 6 s (seed 1's Poisson arrivals) and starts a
        # moment later: from the next whole second on, three play until second 15
        assert playing_at(tmp_path / "bundle", range(7, 15)) == [3] * 8, \
            "a closed loop keeps three playing, one session after another"
        return
    assert fidelity["ok"] is False, fidelity
    inside = [v for v in fidelity["violations"]
              if v["invariant"] in ("cpu_saturated", "timer_late")
              and v["from_s"] < HOG_FROM_S + HOG_FOR_S + 1 and v["to_s"] > HOG_FROM_S - 1]
    assert inside, fidelity["violations"]
    assert "emulator-limited from" in fidelity["verdict"]
    # the part that saturated the machine is named, in the summary and in words
    saturated = [v for v in inside if v["invariant"] == "cpu_saturated"]
    assert saturated and next(iter(saturated[0]["parts"])) == "players", saturated
    assert "CPU saturated (busy 100%): players" in fidelity["verdict"] or \
        ": players " in fidelity["verdict"], fidelity["verdict"]
    assert fidelity["monitor"]["cpu_by_part"]["players"]["cpu_s"] >= HOG_FOR_S, fidelity
    report = (tmp_path / "bundle" / "report.md").read_text()
    assert "emulator-limited from" in report
