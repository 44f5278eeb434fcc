"""Policies: pure functions of (client, view of the zone, settings, a seeded draw) →
`Decision` (cluster, reason, candidates), unit-tested without sockets.

    min_rtt         the lowest-RTT usable cluster for the client's network
    min_rtt_spill   (default) the same, but while the cluster's demand is over its
                    threshold a share of its answers (the spill controller's, spill.py)
                    goes to the next-lowest-RTT usable cluster that is under its own
                    threshold; none goes to a cluster over it (`spill_blocked`)
    coverage_zone   longest-prefix CIDR → cluster map (like Traffic Router's), falling
                    back to min_rtt_spill for clients outside it
    round_robin     every usable cluster in turn
    anycast         the anycast address for everyone (a scenario's `routing: anycast`)

Usable = has addresses, not marked down, and neither its RTT to this network nor its load
is older than `stale_after_s`. When the lowest-RTT cluster is not usable the reason is
`failover`; a client network without measurements gets the least-loaded usable cluster
(`no_measurement`). When no cluster is usable (measurements lost, as when probes starve
under CPU saturation) the answer falls back, in order: the last known RTT ranking among
the clusters that are up (`stale_ranking`), the coverage zone (`coverage_fallback`), the
least-loaded cluster that is up (`no_measurement`). Only with no cluster up is there no
answer (`no_cluster`, SERVFAIL).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from nodes.common.conventions import ANYCAST, SPILL_GAIN, SPILL_MAX_SHARE, STALE_AFTER_S
from nodes.dns.spill import SpillController
from nodes.dns.view import ClusterState, NetworkRtts, View


@dataclass(frozen=True)
class PolicySettings:
    stale_after_s: float = STALE_AFTER_S
    spill_gain: float = SPILL_GAIN
    spill_max_share: float = SPILL_MAX_SHARE
    coverage: tuple[tuple[ipaddress.IPv4Network, str], ...] = ()  # longest prefix first


@dataclass(frozen=True)
class Candidate:
    cluster: str
    rtt_ms: float | None
    load: float | None
    threshold: float
    usable: bool
    why_not: str | None = None


@dataclass(frozen=True)
class Decision:
    cluster: str | None
    reason: str
    scope: int  # ECS scope prefix length the answer holds for
    candidates: tuple[Candidate, ...] = ()
    lowest: str | None = None  # the lowest-RTT cluster, usable or not
    spill_share: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class PolicyInput:
    client: int  # IPv4 address (or the ECS subnet's address) as an integer
    view: View
    now: float
    settings: PolicySettings
    draw: Callable[[], float]  # uniform [0, 1) from the server's seeded generator
    turn: Callable[[], int]  # increasing counter for round robin
    spill: SpillController | None = None  # the server's; a fresh one if not given


Policy = Callable[[PolicyInput], Decision]


def _why_not(state: ClusterState, rtt: float | None, rtt_updated: float | None,
             q: PolicyInput) -> str | None:
    if not state.up:
        return "down"
    if rtt_updated is not None and q.now - rtt_updated > q.settings.stale_after_s:
        return "rtt_stale"
    if state.load is not None and q.now - state.load.updated > q.settings.stale_after_s:
        return "load_stale"
    return None


def candidates(q: PolicyInput, network: NetworkRtts | None) -> tuple[Candidate, ...]:
    """Every cluster with its RTT to the client's network (unknown last), lowest first.
    Kept in the view's memo for the rest of the second: staleness is judged to the second."""
    key = (network.network if network else None, int(q.now))
    cached = q.view.memo.get(key)
    if cached is None:
        if len(q.view.memo) > 4096:
            q.view.memo.clear()
        cached = q.view.memo[key] = _candidates(q, network)
    return cached  # type: ignore[return-value]


def _candidates(q: PolicyInput, network: NetworkRtts | None) -> tuple[Candidate, ...]:
    found = []
    for name, state in q.view.clusters.items():
        reading = network.rtt.get(name) if network else None
        rtt = reading.value if reading else None
        why = _why_not(state, rtt, reading.updated if reading else None, q)
        found.append(Candidate(name, rtt, state.load.value if state.load else None,
                               state.threshold, why is None, why))
    return tuple(sorted(found, key=lambda c: (c.rtt_ms is None, c.rtt_ms or 0.0, c.cluster)))


def _fallback(q: PolicyInput, found: tuple[Candidate, ...], scope: int) -> Decision:
    """No cluster is usable: answer from what is still known, never SERVFAIL while a
    cluster is up (see the module's docstring for the order)."""
    up = [c for c in found if q.view.clusters[c.cluster].up]
    if not up:
        return Decision(None, "no_cluster", scope, found)
    ranked = [c for c in up if c.rtt_ms is not None]  # `found` is sorted by RTT
    if ranked:
        return Decision(ranked[0].cluster, "stale_ranking", scope, found,
                        found[0].cluster if found[0].rtt_ms is not None else None)
    for network, cluster in q.settings.coverage:
        if q.client & int(network.netmask) == int(network.network_address) and \
                any(c.cluster == cluster for c in up):
            return Decision(cluster, "coverage_fallback", network.prefixlen, found)
    least = min(up, key=lambda c: (c.load or 0.0, c.cluster))
    return Decision(least.cluster, "no_measurement", scope, found)


def _spill(q: PolicyInput, best: Candidate, usable: list[Candidate], scope: int,
           found: tuple[Candidate, ...], lowest: str, reason: str) -> Decision:
    """The nearest cluster, or with the controller's share the next one with room."""
    controller = q.spill if q.spill is not None else SpillController(
        q.settings.spill_gain, q.settings.spill_max_share)
    state = controller.share(best.cluster, q.view.clusters[best.cluster].load,
                             best.threshold)
    if state.share <= 0:
        return Decision(best.cluster, reason, scope, found, lowest)
    context = {"from": best.cluster, "load": best.load, "threshold": best.threshold,
               "demand": None if state.demand is None else round(state.demand, 4)}
    room = [c for c in usable if c is not best and (c.load is None or c.load < c.threshold)]
    if not room:
        return Decision(best.cluster, reason, scope, found, lowest, state.share,
                        context | {"spill_blocked": "every other cluster is over its "
                                                    "threshold"})
    if state.spill_next():
        return Decision(room[0].cluster, "spill", scope, found, lowest, state.share, context)
    return Decision(best.cluster, reason, scope, found, lowest, state.share, context)


def _lowest(q: PolicyInput, spill: bool) -> Decision:
    network = q.view.network_for(q.client)
    scope = network.network.prefixlen if network else 0
    found = candidates(q, network)
    measured = [c for c in found if c.rtt_ms is not None]
    usable = [c for c in measured if c.usable]
    if not usable:
        if not any(c.usable for c in found):
            return _fallback(q, found, scope)
        least = min((c for c in found if c.usable), key=lambda c: (c.load or 0.0, c.cluster))
        return Decision(least.cluster, "no_measurement", scope, found)
    lowest = measured[0].cluster
    best = usable[0]
    reason = "lowest_rtt" if best.cluster == lowest else "failover"
    if spill:
        return _spill(q, best, usable, scope, found, lowest, reason)
    return Decision(best.cluster, reason, scope, found, lowest)


def min_rtt(q: PolicyInput) -> Decision:
    return _lowest(q, spill=False)


def min_rtt_spill(q: PolicyInput) -> Decision:
    return _lowest(q, spill=True)


def coverage_zone(q: PolicyInput) -> Decision:
    for network, cluster in q.settings.coverage:
        if q.client & int(network.netmask) == int(network.network_address):
            found = candidates(q, q.view.network_for(q.client))
            chosen = next((c for c in found if c.cluster == cluster), None)
            if chosen is not None and chosen.usable:
                return Decision(cluster, "coverage_zone", network.prefixlen, found,
                                found[0].cluster if found and found[0].rtt_ms else None)
            break  # the mapped cluster is unusable: choose by measurement instead
    return min_rtt_spill(q)


def round_robin(q: PolicyInput) -> Decision:
    found = tuple(sorted(candidates(q, q.view.network_for(q.client)), key=lambda c: c.cluster))
    usable = [c for c in found if c.usable]
    if not usable:
        return Decision(None, "no_cluster", 0, found)
    return Decision(usable[q.turn() % len(usable)].cluster, "round_robin", 0, found)


def anycast(q: PolicyInput) -> Decision:
    """Everyone gets the anycast address (the records of the `anycast` pseudo-cluster the
    engine adds): BGP, not this server, decides which cluster answers it."""
    if ANYCAST not in q.view.clusters:
        return Decision(None, "no_cluster", 0)
    return Decision(ANYCAST, ANYCAST, 0)


POLICIES: dict[str, Policy] = {
    "min_rtt": min_rtt, "min_rtt_spill": min_rtt_spill, "coverage_zone": coverage_zone,
    "round_robin": round_robin, ANYCAST: anycast,
}
