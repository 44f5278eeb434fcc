"""summary.json: the figures a scenario test asserts on, computed from the bundle alone.

    dns       answers, lowest_rtt_share (answers naming the cluster with the lowest true
              RTT for that client at that moment among the clusters up, from the
              engine's RTT matrices and health changes),
              spill_share, extra_rtt_ms_mean (true RTT above the lowest, over the answers
              that were not the lowest), reasons, answers per cluster; with recursive
              resolvers, what each did and its viewers' lowest-RTT share
              (`cdnlab.results.resolvers`)
    cache     per cluster and overall: requests, hit_ratio, byte_hit_ratio (edge logs)
    network   bytes crossing named boundaries (origin egress, out of the transit, into
              the IXP, into each ISP, access; see `boundaries`), over the run and from the
              first arrival on; and bytes by link class (every link of the class, both
              directions: a byte that crosses two links of a class counts twice)
    origin    bytes the origin served, per cluster that fetched them (and to clients)
    fill      bytes, rate, cap, complete, in_window (push mode)
    players   sessions playing at once (peak, and mean from the first start to the last
              end); per session, per ABR algorithm and aggregate QoE, startup, rebuffering
              (and stalls by the track that ran dry: video, audio), video bitrate,
              switches, and Jain's fairness of average bitrate among viewers
              behind the same ISP
    faults    program exits nobody asked for and those the timeline injected, each with
              its sessions failed after it by reason (`cdnlab.results.faults`); players
              also count every failed session by reason
    fidelity  configured against measured RTT, checked before teardown, and the run
              monitor's verdict over the whole run: ok, violations (invariant, where,
              from/to in scenario seconds, worst, limit), the verdict in words, and the
              monitor's extremes (CPU, run queue, the run's CPU share, timer and delay
              lateness)
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from cdnlab.measure import verdict
from cdnlab.results.bundle import Bundle
from cdnlab.results.cmcd import cmcd_summary
from cdnlab.results.faults import failed_sessions, faults_summary
from cdnlab.results.resolvers import resolvers_summary
from cdnlab.results.routing import routing_summary
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
        judgement = truth.judge(host, answer["cluster"], answer["t"]) if host else None
        if judgement is None:
            continue
        judged += 1
        if judgement.lowest:
            lowest_hits += 1
        else:
            extra.append(judgement.extra_ms)
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
            "boundaries": boundaries(samples[0], samples[0], samples[-1]),
            "boundaries_viewing": boundaries(samples[0], viewing[0], samples[-1])
            if viewing else None,
            "seconds": round(samples[-1]["t"] - samples[0]["t"], 3)}


TRANSIT_ROLES = {"transit", "cloud"}


def boundaries(setup: dict[str, Any], first: dict[str, Any],
               last: dict[str, Any]) -> dict[str, Any] | None:
    """Bytes crossing named boundaries between two `link_bytes` samples, each byte counted
    once per boundary, in the direction that crosses it (`setup`: the first sample, which
    names the links' ends and roles):

        origin_egress   leaving the origin host
        transit_out     leaving the transit network (routers of role transit or cloud)
                        toward anything but the origin: what the transit carried out
        ixp_in          entering the IXP fabric, from every member
        into_isp        per ISP router: entering it from the IXP, transit or another ISP
        access_down     delivered to client hosts over their access links
        access_up       sent by client hosts

    None for a bundle recorded before links were counted per direction."""
    ends, roles = setup.get("ends"), setup.get("roles")
    if not ends or not roles or "directed" not in first or "directed" not in last:
        return None
    found: Counter[str] = Counter()
    into_isp: Counter[str] = Counter()

    def crossing(link: str, toward: str) -> int:
        """Bytes on `link` toward its end `toward`, between the two samples (`directed`
        holds [a → b, b → a])."""
        index = 0 if ends[link][1] == toward else 1
        before = first["directed"].get(link, [0, 0])[index]
        return max(0, last["directed"].get(link, [0, 0])[index] - before)

    for link, (a, b) in ends.items():
        if link not in last["directed"]:
            continue
        for here, there in ((a, b), (b, a)):
            role, other = roles.get(here), roles.get(there)
            if role == "origin":
                found["origin_egress"] += crossing(link, there)
            if role in TRANSIT_ROLES and other not in TRANSIT_ROLES | {"origin"}:
                found["transit_out"] += crossing(link, there)
            if other == "ixp":
                found["ixp_in"] += crossing(link, there)
            if role == "client":
                found["access_down"] += crossing(link, here)
                found["access_up"] += crossing(link, there)
            if role == "isp" and other in TRANSIT_ROLES | {"ixp", "isp"}:
                into_isp[here] += crossing(link, here)
    return dict(sorted(found.items())) | {"into_isp": dict(sorted(into_isp.items()))}


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
            "wire_mbps_by_cluster": {e["cluster"]: fill_on_wire(
                bundle, e["cluster"], e["t"] - e["seconds"], e["t"]) for e in done},
            "in_window": bool(starts) and min(starts) >= start - 0.1 and
            max(e["t"] for e in done) <= end + 0.5}


def fill_on_wire(bundle: Bundle, cluster: str, start: float, end: float) -> float | None:
    """The rate a fill reached a cluster at, on the wire: bytes into the cluster's switch
    over its uplinks (the kernel's per-direction counters) between the first and the last
    link sample inside the fill, over that time. None when the fill was shorter than two
    samples apart or the bundle has no per-direction counts."""
    samples = [e for e in bundle.engine("link_bytes") if "directed" in e]
    setup = next((e for e in samples if "ends" in e), None)
    inside = [e for e in samples if start <= e["t"] <= end]
    if setup is None or len(inside) < 2 or inside[-1]["t"] - inside[0]["t"] < 1.0:
        return None
    ends, roles = setup["ends"], setup["roles"]
    uplinks = [(link, 0 if b == cluster else 1) for link, (a, b) in ends.items()
               if cluster in (a, b) and roles.get(b if a == cluster else a) != "edge_server"]
    into = sum(inside[-1]["directed"].get(link, [0, 0])[index] -
               inside[0]["directed"].get(link, [0, 0])[index] for link, index in uplinks)
    return round(into * 8 / (inside[-1]["t"] - inside[0]["t"]) / 1e6, 3)


def _stalls_by_track(sessions: list[dict[str, Any]]) -> dict[str, int]:
    """Stalls per track that ran dry (video, audio), over the sessions given."""
    counts: dict[str, int] = defaultdict(int)
    for session in sessions:
        for track, count in (session.get("stalls_by_track") or {}).items():
            counts[track] += count
    return dict(sorted(counts.items()))


def concurrency(events: list[dict[str, Any]]) -> tuple[int | None, float | None]:
    """Sessions playing at once (from each `session_start` to its `session_end`): the peak,
    and the mean over the time from the first start to the last end."""
    changes = sorted((e["t"], 1 if e["event"] == "session_start" else -1) for e in events
                     if e.get("event") in ("session_start", "session_end"))
    if not changes:
        return None, None
    playing = peak = 0
    area, last = 0.0, changes[0][0]
    for t, step in changes:
        area += playing * (t - last)
        playing, last = playing + step, t
        peak = max(peak, playing)
    span = changes[-1][0] - changes[0][0]
    return peak, round(area / span, 2) if span > 0 else float(peak)


def players_summary(bundle: Bundle, isp_of: dict[str, str]) -> dict[str, Any]:
    events = bundle.lines("*.players.jsonl")
    ends = [e for e in events if e.get("event") == "session_end"]
    peak, mean = concurrency(events)
    sessions = [{k: v for k, v in e.items() if k not in ("t", "event")} for e in ends]
    completed = [s for s in sessions if s["completed"]]
    groups: dict[str, list[float]] = defaultdict(list)
    for s in completed:
        groups[isp_of.get(s["node"], s["node"])].append(s["avg_bitrate_kbps"])
    fairness = {group: jain(values) for group, values in groups.items() if len(values) > 1}
    return {
        "sessions": len(sessions), "completed": len(completed),
        "concurrent_peak": peak, "concurrent_mean": mean,
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
        "browsers": browsers_summary(sessions),
        "failures_by_reason": dict(Counter(s["failure"] for s in failed_sessions(bundle))),
        "per_session": sessions,
    }


def browsers_summary(sessions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The browser viewers' sessions: how they ended, and what each cost the machine."""
    mine = [s for s in sessions if s.get("player") == "dashjs"]
    if not mine:
        return None
    usage = [s["usage"] for s in mine if s.get("usage")]
    ended: dict[str, int] = defaultdict(int)
    for s in mine:
        ended[str(s.get("ended_by"))] += 1
    return {
        "sessions": len(mine), "completed": sum(1 for s in mine if s["completed"]),
        "ended_by": dict(ended),
        "launch_s_mean": _mean([s["launch_s"] for s in mine if s.get("launch_s") is not None]),
        "cpu_cores_mean": _mean([u["cpu_cores_mean"] for u in usage]),
        "pss_peak_mb_mean": _mean([u["pss_peak_mb"] for u in usage]),
        "pss_peak_mb_max": max((u["pss_peak_mb"] for u in usage), default=None),
        "versions": sorted({f"{s.get('browser')} dash.js {s.get('dashjs')}" for s in mine}),
    }


def violations_of(bundle: Bundle) -> list[verdict.Violation]:
    """The fidelity verdict's violations, from the bundle's monitor samples, delay queue
    stats, probe rounds and applied events."""
    events = bundle.lines("*.jsonl")
    return verdict.judge(
        [e for e in events if e.get("event") == "sample" and e.get("node") == "monitor"],
        [e for e in events if e.get("event") == "queue_stats"],
        bundle.engine("event_applied"), bundle.scenario_t,
        probe_rounds=[e for e in events if e.get("event") == "probe_round"])


def cpu_by_part(samples: list[dict[str, Any]]) -> dict[str, dict[str, float]] | None:
    """Per part of the run, its CPU seconds and its largest share of all cores in one
    sample, from the monitor's `cpu_by_part`; None where no sample had them."""
    seconds: dict[str, float] = defaultdict(float)
    peak: dict[str, float] = defaultdict(float)
    for sample in samples:
        cores = len(sample.get("cpu_busy") or []) or 1
        for part, share in (sample.get("cpu_by_part") or {}).items():
            seconds[part] += share * sample.get("interval_s", 1.0) * cores
            peak[part] = max(peak[part], share)
    if not seconds:
        return None
    return {part: {"cpu_s": round(seconds[part], 2), "peak_share": round(peak[part], 4)}
            for part in sorted(seconds, key=lambda p: -seconds[p])}


def fidelity_summary(bundle: Bundle, rtt: dict[str, Any] | None) -> dict[str, Any]:
    """The end-of-run RTT check and the run monitor's verdict, together: `ok` only when the
    RTTs were right and no invariant broke (`cdnlab.measure.verdict`)."""
    samples = [e for e in bundle.lines("fidelity*.jsonl") if e.get("event") == "sample"
               and e.get("node") == "monitor"]  # every machine's, in a split run
    queues = [e for e in bundle.lines("*.jsonl") if e.get("event") == "queue_stats"]
    violations = [v.to_dict() for v in violations_of(bundle)]
    lags = [q["lag_max_us"] for e in queues for q in e["queues"].values()
            if q.get("lag_max_us") is not None]
    monitor = {
        "samples": len(samples),
        "machines": len({s.get("machine") for s in samples}),
        "cpu_busy_mean_max": max((s["cpu_busy_mean"] for s in samples), default=None),
        "steal_share_max": max((s["steal_share"] for s in samples
                                if s.get("steal_share") is not None), default=None),
        "runnable_max": max((s["runnable"] for s in samples), default=None),
        "run_cpu_share_mean": _mean([s["run_cpu_share"] for s in samples
                                     if s.get("run_cpu_share") is not None]),
        "wake_p99_us_max": max((s["wake_p99_us"] for s in samples), default=None),
        "delay_lag_max_us": max(lags, default=None),
        "queues": len({q for s in samples for q in s.get("queues") or {}}) or None,
        "queue_drops": sum(q["drops"] for s in samples for q in (s.get("queues") or {}).values())
        if any(s.get("queues") for s in samples) else None,
        "cpu_by_part": cpu_by_part([s for s in samples if not s.get("machine")]),
    } if samples else None
    rtt_ok = rtt.get("ok") if rtt else None
    return (rtt or {}) | {
        "ok": bool(rtt_ok) and not violations if samples else rtt_ok,
        "rtt_ok": rtt_ok, "monitored": bool(samples), "violations": violations,
        "verdict": verdict.describe(violations) if samples else "not monitored",
        "monitor": monitor}


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
        "cmcd": cmcd_summary(bundle),
        "fidelity": fidelity_summary(bundle, fidelity.get("summary") if fidelity else None),
        "faults": faults_summary(bundle),
        "routing": routing_summary(bundle),
        "events": {"applied": [e["kind"] for e in bundle.engine("event_applied")],
                   "failed": [e["kind"] for e in bundle.engine("event_failed")]},
    }
    (root / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
