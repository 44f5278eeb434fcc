"""Faults inside a run: the DNS redirector killed by its PID from outside, mid-run, as a user
would; the run must say so (summary `faults`, the end-of-run line, the report) and the
sessions it broke must say why. Under `supervise` the redirector is restarted and no
session fails: the players keep their last answer and retry (nodes/client/player.py). An
edge's nginx master killed the same way ends its edge program, which the run reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cdnlab.net.machine_state import machine_state
from cdnlab.results.schema import problems
from tests.scenarios.conftest import ledger_of

pytestmark = pytest.mark.root

KILL_AT_S = 6.0  # scenario second; viewers arrive uniformly from 1 s to 21 s
SETTINGS = ("duration_s=24", "workload.viewers={c1: 8}",
            "workload.arrival={process: uniform, start_s: 1, window_s: 20}")


def _pid_of(run: subprocess.Popen[str], what: str) -> int | None:
    ledger = ledger_of(run)
    pids = [int(str(p["pid"])) for p in ledger.record.processes
            if p["what"] == what] if ledger is not None else []
    return pids[0] if pids else None  # nginx: its master, listed first


def _scenario_epoch(bundle: Path) -> float | None:
    engine = bundle / "run" / "events" / "engine.jsonl"
    if not engine.exists():
        return None
    for line in engine.read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "scenario_start":
            return float(record["epoch"])
    return None


def _run_and_kill(bundle: Path, what: str, *extra: str) -> tuple[dict[str, Any], str]:
    """quick_pull, longer and with more viewers; the process the run's ledger names `what`
    killed (SIGKILL) at KILL_AT_S."""
    argv = [sys.executable, "-m", "cdnlab.cli", "run", "quick_pull", "--out", str(bundle)]
    for setting in (*SETTINGS, *extra):
        argv += ["--set", setting]
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while (epoch := _scenario_epoch(bundle)) is None:
            assert run.poll() is None and time.monotonic() < deadline, "the run never started"
            time.sleep(0.2)
        time.sleep(max(0.0, epoch + KILL_AT_S - time.time()))
        pid = None
        for _ in range(50):  # a ledger being rewritten does not parse for a moment
            if (pid := _pid_of(run, what)) is not None:
                break
            time.sleep(0.1)
        assert pid is not None, f"the run's ledger names {what}"
        os.kill(pid, signal.SIGKILL)
        out, _ = run.communicate(timeout=300)
    finally:
        if run.poll() is None:  # a failed test: the run stops as on Ctrl-C, or is cleaned
            run.terminate()
            try:
                run.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                run.kill()
                run.communicate()
                subprocess.run([sys.executable, "-m", "cdnlab.cli", "clean"], check=False)
    assert run.returncode == 0, out[-2000:]
    return json.loads((bundle / "summary.json").read_text()), out


def test_a_killed_dns_is_a_fault_the_run_reports(tmp_path: Path) -> None:
    before = machine_state()
    summary, out = _run_and_kill(tmp_path / "bundle", "dns on dns")
    assert machine_state() == before, "the run left something behind"
    assert problems(summary) == []
    faults = summary["faults"]
    assert faults["unplanned"] == 1 and faults["injected"] == 0, faults
    (dns,) = faults["list"]
    assert (dns["program"], dns["signal"], dns["cause"]) == ("dns", "SIGKILL", "unplanned")
    assert KILL_AT_S <= dns["t_s"] < KILL_AT_S + 2, dns
    assert dns["restarted_after_s"] is None
    players = summary["players"]
    failed = [s for s in players["per_session"] if not s["completed"]]
    # viewers arriving after the kill have no answer to fall back on; those before keep
    # theirs (serve-stale) and play on
    assert failed and {s["failure"] for s in failed} == {"no DNS answer"}, failed
    assert players["failures_by_reason"] == {"no DNS answer": len(failed)}
    assert dns["sessions_failed_after"] == {"no DNS answer": len(failed)}
    assert faults["unexplained_failures"] == 0, "a dead DNS explains no DNS answer"
    assert players["completed"] >= 1, "sessions that resolved before the kill completed"
    line = next((x for x in out.splitlines() if x.startswith("fault: ")), "")
    assert line.startswith(f"fault: dns exited on SIGKILL at {dns['t_s']:.1f} s (unplanned)")
    assert line.endswith(f"{len(failed)} sessions failed after it: no DNS answer "
                         f"{len(failed)}"), out[-1500:]
    assert "dns exited on SIGKILL" in (tmp_path / "bundle" / "report.md").read_text()


def test_a_supervised_dns_is_restarted_and_no_session_fails(tmp_path: Path) -> None:
    summary, out = _run_and_kill(tmp_path / "bundle", "dns on dns",
                                 "supervise=[dns]")
    assert problems(summary) == []
    (dns,) = summary["faults"]["list"]
    assert (dns["program"], dns["signal"], dns["cause"]) == ("dns", "SIGKILL", "unplanned")
    assert dns["restarted_after_s"] is not None and 0 < dns["restarted_after_s"] < 10, dns
    restarts = [json.loads(line) for line in
                (tmp_path / "bundle" / "events" / "programs.jsonl").read_text().splitlines()
                if '"program_restart"' in line]
    assert [r["program"] for r in restarts] == ["dns"]
    players = summary["players"]
    assert players["failures_by_reason"] == {}, players["per_session"]
    assert players["completed"] == players["sessions"] == 8
    assert "restarted after" in out


def test_a_killed_nginx_master_ends_its_edge_which_the_run_reports(tmp_path: Path) -> None:
    summary, out = _run_and_kill(tmp_path / "bundle", "nginx of edge1_1")
    assert problems(summary) == []
    (edge,) = summary["faults"]["list"]
    assert (edge["program"], edge["code"], edge["cause"]) == ("edge1_1", 3, "unplanned"), edge
    assert "ended on signal SIGKILL" in edge["stderr"][-1], edge["stderr"]
    assert KILL_AT_S <= edge["t_s"] < KILL_AT_S + 2, edge
    assert "fault: edge1_1 exited with code 3" in out


FILL_AT_S, FILL_S = 6.0, 6.0


def test_a_full_cache_disk_fails_misses_and_the_run_says_so(tmp_path: Path) -> None:
    """`fill_cache` on the only edge: its cache filesystem (a tmpfs of cdn.cache_mb, in the
    ledger) full for FILL_S seconds. nginx fails the cache writes of misses (its error
    log), so viewers' requests fail and are retried; the fault is listed with both counts,
    the viewers' failures are explained, and the mount is gone after the run."""
    before = machine_state()
    bundle = tmp_path / "bundle"
    argv = [sys.executable, "-m", "cdnlab.cli", "run", "quick_pull", "--out", str(bundle)]
    event = f"{{at: {FILL_AT_S:g}, fill_cache: {{edge: edge1_1, seconds: {FILL_S:g}}}}}"
    for setting in (*SETTINGS, "content.titles=8", f"timeline=[{event}]"):
        argv += ["--set", setting]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=400, check=False)
    finally:
        subprocess.run([sys.executable, "-m", "cdnlab.cli", "clean"], check=False,
                       capture_output=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    assert machine_state() == before, "the run left something behind (the cache mount?)"
    summary = json.loads((bundle / "summary.json").read_text())
    assert problems(summary) == []
    faults = summary["faults"]
    assert (faults["unplanned"], faults["injected"]) == (0, 1), faults
    (full,) = faults["list"]
    assert (full["what"], full["program"], full["part"]) == ("fill_cache", "edge1_1", "edges")
    assert FILL_AT_S <= full["t_s"] < FILL_AT_S + 1 and \
        full["until_s"] - full["t_s"] == pytest.approx(FILL_S, abs=0.5), full
    effect = full["effect"]
    assert effect["cache_writes_failed"] > 0 and effect["requests_failed"] > 0, effect
    assert faults["unexplained_failures"] == 0, summary["players"]["per_session"]
    assert f"fault: edge1_1 had its cache disk full at {full['t_s']:.1f} s" in done.stdout
