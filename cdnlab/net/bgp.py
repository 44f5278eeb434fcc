"""The BGP daemons of a `routing: bgp` topology (network layer): one FRR router program
(`cdnlab.services.router`) per router, with the configuration `cdnlab.topology.bgp`
plans, started together once every address is in place; then the wait for convergence.

Converged means: every router's kernel holds a route to every subnet it is not on (and to
the anycast prefix while a cluster announces it), and no router's BGP routes (`ip route
show proto bgp`, read every `POLL_S`) changed for `STABLE_S`. The convergence time is from
the daemons' start, or from a change's (`change`: a withdrawal, an announcement, a policy
set at a time, a link cut or restored), to the last route change seen, to within
`POLL_S`; `topo check` reports the first, a run's `run.json` (`bgp.convergence_s`), and
each later one is a `BgpChange`. Changes are applied one at a time. The kernel, not FRR's
own view, decides: expected paths are read back from the same tables once a change has
settled."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdnlab.errors import EnvironmentProblem
from cdnlab.net.build import NetworkBuilder, gateway_routes
from cdnlab.net.shaping.base import run_in
from cdnlab.topology.bgp import anycast_speakers, bgp_routers, route_servers

POLL_S = 0.2
STABLE_S = 2.0  # well over the datacenter profile's 0 s MRAI: a quiet spell, not a pause
CONVERGE_LIMIT_S = 60.0

Routes = dict[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class BgpChange:
    """One change to a running BGP network and how it settled."""

    cause: str  # in words: "edge_f withdraws", "link isp_b–cloud cut"
    began: float  # epoch seconds when the change was applied
    convergence_s: float  # from then to the last route change any router's kernel saw
    routers_changed: tuple[str, ...]  # the routers whose BGP routes differ afterwards
    unreachable: dict[str, list[str]]  # per router, the subnets it has no route to now
    catchments: dict[str, str] | None  # with anycast: each client's cluster afterwards

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"routers_changed": list(self.routers_changed)}


class BgpNetwork:
    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self.routers = bgp_routers(emu.topology, emu.plan)  # speakers, route servers too
        self.speakers = anycast_speakers(emu.topology)  # cluster → its speaker's server
        self.route_servers = route_servers(emu.topology)  # IXP route server host → its AS
        self.announcing = set(self.speakers)  # the clusters whose speaker sends the prefix
        self.services: dict[str, Any] = {}
        self.convergence_s: float | None = None
        self.lock = threading.Lock()  # one change at a time, each settled before the next

    def start(self) -> float:
        """Start every router's daemons, every anycast speaker and every IXP route server,
        and wait for convergence; its time in seconds."""
        from cdnlab.services.router import RouterService

        started = time.monotonic()
        for name, router in self.routers.items():
            service = RouterService(self.emu, router, speaker=name in self.bgpd_alone())
            self.services[name] = service
            service.start()  # and among the run's services: stopped before the network
        self.convergence_s = self.wait_converged(started)
        return self.convergence_s

    def withdraw(self, cluster: str) -> BgpChange:
        """An anycast cluster stops announcing: its speaker takes the prefix out of its
        configuration and sends the withdrawal, its sessions staying up (ending the
        speaker would do as much, but a neighbour then waits out its back-off before it
        takes the speaker's connection again). Returns once the routes are stable again;
        expected paths follow the new routes."""
        return self.change(f"{cluster} withdraws", lambda: self._originate(cluster, False))

    def announce(self, cluster: str) -> BgpChange:
        """An anycast cluster announces the prefix again; as `withdraw`."""
        return self.change(f"{cluster} announces", lambda: self._originate(cluster, True))

    def set_policy(self, router: str, neighbour: str | None,
                   policy: dict[str, int | None]) -> BgpChange:
        """Change what `router` (a router, or an anycast cluster's speaker by the
        cluster's name) applies on its sessions with `neighbour` (every session when
        None): `local_pref` on what it learns, `prepend` and `med` on what it sends; a
        value of None takes the setting away. Its daemon's running configuration is
        edited and the sessions refreshed (route refresh, no reset)."""
        name = self.speakers.get(router, router)
        if name not in self.services:
            raise KeyError(f"{router} speaks no BGP here (routers and anycast clusters: "
                           f"{', '.join([*self.routing_routers(), *self.speakers])})")
        addresses = None if neighbour is None else self._addresses(
            self.speakers.get(neighbour, neighbour))
        current = self.routers[name]
        if addresses is not None and not any(p.address in addresses
                                             for p in current.neighbours):
            raise KeyError(f"{neighbour} is not a BGP neighbour of {router}")

        def apply() -> None:
            changed, commands = current.with_policy(addresses, policy)
            self.services[name].configure(commands)
            self.routers[name] = changed

        what = ", ".join(f"{k} {v}" for k, v in policy.items())
        return self.change(f"{router} sets {what}"
                           + (f" toward {neighbour}" if neighbour else ""), apply)

    def set_link(self, a: str, b: str, up: bool) -> BgpChange:
        """Cut the a–b link (both ends' interfaces down: the routers drop the sessions over
        it at once) or restore it, and wait for BGP to settle; after a restoration, first
        for every session across the link's segment to be established again."""
        link = self.emu.topology.link(a, b)

        def apply() -> None:
            self.emu.changes.set_link_up(a, b, up)
            if up:
                self._wait_established(link.index)

        return self.change(f"link {a}–{b} {'restored' if up else 'cut'}", apply)

    def _wait_established(self, link: int, limit_s: float = CONVERGE_LIMIT_S) -> None:
        from nodes.router.__main__ import peers

        segment = next(s for s in self.emu.plan.segments if link in s.links)
        members = [name for name, _link in segment.members if name in self.services]
        deadline = time.monotonic() + limit_s
        while True:
            down = [f"{name}–{address} {peer['state']}" for name in members
                    for address, peer in peers(self.services[name].work).items()
                    if ipaddress.ip_address(address) in segment.subnet
                    and peer["state"] != "Established"]
            if not down:
                return
            if time.monotonic() > deadline:
                raise EnvironmentProblem(f"BGP sessions across {segment.subnet} did not come "
                                         f"back in {limit_s:g} s: {', '.join(down)}")
            time.sleep(POLL_S)

    def change(self, cause: str, action: Callable[[], None]) -> BgpChange:
        """Apply `action` to the running network and wait until BGP settles; expected
        paths then follow the kernels' new routes."""
        with self.lock:
            before = self.kernel_routes()
            began, started = time.time(), time.monotonic()
            action()
            seconds = self.settle(started, before)
            after = self.kernel_routes()
            missing = self.missing(self.needed(), after)
            return BgpChange(cause, began, seconds,
                             tuple(sorted(n for n in after if after[n] != before.get(n))),
                             {name: subnets for name, subnets in missing.items() if subnets},
                             self.catchments() if self.speakers else None)

    def _owner(self, address: str) -> str:
        """The node that holds `address`."""
        return next(i.node for i in self.emu.plan.interfaces.values()
                    if i.address is not None and str(i.address.ip) == address)

    def _addresses(self, node: str) -> set[str]:
        return {str(i.address.ip) for i in self.emu.plan.of_node(node)
                if i.address is not None}

    def _originate(self, cluster: str, on: bool) -> None:
        anycast = self.emu.topology.anycast
        if cluster not in self.speakers or anycast is None:
            raise KeyError(f"{cluster} is not an anycast cluster of this topology "
                           f"(anycast clusters: {', '.join(self.speakers) or 'none'})")
        self.services[self.speakers[cluster]].originate(str(anycast.prefix), on)
        (self.announcing.add if on else self.announcing.discard)(cluster)

    def settle(self, started: float, before: Routes) -> float:
        """Wait for convergence after a change begun at `started` (`before`: the routes
        until then), then adopt the kernels' routes for expected paths; the seconds from
        the change to its last route change."""
        seconds = self.wait_converged(started, before=before)
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
        counted once), each IXP route server's AS and clients, the convergence time, and
        with anycast its prefix, speakers and each client's catchment now."""
        anycast = self.emu.topology.anycast
        return {"asns": {name: self.routers[name].asn for name in self.routing_routers()},
                "sessions": sum(len(r.neighbours) for r in self.routers.values()) // 2,
                "route_servers": {name: {
                    "asn": asn, "clients": sorted(self._owner(p.address)
                                                  for p in self.routers[name].neighbours)}
                                  for name, asn in self.route_servers.items()},
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

    def bgpd_alone(self) -> set[str]:
        """The hosts that run bgpd without zebra and install nothing: anycast speakers and
        route servers."""
        return set(self.speakers.values()) | set(self.route_servers)

    def routing_routers(self) -> list[str]:
        """The routers whose kernels BGP fills."""
        alone = self.bgpd_alone()
        return [n for n in self.routers if n not in alone]

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

    @staticmethod
    def missing(needed: dict[str, set[str]], routes: Routes) -> dict[str, list[str]]:
        """Per router, the needed subnets its routes lack."""
        return {name: sorted(needed[name] - {subnet for subnet, _via in routes[name]})
                for name in needed}

    def wait_converged(self, started: float, limit_s: float = CONVERGE_LIMIT_S,
                       before: Routes | None = None) -> float:
        """Seconds from `started` to the last route change, once every router holds every
        route it needs and none changed for `STABLE_S`. After a change (`before`: the
        routes until then), stability alone: a cut link or a policy may leave subnets
        unreachable by design, and a change that moves no route took 0 s."""
        needed = self.needed() if before is None else {}
        previous = before
        changed = started
        while True:
            routes = self.kernel_routes()
            now = time.monotonic()
            if routes != previous:
                previous, changed = routes, now
            missing = self.missing(needed, routes)
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
