"""What the recursive resolvers did, for summary.json's `dns` section (empty without them):

    resolvers   per resolver: kind (isp, public), ecs, address, clients, fallback;
                `resolutions` (players' answers it gave), `redirector_queries` (answers the
                redirector gave it), unbound's own counts summed over its lifetimes:
                `queries`, `cache_hits` (its message cache plus, with ECS, its subnet
                cache), `cache_hit_ratio`, `ecs_queries`
    lowest_rtt_share_by_resolver
                per resolver, the share of players' resolutions through it that named the
                cluster with the lowest true RTT for the *viewer* (the player's host), not
                for the resolver the redirector saw; None when it answered none
    resolver_failovers
                nameservers a player's stub resolver gave up on (timeouts, SERVFAIL),
                before asking the next
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from cdnlab.results.bundle import Bundle
from cdnlab.results.truth import RttTruth

COUNTS = ("queries", "cache_hits", "cache_misses", "ecs_queries", "ecs_cache_hits")


def unbound_counts(events: list[dict[str, Any]]) -> dict[str, int | None]:
    """unbound's counters over every lifetime of one resolver (a restart starts them at
    0): the last `stats` of each lifetime, summed."""
    lifetimes: list[dict[str, Any]] = []
    for event in events:
        if event.get("event") == "ready":
            lifetimes.append({})
        elif event.get("event") == "stats" and lifetimes and "error" not in event:
            lifetimes[-1] = event
    totals: dict[str, int | None] = {}
    for name in COUNTS:
        values = [life.get(name) for life in lifetimes if life]
        totals[name] = sum(v for v in values if v is not None) if any(
            v is not None for v in values) else None
    return totals


def resolvers_summary(bundle: Bundle, truth: RttTruth,
                      answers: list[dict[str, Any]]) -> dict[str, Any]:
    setup = bundle.engine("resolvers")
    if not setup:
        return {}
    resolvers: dict[str, dict[str, Any]] = setup[-1]["resolvers"]
    name_of = {r["address"]: name for name, r in resolvers.items()}
    resolutions: dict[str, int] = defaultdict(int)
    lowest: dict[str, int] = defaultdict(int)
    judged: dict[str, int] = defaultdict(int)
    failovers = 0
    for event in bundle.lines("*.players.jsonl"):
        if event.get("event") == "resolver_failed":
            failovers += 1
        if event.get("event") != "resolve" or event.get("resolver") not in name_of:
            continue
        name = name_of[event["resolver"]]
        resolutions[name] += 1
        verdict = truth.judge(event["node"], event.get("cluster"), event["t"])
        if verdict is not None:
            judged[name] += 1
            lowest[name] += verdict.lowest
    asked: dict[str, int] = defaultdict(int)
    for answer in answers:
        if answer.get("client") in name_of:
            asked[name_of[answer["client"]]] += 1
    by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in bundle.lines("*.resolver.jsonl"):
        by_node[event.get("node", "")].append(event)
    summary: dict[str, dict[str, Any]] = {}
    for name, setting in resolvers.items():
        counts = unbound_counts(by_node.get(name, []))
        hits = None if counts["cache_hits"] is None else \
            counts["cache_hits"] + (counts["ecs_cache_hits"] or 0)
        summary[name] = setting | {
            "resolutions": resolutions[name], "redirector_queries": asked[name],
            "queries": counts["queries"], "cache_hits": hits,
            "cache_hit_ratio": round(hits / counts["queries"], 4)
            if hits is not None and counts["queries"] else None,
            "ecs_queries": counts["ecs_queries"]}
    return {"resolvers": summary,
            "lowest_rtt_share_by_resolver": {
                name: round(lowest[name] / judged[name], 4) if judged[name] else None
                for name in resolvers},
            "resolver_failovers": failovers}
