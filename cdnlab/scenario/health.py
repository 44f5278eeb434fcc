"""The health watch: a cluster is marked down in the redirector when none of its servers
runs, and up again when one does, as a CDN's monitoring (Traffic Monitor, say) does.
Under anycast it also has the cluster's speaker withdraw the prefix while it is down and
announce it again when it is up (`anycast_withdrawn`/`anycast_announced`, with the
seconds BGP took to settle, and `bgp_converged` as every BGP change logs it), as anycast
CDNs tie announcements to health."""

from __future__ import annotations

import threading
from typing import Any

from cdnlab.services.dns import DnsService
from cdnlab.services.edge import EdgeService
from nodes.common.events import EventLog


class HealthWatch(threading.Thread):
    """Polls every server of every cluster twice a second; writes health on a change."""

    def __init__(self, dns: DnsService, edges: dict[str, list[EdgeService]],
                 log: EventLog, bgp: Any = None) -> None:
        """`bgp`: the emulation's `BgpNetwork` under `routing: anycast`, else None."""
        super().__init__(name="health", daemon=True)
        self.bgp = bgp
        self.dns = dns
        self.edges = edges
        self.log = log
        self.stopping = threading.Event()
        self.state = {cluster: True for cluster in edges}

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
                    if self.bgp is not None and cluster in self.bgp.speakers:
                        self._announcement(cluster, up)

    def _announcement(self, cluster: str, up: bool) -> None:
        try:
            change = (self.bgp.announce if up else self.bgp.withdraw)(cluster)
            self.log.emit("anycast_announced" if up else "anycast_withdrawn",
                          cluster=cluster, convergence_s=change.convergence_s,
                          catchments=change.catchments)
            self.log.emit("bgp_converged", by="health", **change.to_dict())
        except Exception as err:
            self.log.emit("health_error", cluster=cluster, error=str(err))
