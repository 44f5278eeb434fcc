"""Routes over the topology graph, and the paths packets take.

Every layer-3 node (router or host) gets one route per segment it is not on, computed as a
shortest path by one-way delay (plus a small per-hop cost, so ties prefer fewer hops and
every path has a positive length). Packets may cross switches and routers, never hosts.
`path()` walks the routes hop by hop, so expected RTT, bottleneck rate and loss are derived
from what the kernel does, not from a separate model: from one router to the next a packet
crosses the segment its route's gateway address is on (an ISP on two IXP fabrics reaches
the cloud over the one its route names, not the first a search happens to find), and
once the network is up `adopt()` replaces the planned routes with those read back from
each node's kernel (`ip route`), naming any that differ.
"""

from __future__ import annotations

import heapq
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from cdnlab.topology.addressing import AddressPlan
from cdnlab.topology.shape import LinkShape
from cdnlab.topology.spec import HOST, ROUTER, SWITCH, Link, Topology

HOP_COST_MS = 0.001


@dataclass(frozen=True)
class Route:
    subnet: ipaddress.IPv4Network
    via: ipaddress.IPv4Address
    via_node: str
    segment: int  # the segment the gateway address is on: where the packet crosses


@dataclass(frozen=True)
class Hop:
    """One link crossed in one direction."""

    link: Link
    src: str

    @property
    def dst(self) -> str:
        return self.link.other(self.src)

    @property
    def shape(self) -> LinkShape:
        return self.link.shape_from(self.src)


ShapeOf = Callable[[Hop], LinkShape]


def _gateway(route: Route | None) -> str:
    return f"via {route.via} ({route.via_node})" if route else "no route"


def _spec_shape(hop: Hop) -> LinkShape:
    return hop.shape


class Routing:
    def __init__(self, topology: Topology, plan: AddressPlan) -> None:
        self.topology = topology
        self.plan = plan
        self.adjacency: dict[str, list[Link]] = {n: [] for n in topology.nodes}
        for link in topology.links:
            self.adjacency[link.a].append(link)
            self.adjacency[link.b].append(link)
        self.segments = {s.index: s for s in plan.segments}
        # toward the anycast prefix (`anycast:` of a BGP topology): each node's route, as
        # its kernel holds it once the network is up
        self.anycast: dict[str, Route] = {}
        self.routes: dict[str, dict[int, Route]] = {}
        for node in topology.nodes.values():
            if node.kind != SWITCH:
                self.routes[node.name] = self._routes_from(node.name)

    def _spf(self, src: str) -> tuple[dict[str, float], dict[str, Link]]:
        dist = {src: 0.0}
        via: dict[str, Link] = {}
        heap = [(0.0, src)]
        while heap:
            d, node = heapq.heappop(heap)
            if d > dist[node]:
                continue
            if node != src and self.topology.kind(node) == HOST:
                continue  # hosts do not forward
            for link in self.adjacency[node]:
                other = link.other(node)
                nd = d + link.shape_from(node).delay + HOP_COST_MS
                if nd < dist.get(other, float("inf")):
                    dist[other] = nd
                    via[other] = link
                    heapq.heappush(heap, (nd, other))
        return dist, via

    def _first_l3_hop(self, src: str, target: str, via: dict[str, Link]) -> tuple[str, Link]:
        """The first router or host after `src` on the SPF path to `target`, with the link
        by which the path enters it."""
        chain: list[tuple[str, Link]] = []
        node = target
        while node != src:
            link = via[node]
            chain.append((node, link))
            node = link.other(node)
        for node, link in reversed(chain):
            if self.topology.kind(node) != SWITCH:
                return node, link
        raise AssertionError(f"no layer-3 hop from {src} to {target}")

    def _routes_from(self, src: str) -> dict[int, Route]:
        dist, via = self._spf(src)
        own = set(self.plan.segment_of(src))
        routes: dict[int, Route] = {}
        for segment in self.plan.segments:
            if segment.index in own:
                continue
            gateways = [(dist[n], n) for n, _ in segment.members
                        if self.topology.kind(n) == ROUTER and n in dist]
            if not gateways:
                continue
            _, gateway = min(gateways)
            hop, link = self._first_l3_hop(src, gateway, via)
            iface = self.plan.interface(hop, link.index)
            assert iface.address is not None
            routes[segment.index] = Route(segment.subnet, iface.address.ip, hop, iface.segment)
        return routes

    def adopt(self, installed: dict[str, list[tuple[str, str]]],
              learned: set[str] | None = None) -> list[str]:
        """Take each node's routes as its kernel holds them (node → [(subnet, gateway)],
        from `ip route`), in place of the planned ones; what differed, in words (a route
        planned and missing, one not planned, another gateway). The `learned` nodes'
        routes are a routing protocol's choice (BGP), not the plan's: for them only a
        segment left without a route is a difference."""
        learned = learned or set()
        owner = {iface.address.ip: iface for iface in self.plan.interfaces.values()
                 if iface.address is not None}
        segment_of_subnet = {s.subnet: s.index for s in self.plan.segments}
        differences: list[str] = []
        for node, lines in installed.items():
            read: dict[int, Route] = {}
            self.anycast.pop(node, None)  # a withdrawal may have left it none
            for subnet_text, via_text in lines:
                subnet = ipaddress.IPv4Network(subnet_text)
                gateway = owner.get(ipaddress.IPv4Address(via_text))
                index = segment_of_subnet.get(subnet)
                anycast = self.topology.anycast
                if anycast is not None and subnet == anycast.prefix and gateway is not None:
                    self.anycast[node] = Route(subnet, gateway.address.ip,  # type: ignore[union-attr]
                                               gateway.node, gateway.segment)
                    continue
                if gateway is None or index is None:
                    differences.append(f"{node}: {subnet} via {via_text} is outside the plan")
                    continue
                read[index] = Route(subnet, gateway.address.ip,  # type: ignore[union-attr]
                                    gateway.node, gateway.segment)
            planned = self.routes.get(node, {})
            if node in learned:
                differences += [f"{node}: no route to {planned[index].subnet}"
                                for index in sorted(set(planned) - set(read))]
                planned = read
            for index in sorted(set(planned) | set(read)):
                want, have = planned.get(index), read.get(index)
                if want != have:
                    differences.append(
                        f"{node}: to {(want or have).subnet} "  # type: ignore[union-attr]
                        f"planned {_gateway(want)}, installed {_gateway(have)}")
            self.routes[node] = read
        return differences

    def _l2_path(self, src: str, dst: str, segment: int | None = None) -> list[Hop]:
        """Links from `src` to `dst` across switches only (they share a segment: the one
        given, when `src` and `dst` share more than one)."""
        allowed = set(self.segments[segment].links) if segment is not None else None
        previous: dict[str, Link] = {}
        frontier = [src]
        seen = {src}
        while frontier:
            node = frontier.pop(0)
            if node == dst:
                break
            if node != src and self.topology.kind(node) != SWITCH:
                continue
            for link in self.adjacency[node]:
                if allowed is not None and link.index not in allowed:
                    continue
                other = link.other(node)
                if other not in seen:
                    seen.add(other)
                    previous[other] = link
                    frontier.append(other)
        hops: list[Hop] = []
        node = dst
        while node != src:
            link = previous[node]
            hops.append(Hop(link, link.other(node)))
            node = link.other(node)
        return hops[::-1]

    def path(self, src: str, dst: str) -> list[Hop]:
        """The links a packet from host/router `src` to `dst` crosses, in order: to its
        address (`plan.address`, its first interface's, on the first of its segments)."""
        target = self.plan.segment_of(dst)[0]
        hops: list[Hop] = []
        node = src
        for _ in range(len(self.topology.nodes) + 1):
            if target in self.plan.segment_of(node):
                return hops + self._l2_path(node, dst, target)
            route = self.routes[node].get(target)
            if route is None:
                raise KeyError(f"{node} has no route to {dst}")
            hops += self._l2_path(node, route.via_node, route.segment)
            node = route.via_node
        raise RuntimeError(f"routing loop from {src} to {dst}")

    def gateway(self, host: str) -> ipaddress.IPv4Address | None:
        """The address of the first router on a host's segment (routers take a segment's
        lowest addresses): where its route to the anycast prefix points."""
        segment = self.plan.segment_of(host)[0]
        routers = [self.plan.interface(n, link).address for n, link
                   in self.segments[segment].members if self.topology.kind(n) == ROUTER]
        found = sorted(a.ip for a in routers if a is not None)
        return found[0] if found else None

    def anycast_path(self, src: str, speakers: set[str]) -> tuple[str, list[Hop]]:
        """The server a packet from `src` to the anycast address reaches (one of
        `speakers`, whose routers' routes lead there), and the links it crosses."""
        hops: list[Hop] = []
        node = src
        for _ in range(len(self.topology.nodes) + 1):
            if node in speakers and node != src:
                return node, hops
            route = self.anycast.get(node)
            if route is None:
                raise KeyError(f"{node} has no route to the anycast prefix")
            hops += self._l2_path(node, route.via_node, route.segment)
            node = route.via_node
        raise RuntimeError(f"routing loop from {src} to the anycast prefix")

    # Path figures. `shape_of` gives a hop's shape; by default the spec's, while a running
    # emulation passes the shapes as they are now (after trace steps and events).
    def expected_rtt_ms(self, src: str, dst: str, shape_of: ShapeOf = _spec_shape) -> float:
        return sum(shape_of(h).delay for h in self.path(src, dst) + self.path(dst, src))

    def bottleneck_mbps(self, src: str, dst: str,
                        shape_of: ShapeOf = _spec_shape) -> float | None:
        rates = [r for h in self.path(src, dst) if (r := shape_of(h).rate) is not None]
        return min(rates) if rates else None

    def path_loss_pct(self, src: str, dst: str, shape_of: ShapeOf = _spec_shape) -> float:
        delivered = 1.0
        for hop in self.path(src, dst):
            delivered *= 1.0 - shape_of(hop).loss / 100.0
        return 100.0 * (1.0 - delivered)
