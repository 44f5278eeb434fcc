"""netflix_push (upload, transcode, window fill, peak from the edges), push_vs_pull (the
same workload both ways), and abr_trace (algorithms side by side on trace-driven links)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.scenarios.conftest import RunScenario

pytestmark = pytest.mark.root


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_netflix_push_serves_peak_from_what_was_filled(run_scenario: RunScenario) -> None:
    summary = run_scenario("netflix_push")
    bundle = Path(summary["bundle"])
    engine = lines(bundle / "events" / "engine.jsonl")
    assert [e["title"] for e in engine if e["event"] == "upload_done"] == ["film"]
    refused = [e for e in lines(bundle / "events" / "origin.jsonl")
               if e["event"] == "ingest_refused"]
    assert not refused
    fill = summary["fill"]
    assert fill["complete"] and fill["in_window"], fill
    assert all(count >= 2 for count in fill["titles"].values()), "film and more, everywhere"
    done = [e for e in lines(bundle / "events" / "fill.jsonl") if e["event"] == "fill_done"]
    assert all(e["titles"][0] == "film" for e in done), "the new film is the most popular"
    cache = summary["cache"]["overall"]
    assert cache["hit_ratio"] >= 0.95, summary["cache"]
    assert summary["players"]["completed"] == summary["players"]["sessions"] == 10
    segments = [e for p in (bundle / "events").glob("*.players.jsonl") for e in lines(p)
                if e["event"] == "segment"]
    assert {s["cache"] for s in segments} == {"HIT"}


def test_push_moves_transit_bytes_off_peak_and_pull_during_it(
        run_scenario: RunScenario) -> None:
    pull = run_scenario("push_vs_pull", out="pull")
    push = run_scenario("push_vs_pull", {"cdn.mode": "push"}, out="push")
    pulled = pull["network"]["bytes_viewing"]["transit"]
    pushed = push["network"]["bytes_viewing"]["transit"]
    assert pulled > 5_000_000, pull["network"]
    assert pushed < 0.1 * pulled, (pushed, pulled)
    assert push["fill"]["in_window"] and push["fill"]["bytes"] > pulled
    assert push["cache"]["overall"]["hit_ratio"] >= 0.95
    assert pull["cache"]["overall"]["hit_ratio"] < push["cache"]["overall"]["hit_ratio"]
    table = subprocess.run([sys.executable, "-m", "cdnlab.cli", "compare", pull["bundle"],
                            push["bundle"]], capture_output=True, text=True, check=False)
    assert table.returncode == 0 and "transit bytes, viewing" in table.stdout
    assert "pull" in table.stdout.splitlines()[0] and "push" in table.stdout.splitlines()[0]


def test_abr_algorithms_side_by_side_on_traces(run_scenario: RunScenario) -> None:
    summary = run_scenario("abr_trace")
    players = summary["players"]
    assert players["completed"] == players["sessions"] == 6
    assert set(players["by_algo"]) == {"throughput", "bba", "bola", "mpc", "dynamic"}
    for figures in players["by_algo"].values():
        assert 300 <= figures["avg_bitrate_kbps"] <= 4300
    assert summary["events"]["applied"] == ["replay"] * 6
    report = (Path(summary["bundle"]) / "report.md").read_text()
    assert "## Players by ABR algorithm" in report and "- mpc:" in report
