"""The health watch: a cluster is marked down in the redirector when none of its servers
runs, and up again when one does, as a CDN's monitoring (Traffic Monitor, say) does.
Under anycast it also has the cluster's speaker withdraw the prefix while it is down and
announce it again when it is up (`anycast_withdrawn`/`anycast_announced`, with the
seconds BGP took to settle and the reason, and `bgp_converged` as every BGP change logs
it), as anycast CDNs tie announcements to health; with `routing.withdraw_above` also
while the cluster is overloaded (`announce_now`)."""

from __future__ import annotations

import threading
import time
from typing import Any

from cdnlab.services.dns import DnsService
from cdnlab.services.edge import EdgeService
from nodes.common.events import EventLog


def announce_now(up: bool, load: float | None, announced: bool, shed_at: float | None,
                 now: float, above: float | None, hold_s: float
                 ) -> tuple[bool, float | None, str]:
    """Whether an anycast cluster should announce now, when it last shed its announcement
    for load, and why: not while it is down; an announcing cluster whose load (the
    utilisation its edges report to the redirector) is over `above` sheds it; one that
    shed it announces again once `hold_s` has passed (its load, with no viewers left, says
    nothing until then: BGP moved them all), and sheds again if it is still too much.
    `above` None: load never withdraws."""
    if not up:
        return False, shed_at, "down"
    if announced and above is not None and load is not None and load > above:
        return False, now, "overloaded"
    if not announced and shed_at is not None and now - shed_at < hold_s:
        return False, shed_at, "holding"
    return True, shed_at, "up"


class HealthWatch(threading.Thread):
    """Polls every server of every cluster twice a second; writes health on a change."""

    def __init__(self, dns: DnsService, edges: dict[str, list[EdgeService]],
                 log: EventLog, bgp: Any = None, withdraw_above: float | None = None,
                 hold_s: float = 10.0) -> None:
        """`bgp`: the emulation's `BgpNetwork` under `routing: anycast`, else None;
        `withdraw_above`, `hold_s`: `announce_now`'s."""
        super().__init__(name="health", daemon=True)
        self.bgp = bgp
        self.dns = dns
        self.edges = edges
        self.log = log
        self.withdraw_above = withdraw_above
        self.hold_s = hold_s
        self.stopping = threading.Event()
        self.state = {cluster: True for cluster in edges}
        anycast = set(bgp.speakers) if bgp is not None else set()
        self.announced = {cluster: True for cluster in edges if cluster in anycast}
        self.shed_at: dict[str, float | None] = dict.fromkeys(self.announced)

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            for cluster, servers in self.edges.items():
                up = any(server.running for server in servers)
                if up != self.state[cluster]:
                    self.state[cluster] = up
                    try:
                        self.dns.rest("PUT", f"/clusters/{cluster}/health", {"up": up})
                        self.log.emit("cluster_health", cluster=cluster, up=up)
                    except Exception as err:
                        self.log.emit("health_error", cluster=cluster, error=str(err))
            if self.announced:
                self._announcements()

    def _loads(self) -> dict[str, float]:
        """Each cluster's load as the redirector holds it (only when load may withdraw)."""
        if self.withdraw_above is None:
            return {}
        try:
            _status, state = self.dns.rest("GET", "/state")
        except Exception as err:
            self.log.emit("health_error", cluster=None, error=str(err))
            return {}
        return {name: float(c["load"]) for name, c in (state.get("clusters") or {}).items()
                if c.get("load") is not None}

    def _announcements(self) -> None:
        loads = self._loads()
        for cluster, announced in self.announced.items():
            want, self.shed_at[cluster], reason = announce_now(
                self.state[cluster], loads.get(cluster), announced, self.shed_at[cluster],
                time.monotonic(), self.withdraw_above, self.hold_s)
            if want != announced:
                self.announced[cluster] = want
                self._announcement(cluster, want, reason, loads.get(cluster))

    def _announcement(self, cluster: str, up: bool, reason: str,
                      load: float | None) -> None:
        try:
            change = (self.bgp.announce if up else self.bgp.withdraw)(cluster)
            self.log.emit("anycast_announced" if up else "anycast_withdrawn",
                          cluster=cluster, reason=reason, load=load,
                          convergence_s=change.convergence_s, catchments=change.catchments)
            self.log.emit("bgp_converged", by="health", **change.to_dict())
        except Exception as err:
            self.log.emit("health_error", cluster=cluster, error=str(err))
