"""The BGP daemons of a `routing: bgp` topology (network layer): one FRR router program
(`cdnlab.services.router`) per router, with the configuration `cdnlab.topology.bgp`
plans, started together once every address is in place; then the wait for convergence.

Converged means: every router's kernel holds a route to every subnet it is not on (and to
the anycast prefix while a cluster announces it), and no router's BGP routes (`ip route
show proto bgp`, read every `POLL_S`) changed for `STABLE_S`. The convergence time is from
the daemons' start (or a withdrawal's, or an announcement's) to the last change seen, to
within `POLL_S`; `topo check` reports it, and a run's `run.json` (`bgp.convergence_s`).
The kernel, not FRR's own view, decides: expected paths are read back from the same
tables."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cdnlab.errors import EnvironmentProblem
from cdnlab.net.build import NetworkBuilder, gateway_routes
from cdnlab.net.shaping.base import run_in
from cdnlab.topology.bgp import anycast_speakers, bgp_routers

POLL_S = 0.2
STABLE_S = 2.0  # well over the datacenter profile's 0 s MRAI: a quiet spell, not a pause
CONVERGE_LIMIT_S = 60.0

Routes = dict[str, frozenset[tuple[str, str]]]


class BgpNetwork:
    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self.routers = bgp_routers(emu.topology, emu.plan)  # and the anycast speakers
        self.speakers = anycast_speakers(emu.topology)  # cluster → its speaker's server
        self.announcing = set(self.speakers)  # the clusters whose speaker sends the prefix
        self.services: dict[str, Any] = {}
        self.convergence_s: float | None = None

    def start(self) -> float:
        """Start every router's daemons and every anycast speaker, and wait for
        convergence; its time in seconds."""
        from cdnlab.services.router import RouterService

        started = time.monotonic()
        for name, router in self.routers.items():
            service = RouterService(self.emu, router, speaker=name in self.speakers.values())
            self.services[name] = service
            service.start()  # and among the run's services: stopped before the network
        self.convergence_s = self.wait_converged(started)
        return self.convergence_s

    def withdraw(self, cluster: str) -> float:
        """An anycast cluster stops announcing: its speaker takes the prefix out of its
        configuration and sends the withdrawal, its sessions staying up (ending the
        speaker would do as much, but a neighbour then waits out its back-off before it
        takes the speaker's connection again). Returns when the routes are stable again,
        with the seconds that took; expected paths follow the new routes."""
        return self._originate(cluster, False)

    def announce(self, cluster: str) -> float:
        """An anycast cluster announces the prefix again; as `withdraw`."""
        return self._originate(cluster, True)

    def _originate(self, cluster: str, on: bool) -> float:
        anycast = self.emu.topology.anycast
        if cluster not in self.speakers or anycast is None:
            raise KeyError(f"{cluster} is not an anycast cluster of this topology "
                           f"(anycast clusters: {', '.join(self.speakers) or 'none'})")
        started = time.monotonic()
        self.services[self.speakers[cluster]].originate(str(anycast.prefix), on)
        (self.announcing.add if on else self.announcing.discard)(cluster)
        return self.settle(started)

    def settle(self, started: float) -> float:
        """Wait for convergence after a change begun at `started`, then adopt the kernels'
        routes for expected paths; the seconds from the change to its last route change."""
        seconds = self.wait_converged(started)
        self.emu.route_differences = NetworkBuilder(self.emu).read_back_routes()
        return seconds

    def catchments(self) -> dict[str, str]:
        """Each client host's anycast cluster, by the routes the kernels hold now."""
        servers = {server: cluster for cluster, server in self.speakers.items()}
        found = {}
        for client in self.emu.topology.by_role("client"):
            try:
                server, _hops = self.emu.routing.anycast_path(client, set(servers))
            except KeyError:
                continue  # no route: every cluster withdrawn
            found[client] = servers[server]
        return found

    def describe(self) -> dict[str, Any]:
        """What `topo check` and run.json report: each router's AS, the sessions (each
        counted once), the convergence time, and with anycast its prefix, speakers and
        each client's catchment now."""
        anycast = self.emu.topology.anycast
        return {"asns": {name: self.routers[name].asn for name in self.routing_routers()},
                "sessions": sum(len(r.neighbours) for r in self.routers.values()) // 2,
                "convergence_s": self.convergence_s,
                "anycast": None if anycast is None else {
                    "prefix": str(anycast.prefix), "address": anycast.address,
                    "asn": anycast.asn, "speakers": self.speakers,
                    "catchments": self.catchments()}}

    def kernel_routes(self) -> Routes:
        """Per router, its BGP routes as its kernel holds them: (subnet, gateway)."""
        return {name: frozenset(gateway_routes(run_in(self.emu.node(name),
                                                       "ip -4 -o route show proto bgp")))
                for name in self.routing_routers()}

    def routing_routers(self) -> list[str]:
        """The routers whose kernels BGP fills (the speakers install nothing)."""
        speakers = set(self.speakers.values())
        return [n for n in self.routers if n not in speakers]

    def needed(self) -> dict[str, set[str]]:
        """Per router, the subnets of the segments it is not on, and the anycast prefix
        while any cluster announces it."""
        subnets = {s.index: str(s.subnet) for s in self.emu.plan.segments}
        anycast = self.emu.topology.anycast
        announced = {str(anycast.prefix)} if anycast is not None and self.announcing \
            else set()
        return {name: announced | {subnet for index, subnet in subnets.items()
                                   if index not in self.emu.plan.segment_of(name)}
                for name in self.routing_routers()}

    def wait_converged(self, started: float, limit_s: float = CONVERGE_LIMIT_S) -> float:
        needed = self.needed()
        previous: Routes | None = None
        changed = started
        while True:
            routes = self.kernel_routes()
            now = time.monotonic()
            if routes != previous:
                previous, changed = routes, now
            missing = {name: sorted(needed[name] - {subnet for subnet, _via in routes[name]})
                       for name in needed}
            if not any(missing.values()) and now - changed >= STABLE_S:
                return round(changed - started, 3)
            if now - started > limit_s:
                raise EnvironmentProblem(
                    f"BGP did not converge in {limit_s:g} s: " + "; ".join(
                        f"{name} lacks {', '.join(subnets)} (sessions: {self.sessions(name)})"
                        for name, subnets in missing.items() if subnets)
                    + ". Check each link's bgp: policy and the routers' FRR logs in the run "
                    "directory (work/<router>/)")
            time.sleep(POLL_S)

    def sessions(self, name: str) -> str:
        """A router's neighbours and their states, from its program's last `bgp` event."""
        log = Path(self.emu.run_dir) / "events" / f"{name}.bgp.jsonl"
        last: dict[str, Any] = {}
        if log.exists():
            for line in log.read_text().splitlines():
                event = json.loads(line)
                if event.get("event") == "bgp":
                    last = event.get("peers") or {}
        return ", ".join(f"{address} {peer.get('state')}" for address, peer in last.items()) \
            or "none reported"
