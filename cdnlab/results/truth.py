"""The truth a DNS answer is judged by: for a host at a moment, the true RTT to each
cluster (the engine's RTT matrices, recorded whenever the timeline reshaped the network)
among the clusters up (the engine's health changes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdnlab.results.bundle import Bundle


@dataclass(frozen=True)
class Verdict:
    lowest: bool  # the cluster had the lowest true RTT (ties count)
    extra_ms: float  # its true RTT above the lowest


class RttTruth:
    def __init__(self, bundle: Bundle) -> None:
        self.matrices = bundle.engine("rtt_matrix")
        self.health = bundle.engine("cluster_health")
        self.hosts: dict[str, str] = self.matrices[0]["clients"] if self.matrices else {}

    def host_of(self, address: str | None) -> str | None:
        return self.hosts.get(address or "")

    def judge(self, host: str, cluster: str | None, t: float) -> Verdict | None:
        """Was `cluster` the lowest-RTT cluster for `host` at `t`? None when it cannot be
        judged (no matrix, an unknown host, no cluster)."""
        if not self.matrices or not cluster:
            return None
        matrix = next((m["matrix"] for m in reversed(self.matrices) if m["t"] <= t),
                      self.matrices[0]["matrix"])
        if host not in matrix:
            return None
        down: set[str] = set()
        for change in self.health:
            if change["t"] <= t:
                (down.discard if change["up"] else down.add)(change["cluster"])
        truth: dict[str, Any] = {c: rtt for c, rtt in matrix[host].items() if c not in down}
        if not truth or cluster not in truth:
            truth = matrix[host]  # nothing up, or an answer naming a down cluster
        if cluster not in truth:
            return None
        best = min(truth.values())
        extra = truth[cluster] - best
        return Verdict(extra <= 1e-9, max(extra, 0.0))
