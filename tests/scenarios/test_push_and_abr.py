"""netflix_push (upload, transcode, window fill, peak from the edges), push_vs_pull (push
and pull clusters side by side), and abr_trace (algorithms side by side on traces)."""

from __future__ import annotations

import json
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
    assert [e["title"] for e in engine if e["event"] == "upload_done"] == ["film", "trailer"]
    assert summary["events"] == {"applied": ["upload"], "failed": []}, "the one at 27 s"
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


def test_push_and_pull_side_by_side(run_scenario: RunScenario) -> None:
    summary = run_scenario("push_vs_pull")
    assert summary["modes"] == {"edge_a": "push", "edge_x": "pull", "edge_c": "pull"}
    assert summary["fill"]["in_window"] and summary["fill"]["complete"]
    assert list(summary["fill"]["titles"]) == ["edge_a"], "only the push cluster is filled"
    cache = summary["cache"]
    assert cache["edge_a"]["hit_ratio"] >= 0.95, cache
    assert cache["edge_x"]["hit_ratio"] < cache["edge_a"]["hit_ratio"], cache
    fetched = summary["origin"]["bytes_viewing_by_cluster"]
    assert fetched.get("edge_x", 0) > 1_000_000, fetched  # pull: misses during viewing
    assert fetched.get("edge_a", 0) == 0 and fetched.get("clients", 0) < 100_000, fetched
    assert summary["players"]["completed"] == summary["players"]["sessions"] == 12


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
