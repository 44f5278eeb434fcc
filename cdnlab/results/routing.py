"""The `routing` section of a run's summary: how viewers reached clusters (`routing: dns`
or `steering` in the scenario) and, under content steering, what the steering exchange
did: requests the players made and how they were answered, pathway changes by reason,
segments by pathway, and the manifests the steering server logged, each judged as a DNS
answer is (`cdnlab/results/truth.py`): was the pathway ranked first the client's
lowest-RTT cluster then, and if not, by how much RTT. With `cmsd: true`, what the edges'
server data did: duress raised per edge server, duress seen by players per cluster, and
video segments whose bitrate CMSD's mb capped below the ABR's choice."""

from __future__ import annotations

from collections import Counter
from typing import Any

from cdnlab.results.bundle import Bundle
from cdnlab.results.truth import RttTruth


def routing_summary(bundle: Bundle) -> dict[str, Any]:
    chosen = (bundle.run.get("scenario") or {}).get("routing") or "dns"
    mode = chosen if isinstance(chosen, str) else str(chosen.get("mode", "dns"))
    server_data = isinstance(chosen, dict) and chosen.get("cmsd") is True
    return {"mode": mode, "steering": _steering(bundle) if mode == "steering" else None,
            "cmsd": _server_data(bundle) if server_data else None}


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
    lowest, extra = 0, []
    for manifest in manifests:
        host = truth.host_of(manifest.get("client"))
        first = (manifest.get("priority") or [None])[0]
        judgement = truth.judge(host, first, manifest["t"]) if host else None
        if judgement is None:
            continue
        if judgement.lowest:
            lowest += 1
        else:
            extra.append(judgement.extra_ms)
    judged = lowest + len(extra)
    return {"judged": judged,
            "lowest_rtt_share": round(lowest / judged, 4) if judged else None,
            "extra_rtt_ms_mean": round(sum(extra) / len(extra), 4) if extra else None}
