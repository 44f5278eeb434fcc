"""The health watch: a cluster is marked down in the redirector when none of its servers
runs, and up again when one does, as a CDN's monitoring (Traffic Monitor, say) does."""

from __future__ import annotations

import threading

from cdnlab.services.dns import DnsService
from cdnlab.services.edge import EdgeService
from nodes.common.events import EventLog


class HealthWatch(threading.Thread):
    """Polls every server of every cluster twice a second; writes health on a change."""

    def __init__(self, dns: DnsService, edges: dict[str, list[EdgeService]],
                 log: EventLog) -> None:
        super().__init__(name="health", daemon=True)
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
