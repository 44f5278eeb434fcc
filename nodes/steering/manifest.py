"""The steering manifest a DASH content steering server answers, and the ranking behind it.

DASH-IF Content Steering (DASH-IF CTS 001 v1.0, ETSI TS 103 998; ISO/IEC 23009-1 6th ed.
annex K.3.6): a JSON object with `VERSION` 1, `TTL` (seconds until the client asks again),
`RELOAD-URI` (where it asks), `PATHWAY-PRIORITY` (pathway IDs, the MPD's
`BaseURL@serviceLocation` values, best first; a client drops pathways not listed) and
`PATHWAY-CLONES` (a pathway made from another: `BASE-ID`, `ID`, `URI-REPLACEMENT` with
`HOST` and `PARAMS`). The client reports what it used in the request's query, as dash.js's
ContentSteeringController sends it: `_DASH_pathway="a,b"` (the service locations it
fetched from since its last request, best throughput first) and `_DASH_throughput=t1,t2`
(their mean throughput in bit/s, for those it measured).

Pathways are the redirector's clusters, ranked by the same decision DNS answers with
(`nodes/dns/policies.py`, the service's policy on the same zone snapshot): the cluster the
policy chose first, then the others by RTT to the client's network, clusters whose RTT or
load is stale after the fresh ones, clusters marked down left out. Two refinements use
what the client reported: its current pathway (the first it reported) stays first while it
is usable, under its load threshold and within `stick_ms` of the chosen one's RTT, so a
session does not flap between near-equal clusters; and a pathway whose reported throughput
is below `demote_below_bps` goes after the others. A cluster that is not among the MPD's
pathways is announced as a clone of the best MPD pathway with its own host
(`<cluster>.cluster.<zone>`, which the redirector answers with the cluster's addresses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from nodes.common.records import record_name
from nodes.dns.policies import Candidate, Decision

VERSION = 1


@dataclass(frozen=True)
class SteeringSettings:
    port: int
    address: str
    ttl_s: int = 10
    services: tuple[str, ...] | None = None  # absolute names steered; None: every service
    stick_ms: float = 2.0
    rate_per_s: float = 500.0  # requests answered per second before 429
    pathways: tuple[str, ...] | None = None  # the MPD's pathways; None: every cluster
    demote_below_bps: float | None = None


@dataclass(frozen=True)
class Reported:
    """What the client said it used: pathways, best throughput first, with the mean
    throughput it measured on each (None where it measured none)."""
    pathways: tuple[str, ...] = ()
    throughput_bps: tuple[float | None, ...] = ()

    @property
    def current(self) -> str | None:
        return self.pathways[0] if self.pathways else None

    def of(self, pathway: str) -> float | None:
        if pathway in self.pathways:
            index = self.pathways.index(pathway)
            if index < len(self.throughput_bps):
                return self.throughput_bps[index]
        return None


class QueryError(ValueError):
    pass


def read_query(query: str) -> tuple[Reported, str | None]:
    """The client's report and its session (`session=`, which this server's RELOAD-URI
    carries) from a steering request's query string."""
    fields = parse_qs(query, keep_blank_values=True)
    pathways = tuple(p for p in fields.get("_DASH_pathway", [""])[-1].strip('"').split(",")
                     if p)
    throughputs: list[float | None] = []
    for text in (t for t in fields.get("_DASH_throughput", [""])[-1].split(",") if t):
        try:
            value = float(text)
        except ValueError:
            raise QueryError(f"_DASH_throughput {text!r} is not a number") from None
        if value < 0:
            raise QueryError(f"_DASH_throughput {text!r} is negative")
        throughputs.append(value)
    session = fields.get("session", [None])[-1] or None
    return Reported(pathways, tuple(throughputs)), session


@dataclass(frozen=True)
class Ranking:
    priority: tuple[str, ...]  # every pathway offered, best first
    reason: str  # the policy's reason for the first, or `sticky` / `demoted`


def rank(decision: Decision, reported: Reported, settings: SteeringSettings) -> Ranking:
    """Pathways best first, from the policy's decision (its candidates carry each
    cluster's health, from the same zone snapshot) and the client's report."""
    up = [c for c in decision.candidates if c.why_not != "down"]
    fresh = [c for c in up if c.usable]
    order = [c.cluster for c in fresh] + [c.cluster for c in up if not c.usable]
    if decision.cluster is not None and decision.cluster in order:
        order.remove(decision.cluster)
        order.insert(0, decision.cluster)
    reason = decision.reason
    current = reported.current
    chosen = _candidate(fresh, order[0]) if order else None
    kept = _candidate(fresh, current) if current else None
    if chosen is not None and kept is not None and kept is not chosen and \
            _has_room(kept) and kept.rtt_ms is not None and chosen.rtt_ms is not None and \
            kept.rtt_ms <= chosen.rtt_ms + settings.stick_ms:
        order.remove(kept.cluster)
        order.insert(0, kept.cluster)
        reason = "sticky"
    if settings.demote_below_bps is not None:
        slow = [p for p in order if (t := reported.of(p)) is not None
                and t < settings.demote_below_bps]
        if slow and len(slow) < len(order):
            if order[0] in slow:
                reason = "demoted"
            order = [p for p in order if p not in slow] + slow
    return Ranking(tuple(order), reason)


def _candidate(candidates: list[Candidate], name: str) -> Candidate | None:
    return next((c for c in candidates if c.cluster == name), None)


def _has_room(candidate: Candidate) -> bool:
    return candidate.load is None or candidate.load < candidate.threshold


def manifest(ranking: Ranking, settings: SteeringSettings, reload_uri: str,
             zone: str) -> dict[str, Any]:
    """The steering manifest for a ranking: clusters outside the MPD's pathways become
    clones of the best MPD pathway in the priority list."""
    body: dict[str, Any] = {"VERSION": VERSION, "TTL": settings.ttl_s,
                            "RELOAD-URI": reload_uri,
                            "PATHWAY-PRIORITY": list(ranking.priority)}
    if settings.pathways is not None:
        base = next((p for p in ranking.priority if p in settings.pathways), None)
        clones = [p for p in ranking.priority if p not in settings.pathways]
        if base is not None and clones:
            body["PATHWAY-CLONES"] = [
                {"BASE-ID": base, "ID": clone, "URI-REPLACEMENT": {
                    "HOST": record_name("cluster", zone, clone).rstrip("."), "PARAMS": {}}}
                for clone in clones]
        elif clones:  # nothing to clone from: offer only what the MPD names
            body["PATHWAY-PRIORITY"] = [p for p in ranking.priority if p in settings.pathways]
    return body
