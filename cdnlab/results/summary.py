"""summary.json: the figures a scenario test asserts on, computed from the bundle alone.

    dns       answers, lowest_rtt_share (answers naming the cluster with the lowest true
              RTT for that client at that moment among the clusters up, from the
              engine's RTT matrices and health changes),
              spill_share, extra_rtt_ms_mean (true RTT above the lowest, over the answers
              that were not the lowest), reasons, answers per cluster; with recursive
              resolvers, what each did and its viewers' lowest-RTT share
              (`cdnlab.results.resolvers`)
    cache     per cluster and overall: requests, hit_ratio, byte_hit_ratio (edge logs)
    network   bytes by link class (both directions, from the kernel's link counters), over
              the run and from the first arrival on (`bytes_viewing`)
    origin    bytes the origin served, per cluster that fetched them (and to clients)
    fill      bytes, rate, cap, complete, in_window (push mode)
    players   per session, per ABR algorithm and aggregate QoE, startup, rebuffering
              (and stalls by the track that ran dry: video, audio), video bitrate,
              switches, and Jain's fairness of average bitrate among viewers
              behind the same ISP
    fidelity  configured against measured RTT, checked before teardown
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from cdnlab.results.bundle import Bundle
from cdnlab.results.resolvers import resolvers_summary
from cdnlab.results.truth import RttTruth

SERVED = {"HIT", "STALE", "REVALIDATED", "UPDATING"}
FETCHED = {"MISS", "EXPIRED", "BYPASS"}


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def jain(values: list[float]) -> float | None:
    """Jain's fairness index: 1 when all equal, 1/n when one takes everything."""
    values = [v for v in values if v is not None]
    if not values or not any(values):
        return None
    return round(sum(values) ** 2 / (len(values) * sum(v * v for v in values)), 4)


def dns_summary(bundle: Bundle) -> dict[str, Any]:
    answers = [a for a in bundle.lines("dns.decisions.jsonl") if a.get("event") == "answer"]
    truth = RttTruth(bundle)
    if not truth.matrices:
        return {"answers": len(answers)}
    lowest_hits = spills = judged = 0
    extra: list[float] = []
    reasons: Counter[str] = Counter()
    per_cluster: Counter[str] = Counter()
    for answer in answers:
        reasons[answer["reason"]] += 1
        if answer["cluster"]:
            per_cluster[answer["cluster"]] += 1
        spills += answer["reason"] == "spill"
        host = truth.host_of(answer["client"]) or truth.host_of(
            (answer.get("subnet") or "").split("/")[0])
        verdict = truth.judge(host, answer["cluster"], answer["t"]) if host else None
        if verdict is None:
            continue
        judged += 1
        if verdict.lowest:
            lowest_hits += 1
        else:
            extra.append(verdict.extra_ms)
    return {"answers": len(answers), "judged": judged,
            "lowest_rtt_share": _ratio(lowest_hits, judged),
            "spill_share": _ratio(spills, len(answers)),
            "extra_rtt_ms_mean": _mean(extra), "not_lowest": len(extra),
            "reasons": dict(reasons), "answers_by_cluster": dict(per_cluster),
            **resolvers_summary(bundle, truth, answers)}


def cache_summary(bundle: Bundle) -> dict[str, Any]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for record in bundle.lines("*.access.jsonl"):
        cluster = record.get("cluster")
        cache = record.get("cache") or ""
        if not cluster or cache not in SERVED | FETCHED:
            continue
        size = int(record.get("bytes") or 0)
        for key in (cluster, "overall"):
            counts[key]["requests"] += 1
            counts[key]["bytes"] += size
            if cache in SERVED:
                counts[key]["hits"] += 1
                counts[key]["hit_bytes"] += size
    return {key: {"requests": c["requests"], "hit_ratio": _ratio(c["hits"], c["requests"]),
                  "byte_hit_ratio": _ratio(c["hit_bytes"], c["bytes"]), "bytes": c["bytes"]}
            for key, c in sorted(counts.items())}


def network_summary(bundle: Bundle) -> dict[str, Any]:
    samples = bundle.engine("link_bytes")
    if len(samples) < 2:
        return {"bytes": {}}
    classes = samples[0]["classes"]

    def by_class(first: dict[str, int], last: dict[str, int]) -> dict[str, int]:
        found: Counter[str] = Counter()
        for link, value in last.items():
            found[classes.get(link, "other")] += max(0, value - first.get(link, value))
        return dict(found)

    arrival = ((bundle.run.get("scenario") or {}).get("workload") or {}).get("arrival") or {}
    viewing_from = bundle.scenario_t + float(arrival.get("start_s", 1.0))
    viewing = [s for s in samples if s["t"] >= viewing_from]
    return {"bytes": by_class(samples[0]["bytes"], samples[-1]["bytes"]),
            "bytes_viewing": by_class(viewing[0]["bytes"], samples[-1]["bytes"])
            if viewing else {},
            "seconds": round(samples[-1]["t"] - samples[0]["t"], 3)}


def origin_summary(bundle: Bundle) -> dict[str, Any]:
    """What the origin served, by who asked: each cluster's fetches (pull misses) and
    clients sent there directly (push misses), over the run and while viewing."""
    cluster_of = bundle.run.get("cluster_of_ip", {})
    arrival = ((bundle.run.get("scenario") or {}).get("workload") or {}).get("arrival") or {}
    viewing_from = float(bundle.run.get("scenario_epoch") or 0) + float(
        arrival.get("start_s", 1.0))
    total: Counter[str] = Counter()
    viewing: Counter[str] = Counter()
    for record in bundle.lines("origin.access.jsonl"):
        who = cluster_of.get(record.get("client"), "clients")
        size = int(record.get("bytes") or 0)
        total[who] += size
        if float(record.get("time", 0)) >= viewing_from:
            viewing[who] += size
    return {"bytes_by_cluster": dict(total), "bytes_viewing_by_cluster": dict(viewing)}


def fill_summary(bundle: Bundle) -> dict[str, Any] | None:
    events = bundle.lines("fill*.jsonl")
    done = [e for e in events if e.get("event") == "fill_done"]
    if not done:
        return None
    scenario = bundle.run.get("scenario", {})
    window = (scenario.get("cdn") or {}).get("fill") or {}
    start = bundle.scenario_t + float(window.get("start_s", 0))
    end = bundle.scenario_t + float(window.get("end_s", 1e12))
    starts = [e["t"] for e in events if e.get("event") == "fill_start"]
    return {"bytes": sum(e["bytes"] for e in done), "rate_mbps": _mean([e["rate_mbps"]
                                                                         for e in done]),
            "cap_mbps": done[0]["cap_mbps"], "complete": all(e["complete"] for e in done),
            "titles": {e["cluster"]: len(e["titles"]) for e in done},
            "in_window": bool(starts) and min(starts) >= start - 0.1 and
            max(e["t"] for e in done) <= end + 0.5}


def _stalls_by_track(sessions: list[dict[str, Any]]) -> dict[str, int]:
    """Stalls per track that ran dry (video, audio), over the sessions given."""
    counts: dict[str, int] = defaultdict(int)
    for session in sessions:
        for track, count in (session.get("stalls_by_track") or {}).items():
            counts[track] += count
    return dict(sorted(counts.items()))


def players_summary(bundle: Bundle, isp_of: dict[str, str]) -> dict[str, Any]:
    ends = [e for e in bundle.lines("*.players.jsonl") if e.get("event") == "session_end"]
    sessions = [{k: v for k, v in e.items() if k not in ("t", "event")} for e in ends]
    completed = [s for s in sessions if s["completed"]]
    groups: dict[str, list[float]] = defaultdict(list)
    for s in completed:
        groups[isp_of.get(s["node"], s["node"])].append(s["avg_bitrate_kbps"])
    fairness = {group: jain(values) for group, values in groups.items() if len(values) > 1}
    return {
        "sessions": len(sessions), "completed": len(completed),
        "qoe_mean": _mean([s["qoe"] for s in completed]),
        "qoe_per_s_mean": _mean([s["qoe_per_s"] for s in completed
                                 if s.get("qoe_per_s") is not None]),
        "startup_s_mean": _mean([s["startup_s"] for s in completed
                                 if s["startup_s"] is not None]),
        "rebuffer_s_total": round(sum(s["rebuffer_s"] for s in completed), 3),
        "rebuffer_count_total": sum(s["rebuffer_count"] for s in completed),
        "stalls_by_track": _stalls_by_track(completed),
        "avg_bitrate_kbps_mean": _mean([s["avg_bitrate_kbps"] for s in completed]),
        "switches_mean": _mean([s["switches"] for s in completed]),
        "jain_fairness": fairness,
        "by_algo": {algo: {"sessions": len(mine),
                           "avg_bitrate_kbps": _mean([s["avg_bitrate_kbps"] for s in mine]),
                           "rebuffer_s": round(sum(s["rebuffer_s"] for s in mine), 3),
                           "switches": _mean([s["switches"] for s in mine]),
                           "qoe": _mean([s["qoe"] for s in mine]),
                           "qoe_per_s": _mean([s["qoe_per_s"] for s in mine
                                               if s.get("qoe_per_s") is not None])}
                    for algo in sorted({s["algo"] for s in completed})
                    for mine in [[s for s in completed if s["algo"] == algo]]},
        "jain_fairness_mean": _mean([v for v in fairness.values() if v is not None]),
        "per_session": sessions,
    }


def build_summary(root: Path) -> dict[str, Any]:
    bundle = Bundle(root)
    fidelity_path = bundle.events_dir / "fidelity.json"
    fidelity = json.loads(fidelity_path.read_text()) if fidelity_path.exists() else None
    scenario = bundle.run.get("scenario", {})
    summary = {
        "scenario": bundle.run.get("name"), "seed": bundle.run.get("seed"),
        "interrupted": bundle.run.get("interrupted"),
        "mode": (scenario.get("cdn") or {}).get("mode", "pull"),
        "dns": dns_summary(bundle), "cache": cache_summary(bundle),
        "network": network_summary(bundle), "origin": origin_summary(bundle),
        "fill": fill_summary(bundle), "modes": bundle.run.get("modes"),
        "players": players_summary(bundle, bundle.run.get("isp_of", {})),
        "fidelity": fidelity.get("summary") if fidelity else None,
        "events": {"applied": [e["kind"] for e in bundle.engine("event_applied")],
                   "failed": [e["kind"] for e in bundle.engine("event_failed")]},
    }
    (root / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
