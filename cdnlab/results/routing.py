"""The `routing` section of a run's summary: how viewers reached clusters (`routing: dns`
or `steering` in the scenario) and, under content steering, what the steering exchange
did: requests the players made and how they were answered, pathway changes by reason,
segments by pathway, and the manifests the steering server logged, each judged as a DNS
answer is (`cdnlab/results/truth.py`): was the pathway ranked first the client's
lowest-RTT cluster then, and if not, by how much RTT. With `cmsd: true`, what the edges'
server data did: duress raised per edge server, duress seen by players per cluster, and
video segments whose bitrate CMSD's mb capped below the ABR's choice. Under `anycast`,
each client host's catchment as BGP predicted it and as its segments found it.

Whatever the mechanism, three figures compare them (`request_routing` puts them side by
side):
- `segments`: every video segment judged by the cluster that delivered it, against the
  true RTTs of its viewer's host at the moment it arrived (lowest-RTT share, mean extra
  RTT where it was not the lowest): where viewers were actually served from;
- `moves`: per `cluster_down` and `cluster_capacity` event, the sessions affected (whose
  last video segment before the event came from that cluster and that played on), how
  many later asked another cluster for a segment, and the time from the event until 90 %
  of them had (`to_90pct_s`, null when fewer than 90 % moved): each session's move is the
  moment its first request to another cluster began (the segment's arrival less its
  download time: the routing decision, not how long the new cluster took to deliver);
- `overloads`: per `cluster_capacity` event, the cluster's load over the overload's own
  window (from the event until the timeline's next event, or the run's end: what came
  after is another event's doing) as its edges' monitors measured it (utilisation of the
  new capacity over the last segment's time, each server's `load` events'
  `utilisation_window`, what its CMSD `du` is raised on; the cluster's is the mean of its
  servers' at each second): the peak, and the seconds above the cluster's threshold
  (`cdn.threshold`). And what a routing mechanism could do about it: the moment the
  cluster's monitor first saw it over the threshold (`noticed_s`), the moment the
  downloads no signal given then could have prevented had ended (`settled_s`: each
  session's downloads from the cluster begun before it had in full a response the cluster
  began after noticing, or before the cluster noticed, for a session that had already
  left it), and the seconds over the threshold wholly after that
  (`seconds_over_after_settled`: seconds whose every sample began after it; 0 when the
  mechanism kept the cluster at or below its threshold once it could, null when the
  window left no such second)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

from cdnlab.results.bundle import Bundle
from cdnlab.results.truth import RttTruth, Verdict
from nodes.common.conventions import LOAD_THRESHOLD

# whole seconds of load samples after an overload settled that the figure needs (null
# with fewer): the window until the next event may leave only one or two
MIN_SECONDS_SETTLED = 1


def routing_summary(bundle: Bundle) -> dict[str, Any]:
    chosen = (bundle.run.get("scenario") or {}).get("routing") or "dns"
    mode = chosen if isinstance(chosen, str) else str(chosen.get("mode", "dns"))
    server_data = isinstance(chosen, dict) and chosen.get("cmsd") is True
    return {"mode": mode, "steering": _steering(bundle) if mode == "steering" else None,
            "cmsd": _server_data(bundle) if server_data else None,
            "anycast": _anycast(bundle) if mode == "anycast" else None,
            "bgp_changes": bgp_changes(bundle) if bundle.run.get("bgp") else None,
            "segments": _segments(bundle), "moves": _moves(bundle),
            "overloads": _overloads(bundle)}


def _anycast(bundle: Bundle) -> dict[str, Any]:
    """Under `routing: anycast`: each client host's catchment as BGP's routes gave it when
    the network came up (run.json), whether that was its lowest-RTT cluster at second 0
    and the RTT it adds when not (the true RTT matrix), the clusters that delivered its
    video segments before the timeline's first event, whether those were only its
    catchment, and every withdrawal or announcement the health watch made, with BGP's
    convergence."""
    predicted = ((bundle.run.get("bgp") or {}).get("anycast") or {}).get("catchments") or {}
    applied = [float(e["t"]) for e in bundle.engine("event_applied")]
    first = min(applied, default=float("inf"))
    served: dict[str, set[str]] = {}
    for segment in _video(bundle):
        if float(segment["t"]) < first and segment.get("cluster"):
            served.setdefault(str(segment.get("node")), set()).add(str(segment["cluster"]))
    changes = [{"kind": e["event"], "cluster": e["cluster"], "reason": e.get("reason"),
                "load": e.get("load"), "at_s": round(float(e["t"]) - bundle.scenario_t, 3),
                "convergence_s": e.get("convergence_s"), "catchments": e.get("catchments")}
               for e in bundle.engine("anycast_withdrawn") + bundle.engine("anycast_announced")]
    truth = RttTruth(bundle)
    judged = {host: truth.judge(host, cluster, bundle.scenario_t)
              for host, cluster in sorted(predicted.items())}
    return {"predicted": predicted,
            "lowest_rtt": {h: None if v is None else v.lowest for h, v in judged.items()},
            "extra_rtt_ms": {h: None if v is None else round(v.extra_ms, 3)
                             for h, v in judged.items()},
            "served_before_events": {h: sorted(c) for h, c in sorted(served.items())},
            "as_predicted": {h: c == {predicted.get(h)} for h, c in sorted(served.items())},
            "announcements": sorted(changes, key=lambda c: c["at_s"])}


def bgp_changes(bundle: Bundle) -> list[dict[str, Any]]:
    """On a `routing: bgp` topology, every change BGP settled after during the run (a
    timeline event or the health watch: `bgp_converged`), in order: what, when it was
    applied, how long until the last route change, which routers' routes moved, what was
    left unreachable, and with anycast the catchments afterwards."""
    second_0 = float(bundle.run.get("scenario_epoch") or bundle.run.get("epoch") or 0.0)
    return [{"cause": e["cause"], "by": e.get("by"),
             "at_s": round(float(e["began"]) - second_0, 3),
             "convergence_s": e.get("convergence_s"),
             "routers_changed": e.get("routers_changed") or [],
             "unreachable": e.get("unreachable") or {}, "catchments": e.get("catchments")}
            for e in sorted(bundle.engine("bgp_converged"), key=lambda e: float(e["began"]))]


def _video(bundle: Bundle) -> list[dict[str, Any]]:
    return [e for e in bundle.lines("*.players.jsonl") if e.get("event") == "segment"]


def _tally(judgements: Iterable[Verdict | None]) -> tuple[int, list[float]]:
    """(how many were the lowest, the extra RTT of each that was not), None skipped."""
    lowest, extra = 0, []
    for judgement in judgements:
        if judgement is None:
            continue
        if judgement.lowest:
            lowest += 1
        else:
            extra.append(judgement.extra_ms)
    return lowest, extra


def _segments(bundle: Bundle) -> dict[str, Any]:
    truth = RttTruth(bundle)
    lowest, extra = _tally(truth.judge(str(s.get("node")), s.get("cluster"), float(s["t"]))
                           for s in _video(bundle))
    judged = lowest + len(extra)
    return {"judged": judged,
            "lowest_rtt_share": round(lowest / judged, 4) if judged else None,
            "extra_rtt_ms_per_segment": round(sum(extra) / judged, 4) if judged else None}


def _moves(bundle: Bundle) -> list[dict[str, Any]]:
    by_session: dict[str, list[dict[str, Any]]] = {}
    for segment in _video(bundle):
        by_session.setdefault(str(segment.get("session")), []).append(segment)
    found = []
    for event in bundle.engine("event_applied"):
        if event.get("kind") not in ("cluster_down", "cluster_capacity"):
            continue
        args = event.get("args")
        cluster = args if isinstance(args, str) else (args or {}).get("cluster")
        at = float(event["t"])
        waits = []
        affected = 0
        for segments in by_session.values():
            before = [s for s in segments if s["t"] <= at]
            after = [s for s in segments if s["t"] > at]
            if not before or not after or before[-1].get("cluster") != cluster:
                continue
            affected += 1
            moved = next((s for s in after if s.get("cluster") != cluster), None)
            if moved is not None:
                asked = float(moved["t"]) - float(moved.get("download_s") or 0.0)
                waits.append(max(asked - at, 0.0))
        waits.sort()
        needed = math.ceil(0.9 * affected) if affected else 0
        found.append({
            "kind": event["kind"], "cluster": cluster,
            "at_s": round(at - bundle.scenario_t, 3), "affected": affected,
            "moved": len(waits),
            "to_90pct_s": round(waits[needed - 1], 3) if affected and
            len(waits) >= needed else None})
    return found


def _overloads(bundle: Bundle) -> list[dict[str, Any]]:
    threshold = float(((bundle.run.get("scenario") or {}).get("cdn") or {}).get(
        "threshold", LOAD_THRESHOLD))
    found = []
    applied = sorted(bundle.engine("event_applied"), key=lambda e: float(e["t"]))
    media = [e for e in bundle.lines("*.players.jsonl")
             if e.get("event") in ("segment", "audio_segment")]
    for n, event in enumerate(applied):
        if event.get("kind") != "cluster_capacity":
            continue
        cluster, at = event["args"]["cluster"], float(event["t"])
        until = float(applied[n + 1]["t"]) if n + 1 < len(applied) else float("inf")
        seconds: dict[int, list[tuple[float, float, float]]] = {}
        for load in bundle.lines("*.jsonl"):
            if load.get("event") == "load" and load.get("cluster") == cluster and \
                    at < float(load["t"]) <= until:
                t = float(load["t"])
                seconds.setdefault(int(t), []).append(
                    (t - float(load["window_s"]), t, float(load["utilisation_window"])))
        # per second: when its samples began and ended, and the servers' mean
        means = {second: (min(s[0] for s in samples), max(s[1] for s in samples),
                          sum(s[2] for s in samples) / len(samples))
                 for second, samples in sorted(seconds.items())}
        noticed = next((end for _, end, mean in means.values() if mean > threshold), None)
        settled = None if noticed is None else settled_at(
            [e for e in media if float(e["t"]) > at
             and float(e["t"]) - float(e.get("download_s") or 0.0) < until], cluster, noticed)
        after = [mean for began, _, mean in means.values()
                 if settled is not None and began >= settled]
        found.append({
            "cluster": cluster, "at_s": round(at - bundle.scenario_t, 3),
            "mbps": float(event["args"]["mbps"]), "threshold": threshold,
            "utilisation_max": round(max(m for _, _, m in means.values()), 4)
            if means else None,
            "seconds_over_threshold": sum(1 for _, _, m in means.values() if m > threshold)
            if means else None,
            "noticed_s": round(noticed - at, 3) if noticed is not None else None,
            "settled_s": round(settled - at, 3) if settled is not None else None,
            "seconds_over_after_settled": sum(1 for m in after if m > threshold)
            if len(after) >= MIN_SECONDS_SETTLED else None})
    return found


def settled_at(downloads: list[dict[str, Any]], cluster: str, noticed: float) -> float:
    """When the last of `cluster`'s downloads that no signal it gave on noticing its
    overload could have prevented had ended: per session, every media download from the
    cluster begun before that session had in full any response the cluster began for it
    after noticing (the first that could say so: CMSD's `du`, or any answer a mechanism
    acts on at the next segment), or, for a session that had already asked
    another cluster by then, those begun before the cluster noticed. The moment the
    cluster noticed if none. `downloads` are the sessions' media downloads from every
    cluster."""
    by_session: dict[str, list[tuple[float, float, bool]]] = {}
    for event in downloads:
        end = float(event["t"])
        by_session.setdefault(str(event.get("session")), []).append(
            (end - float(event.get("download_s") or 0.0), end, event.get("cluster") == cluster))
    settled = noticed
    for spans in by_session.values():
        spans.sort()
        ours = [(start, end) for start, end, here in spans if here]
        before = [start for start, _ in ours if start < noticed]
        left = min((start for start, _, here in spans
                    if not here and before and start > max(before)), default=math.inf)
        told = min((end for start, end in ours if noticed <= start < left), default=None)
        limit = noticed if told is None else told
        settled = max([settled] + [end for start, end in ours if start < limit])
    return settled


def _server_data(bundle: Bundle) -> dict[str, Any]:
    players = bundle.lines("*.players.jsonl")
    raised = [e for e in bundle.lines("*.jsonl") if e.get("event") == "duress_on"]
    return {
        "duress_raised": dict(Counter(str(e.get("node")) for e in raised)),
        "duress_seen": dict(Counter(str(e.get("cluster")) for e in players
                                    if e.get("event") == "cmsd_duress")),
        "segments_capped": sum(1 for e in players if e.get("event") == "segment"
                               and "abr_quality" in e),
    }


def _steering(bundle: Bundle) -> dict[str, Any]:
    events = bundle.lines("*.players.jsonl")
    answers = [e for e in events if e.get("event") == "steering"]
    changes = [e for e in events if e.get("event") == "pathway_change"]
    segments = [e for e in events if e.get("event") == "segment"]
    manifests = [e for e in bundle.lines("dns.decisions.jsonl") if e.get("event") == "steer"]
    return {
        "requests": len(answers),
        "answered_by_status": dict(Counter(str(a.get("status")) for a in answers)),
        "pathway_changes": dict(Counter(str(c.get("reason")) for c in changes)),
        "segments_by_pathway": dict(Counter(str(s.get("pathway")) for s in segments)),
        "server_manifests": len(manifests),
        **_judged(bundle, manifests),
    }


def _judged(bundle: Bundle, manifests: list[dict[str, Any]]) -> dict[str, Any]:
    truth = RttTruth(bundle)

    def judged_one(manifest: dict[str, Any]) -> Verdict | None:
        host = truth.host_of(manifest.get("client"))
        first = (manifest.get("priority") or [None])[0]
        return truth.judge(host, first, manifest["t"]) if host else None

    lowest, extra = _tally(judged_one(m) for m in manifests)
    judged = lowest + len(extra)
    return {"judged": judged,
            "lowest_rtt_share": round(lowest / judged, 4) if judged else None,
            "extra_rtt_ms_mean": round(sum(extra) / len(extra), 4) if extra else None}
