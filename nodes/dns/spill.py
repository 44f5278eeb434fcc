"""The spill controller: how large a share of a loaded cluster's answers goes elsewhere.

A share computed from the load measured *after* spilling has no memory: at twice the
threshold it alternates 0, ½, 0, ½ without lag, and with lag it settles at
√(demand · threshold), above the threshold. This controller keeps the share as state and
estimates the demand the cluster would carry without spilling from what it measures with
the share in force:

    demand  D ← (1 − a)·D + a · L / (1 − s̄)  L: measured utilisation, s̄: share in force
    target  s* = max(0, 1 − T / D)           the share that leaves the cluster at T
    step    s ← s + gain · (s* − s),  clamped to [0, max_share]

The share in force when L was measured is not the current one: an answer holds for its
TTL, so s̄ is the mean share over the TTL before the reading. The demand is smoothed
(a = DEMAND_SMOOTHING, an exponentially weighted mean, as the probes smooth RTTs): one
second of a server's egress counts whole segment downloads, so single readings swing by
±50 % around the demand of a few dozen viewers.

Which answers spill is not drawn at random: each answer adds the share to a credit, and an
answer spills when the credit reaches 1 (error diffusion), so the answers spilled match
the share to within one answer at every moment, and the cluster's load is not shaken by
sampling noise.

The share steps once per new load reading (the probes report once per interval), so a
reading is never counted twice. At gain 1 the share jumps to the target; a lower gain damps the
overshoot that the lag between an answer and its load (TTL plus a measurement interval)
causes. Under sustained demand D > T the cluster's utilisation converges to T; when
demand falls below T the share decays to 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nodes.dns.view import Reading

DEMAND_SMOOTHING = 0.5


@dataclass
class SpillState:
    share: float = 0.0
    demand: float | None = None  # estimated utilisation without spilling
    reading_at: float | None = None  # `updated` of the load reading last stepped on
    credit: float = 0.0  # the share owed but not yet spilled, in answers
    history: list[tuple[float, float]] = field(default_factory=list)  # (from when, share)

    def in_force(self, at: float, span_s: float) -> float:
        """The mean share over [at − span_s, at]: what answers still held were given."""
        if span_s <= 0 or not self.history:
            return self.share
        start, total, weight = at - span_s, 0.0, 0.0
        for n, (since, share) in enumerate(self.history):
            until = self.history[n + 1][0] if n + 1 < len(self.history) else at
            overlap = min(until, at) - max(since, start)
            if overlap > 0:
                total, weight = total + share * overlap, weight + overlap
        return total / weight if weight else self.share

    def spill_next(self) -> bool:
        """Whether this answer spills: the credit reaches a whole answer."""
        self.credit += self.share
        if self.credit >= 1.0:
            self.credit -= 1.0
            return True
        return False


class SpillController:
    def __init__(self, gain: float, max_share: float, ttl_s: float = 0.0) -> None:
        self.gain = gain
        self.max_share = max_share
        self.ttl_s = ttl_s  # how long an answer holds: the lag of the load behind the share
        self.states: dict[str, SpillState] = {}

    def share(self, cluster: str, load: Reading | None, threshold: float) -> SpillState:
        """The cluster's state, stepped if `load` is a reading it has not seen."""
        state = self.states.setdefault(cluster, SpillState())
        if load is None or load.updated == state.reading_at:
            return state
        state.reading_at = load.updated
        kept = 1.0 - state.in_force(load.updated, self.ttl_s)
        measured = load.value / kept if kept > 0 else load.value
        demand = measured if state.demand is None else (
            (1 - DEMAND_SMOOTHING) * state.demand + DEMAND_SMOOTHING * measured)
        target = max(0.0, 1.0 - threshold / demand) if demand > 0 else 0.0
        step = state.share + self.gain * (target - state.share)
        state.share = min(self.max_share, max(0.0, step))
        state.demand = demand
        state.history = [*state.history[-32:], (load.updated, state.share)]
        return state
