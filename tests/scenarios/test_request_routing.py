"""request_routing: the same network, content and workload routed four ways (its variants:
DNS through ISP resolvers, DNS through a public resolver without ECS, content steering,
steering plus CMSD), with edge_x's capacity cut at 8 s and edge_a's servers killed at
16 s. Each variant runs as `cdnlab run request_routing` runs it (its overrides), and the
comparison is the one `cdnlab run` writes (`variants.md`). The claims checked are the
mechanisms' own: steering sees the viewer (not its resolver), so it maps viewers at least
as well as DNS through a public resolver; a dead cluster's sessions move at their next
segment under steering (within a steering TTL and a segment), while DNS waits for the TTL;
CMSD's `du` moves sessions off an overloaded cluster at the next segment, sooner than
steering or DNS alone move them, and the cluster spends no longer over its threshold.
Every variant's run must be judged faithful (one run again if not)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cdnlab.results.variants import variants_report
from cdnlab.scenario.spec import load_scenario, variant_overrides
from tests.scenarios.conftest import RunScenario, assert_faithful

pytestmark = pytest.mark.root


def sooner(seconds: float | None, other: float | None) -> bool:
    """`seconds` until 90 % moved is measured and sooner than `other`'s; null (fewer than
    90 % of the sessions ever moved) is later than any measured time."""
    return seconds is not None and (other is None or seconds < other)


def test_request_routing(run_scenario: RunScenario, cdnlab_results: Path) -> None:
    """(Short names: unbound's control socket path under the bundle must stay under the
    107 characters a Unix socket path may have.)"""
    scenario = load_scenario("request_routing")
    assert list(scenario.variants) == ["dns", "dns_public", "steering", "steering_cmsd"]
    summaries: dict[str, dict[str, Any]] = {}
    for name, overrides in scenario.variants.items():
        summaries[name] = run_scenario("request_routing", variant_overrides(name, overrides),
                                       out=f"rr-{name}", faithful=True)
    report = variants_report(cdnlab_results,
                             {n: Path(s["bundle"]) for n, s in summaries.items()})
    rows = report["variants"]
    assert "| steering_cmsd |" in (cdnlab_results / "variants.md").read_text()
    for name, summary in summaries.items():
        assert_faithful(summary)
        players = summary["players"]
        assert players["completed"] == players["sessions"] == 12, (name, players)
        run = json.loads((Path(summary["bundle"]) / "run.json").read_text())
        assert run["scenario"]["variant"] == name
    assert rows["steering_cmsd"]["routing"] == "steering cmsd via isp resolvers"
    assert rows["dns_public"]["routing"] == "dns via public resolvers"

    # where viewers were served from: the steering server sees each viewer's address, a
    # DNS server behind a public resolver only the resolver's (in the cloud)
    assert rows["steering"]["lowest_rtt_share"] >= rows["dns_public"]["lowest_rtt_share"]
    assert rows["dns"]["lowest_rtt_share"] > rows["dns_public"]["lowest_rtt_share"], rows

    # a cluster's death: steering moves its sessions at their next segment
    ttl = scenario.variants["steering"]["routing"]["steering_ttl_s"]
    segment_s = scenario.content.segment_s
    for name in ("steering", "steering_cmsd"):
        death = next(m for m in summaries[name]["routing"]["moves"]
                     if m["kind"] == "cluster_down")
        assert death["affected"] >= 4 and death["moved"] == death["affected"], death
        assert death["to_90pct_s"] <= ttl + segment_s, (name, death)
    dns_death = next(m for m in summaries["dns"]["routing"]["moves"]
                     if m["kind"] == "cluster_down")
    assert dns_death["affected"] >= 4 and dns_death["to_90pct_s"] is not None, dns_death

    # an overloaded cluster: CMSD's du moves sessions off it at their next segment, where
    # DNS and steering move them only as the spill policy re-answers
    cmsd = summaries["steering_cmsd"]["routing"]
    assert cmsd["cmsd"]["duress_seen"].get("edge_x", 0) > 0, cmsd["cmsd"]
    assert cmsd["steering"]["pathway_changes"].get("duress", 0) > 0, cmsd["steering"]
    moved = {n: rows[n]["overload_to_90pct_s"] for n in ("dns", "steering", "steering_cmsd")}
    assert sooner(moved["steering_cmsd"], moved["steering"]), moved
    assert sooner(moved["steering_cmsd"], moved["dns"]), moved
    over = {n: rows[n]["overloaded_seconds_over"] for n in ("dns", "steering", "steering_cmsd")}
    assert over["steering_cmsd"] <= over["steering"] and over["steering_cmsd"] <= over["dns"], \
        over
    for name in ("dns", "steering"):
        assert summaries[name]["routing"]["cmsd"] is None
