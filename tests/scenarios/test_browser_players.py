"""Real browser players through the edges: browser_mix, whose viewers are half dash.js 5 in
headless Chromium and half cdnlab's Python player, through pull edges and through push
edges. Each browser must play the uploaded title to dash.js's own end event (PLAYBACK_ENDED,
read from its raw log) with no error, having resolved the service name through the emulated
DNS, and both kinds must be in the summary, the report and the edges' CMCD."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.scenarios.conftest import RunScenario

pytestmark = pytest.mark.root


def raw_logs(bundle: Path) -> dict[str, list[dict[str, Any]]]:
    return {path.name: [json.loads(line) for line in path.read_text().splitlines()]
            for path in sorted((bundle / "logs").glob("*.dashjs.jsonl"))}


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("mode", ["pull", "push"])
def test_dashjs_plays_to_its_end_through_the_edges(run_scenario: RunScenario,
                                                   mode: str) -> None:
    # faithful since runs switch the kernel's autogroups off (cdnlab/net/autogroups.py), so
    # the SCHED_IDLE transcode and the nice 10 Chromiums yield to the emulator's timers
    summary = run_scenario("browser_mix", {"cdn.mode": mode}, out=f"browser-{mode}",
                           faithful=True)
    parts = summary["fidelity"]["monitor"]["cpu_by_part"]
    assert parts["browsers"]["cpu_s"] > 0, parts
    for violation in summary["fidelity"]["violations"]:
        # before second 0 the origin transcodes the upload (ffmpeg): not the browsers'
        if violation["invariant"] == "cpu_saturated" and violation["from_s"] >= 0:
            assert next(iter(violation["parts"])) == "browsers", violation
    bundle = Path(summary["bundle"])
    raws = raw_logs(bundle)
    assert len(raws) == 2, raws.keys()
    for name, raw in raws.items():
        kinds = [e["kind"] for e in raw]
        assert "ended" in kinds, (name, kinds[-5:])
        assert not {"error", "driver_error", "request_failed"} & set(kinds), \
            (name, [e for e in raw if e["kind"] in ("error", "driver_error", "request_failed")])
        assert all(e["status"] in (200, 302) for e in raw if e["kind"] == "response")
    players = summary["players"]
    assert players["completed"] == players["sessions"] == 4, players
    assert set(players["by_algo"]) == {"dashjs", "bola"}
    browsers = players["browsers"]
    assert browsers["ended_by"] == {"ended": 2} and browsers["completed"] == 2, browsers
    # a Chromium with a playing page holds far more than 50 MB and some CPU
    assert browsers["pss_peak_mb_max"] > 50 and browsers["cpu_cores_mean"] > 0, browsers
    assert "## Browser viewers" in (bundle / "report.md").read_text()
    # the browsers resolved the service name at the redirector (through each host's
    # resolver configuration) and fetched from the clusters it answered their host
    engine = lines(bundle / "events" / "engine.jsonl")
    host_of = next(e["clients"] for e in engine if e["event"] == "rtt_matrix")
    answered: dict[str, set[str]] = {}
    for decision in lines(bundle / "events" / "dns.decisions.jsonl"):
        answered.setdefault(host_of.get(decision["client"], "?"), set()).add(
            decision["cluster"])
    clusters = json.loads((bundle / "run.json").read_text())["cluster_of_ip"]
    served = []
    for path in (bundle / "events").glob("*-browser.players.jsonl"):
        segments = [e for e in lines(path) if e["event"] in ("segment", "audio_segment")]
        assert segments, path
        served += segments
        host = segments[0]["node"]
        assert {clusters[s["server"]] for s in segments if s["server"] in clusters} <= \
            answered.get(host, set()), (host, answered)
    at_edges = [s for s in served if s["server"] in clusters]
    assert at_edges, "the browsers fetched from the edges"
    if mode == "push":
        assert any(s["cache"] == "HIT" for s in at_edges), "what the fill placed"
    else:
        assert {s["cache"] for s in at_edges} <= {"HIT", "MISS"}
    # every viewer, of either kind, told the edges who it was (CMCD)
    assert summary["cmcd"]["sessions"] == 4, summary["cmcd"]
    assert {"v", "a", "m"} <= set(summary["cmcd"]["by"]["ot"]), summary["cmcd"]
