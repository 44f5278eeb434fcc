"""anycast_vs_dns: DNS redirection by RTT, content steering and anycast over real BGP
(FRR) on one network where AS-path length and RTT disagree. Claims checked: every
viewer's catchment is the one BGP policy predicts (ISP B's viewers at the far edge_f); so
anycast's lowest-RTT share is below DNS's and content steering's (both from the probes'
RTTs); when edge_a dies its anycast viewers move with no DNS change (the health watch
withdraws the announcement, BGP converges, and DNS answered the anycast address
throughout), while DNS and steering move theirs by their own means; and with
`withdraw_above`, an overloaded anycast cluster sheds its announcement and its viewers,
for `hold_s` at least. Every run must be judged faithful (one run again if not)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cdnlab.scenario.spec import load_scenario, variant_overrides
from tests.scenarios.conftest import RunScenario, assert_faithful

pytestmark = pytest.mark.root

POLICY = {"a1": "edge_a", "a2": "edge_a", "b1": "edge_f", "b2": "edge_f"}


def answers(bundle: Path) -> list[dict[str, Any]]:
    path = bundle / "events" / "dns.decisions.jsonl"
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["event"] == "answer"]


def test_anycast_follows_bgp_and_fails_over_without_dns(run_scenario: RunScenario) -> None:
    scenario = load_scenario("anycast_vs_dns")
    summaries = {name: run_scenario("anycast_vs_dns", variant_overrides(name, overrides),
                                    out=f"av-{name}", faithful=True)
                 for name, overrides in scenario.variants.items()}
    for name, summary in summaries.items():
        assert_faithful(summary)
        players = summary["players"]
        assert players["completed"] == players["sessions"] == 8, (name, players)

    routing = {name: s["routing"] for name, s in summaries.items()}
    anycast = routing["anycast"]["anycast"]
    assert anycast["predicted"] == POLICY, anycast
    assert anycast["as_predicted"] == dict.fromkeys(POLICY, True), anycast
    # ISP B's catchment is not its lowest-RTT cluster: edge_f at 74 ms, edge_a at 26
    assert anycast["lowest_rtt"] == {"a1": True, "a2": True, "b1": False, "b2": False}
    assert anycast["extra_rtt_ms"] == pytest.approx({"a1": 0, "a2": 0, "b1": 48, "b2": 48})
    assert routing["dns"]["anycast"] is None
    # DNS by RTT maps everyone to edge_a, and so does content steering from the same
    # measurements; BGP sends ISP B's viewers far away
    share = {name: r["segments"]["lowest_rtt_share"] for name, r in routing.items()}
    assert share["dns"] >= 0.9 and share["anycast"] < share["dns"] - 0.2, share
    assert share["steering"] > share["anycast"] + 0.2, share
    steering = routing["steering"]["steering"]
    assert steering["requests"] > 8 and steering["lowest_rtt_share"] >= 0.9, steering

    # edge_a dies: under anycast the announcement goes, its viewers move, DNS unchanged
    withdrawn = [a for a in anycast["announcements"] if a["kind"] == "anycast_withdrawn"]
    assert [a["cluster"] for a in withdrawn] == ["edge_a"], anycast["announcements"]
    assert withdrawn[0]["catchments"] == dict.fromkeys(POLICY, "edge_f")
    assert withdrawn[0]["convergence_s"] is not None and withdrawn[0]["convergence_s"] < 30
    # the same change among the run's BGP changes (the DNS variant made none)
    (change,) = routing["anycast"]["bgp_changes"]
    assert change["cause"] == "edge_a withdraws" and change["by"] == "health", change
    assert change["at_s"] > 12 and change["convergence_s"] == withdrawn[0]["convergence_s"]
    assert change["routers_changed"] and change["unreachable"] == {}, change
    assert routing["dns"]["bgp_changes"] == []
    for name in ("dns", "anycast", "steering"):
        death = next(m for m in routing[name]["moves"] if m["kind"] == "cluster_down")
        assert death["affected"] >= 2 and death["moved"] == death["affected"], (name, death)
    assert {a["cluster"] for a in answers(Path(summaries["anycast"]["bundle"]))} == \
        {"anycast"}, "DNS answered the anycast address throughout"

    # anycast shedding load: edge_a's uplink cut at 6 s, its announcement withdrawn while
    # its load is over 0.8 (its viewers to edge_f, no DNS involved), back after 8 s at least
    changes = routing["anycast_shed"]["anycast"]["announcements"]
    shed = [a for a in changes if a["kind"] == "anycast_withdrawn"]
    assert shed and all(a["cluster"] == "edge_a" and a["reason"] == "overloaded"
                        and a["load"] > 0.8 and a["at_s"] > 6 for a in shed), changes
    assert shed[0]["catchments"] == dict.fromkeys(POLICY, "edge_f"), shed[0]
    for back in (a for a in changes if a["kind"] == "anycast_announced"):
        before = max(a["at_s"] for a in shed if a["at_s"] < back["at_s"])
        assert back["reason"] == "up" and back["at_s"] - before >= 8 - 1, changes
    cut = next(m for m in routing["anycast_shed"]["moves"] if m["kind"] == "cluster_capacity")
    assert cut["affected"] >= 2 and cut["moved"] == cut["affected"], cut
