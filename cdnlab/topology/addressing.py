"""The deterministic address plan: layer-2 segments, their subnets, and interface names.

A segment is a broadcast domain: a point-to-point link between two layer-3 nodes (hosts and
routers), or a tree of switches with every layer-3 interface attached to it. Segments get
/24s from 10.0.0.0/8 in the order their first link appears (10.0.1.0/24, 10.0.2.0/24, ...),
skipping subnets a link fixes with `subnet:`; inside one, routers take the lowest addresses,
then hosts, each in link order. The same file always gives the same plan.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from cdnlab.errors import SpecError
from cdnlab.topology.spec import HOST, ROUTER, SWITCH, Topology

BASE = ipaddress.IPv4Network("10.0.0.0/8")
SEGMENT_PREFIX = 24


@dataclass
class Segment:
    index: int
    subnet: ipaddress.IPv4Network
    links: list[int] = field(default_factory=list)
    switches: list[str] = field(default_factory=list)
    members: list[tuple[str, int]] = field(default_factory=list)  # (L3 node, link index)


@dataclass(frozen=True)
class Interface:
    node: str
    link: int
    name: str
    segment: int
    address: ipaddress.IPv4Interface | None  # None on switch ports


@dataclass
class AddressPlan:
    segments: list[Segment]
    interfaces: dict[tuple[str, int], Interface]

    def interface(self, node: str, link: int) -> Interface:
        return self.interfaces[(node, link)]

    def of_node(self, node: str) -> list[Interface]:
        return [i for (n, _), i in self.interfaces.items() if n == node]

    def address(self, node: str) -> ipaddress.IPv4Address:
        """The first address of a layer-3 node (a host's only one)."""
        for iface in self.of_node(node):
            if iface.address is not None:
                return iface.address.ip
        raise KeyError(f"{node} has no address (is it a switch?)")

    def segment_of(self, node: str) -> list[int]:
        return [i.segment for i in self.of_node(node) if i.address is not None]

    def owner(self, ip: ipaddress.IPv4Address | str) -> str | None:
        ip = ipaddress.IPv4Address(str(ip))
        for iface in self.interfaces.values():
            if iface.address is not None and iface.address.ip == ip:
                return iface.node
        return None


def interface_names(topology: Topology) -> dict[tuple[str, int], str]:
    """`<node>-e<k>` for a node's k-th link, in link order."""
    counters: dict[str, int] = {}
    names: dict[tuple[str, int], str] = {}
    for link in topology.links:
        for end in (link.a, link.b):
            k = counters.get(end, 0)
            counters[end] = k + 1
            names[(end, link.index)] = f"{end}-e{k}"
    return names


def _switch_roots(topology: Topology) -> dict[str, str]:
    parent = {n: n for n, node in topology.nodes.items() if node.kind == SWITCH}

    def root(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for link in topology.links:
        if link.a in parent and link.b in parent:
            parent[root(link.a)] = root(link.b)
    return {n: root(n) for n in parent}


def plan_addresses(topology: Topology) -> AddressPlan:
    roots = _switch_roots(topology)
    keyed: dict[object, Segment] = {}
    for link in topology.links:
        switch_end = next((e for e in (link.a, link.b) if e in roots), None)
        key: object = ("switches", roots[switch_end]) if switch_end else ("link", link.index)
        segment = keyed.setdefault(key, Segment(len(keyed), BASE))
        segment.links.append(link.index)
        for end in (link.a, link.b):
            if end in roots:
                if end not in segment.switches:
                    segment.switches.append(end)
            else:
                segment.members.append((end, link.index))
    segments = list(keyed.values())
    _assign_subnets(topology, segments)
    names = interface_names(topology)
    interfaces: dict[tuple[str, int], Interface] = {}
    for segment in segments:
        kinds = {ROUTER: 0, HOST: 1}
        ordered = sorted(segment.members, key=lambda m: (kinds[topology.kind(m[0])], m[1]))
        hosts = segment.subnet.hosts()
        for node, link in ordered:
            ip = next(hosts)
            address = ipaddress.IPv4Interface(f"{ip}/{segment.subnet.prefixlen}")
            interfaces[(node, link)] = Interface(node, link, names[(node, link)],
                                                 segment.index, address)
        for link_index in segment.links:
            link = topology.links[link_index]
            for end in (link.a, link.b):
                if end in roots:
                    interfaces[(end, link_index)] = Interface(end, link_index,
                                                              names[(end, link_index)],
                                                              segment.index, None)
    return AddressPlan(segments, interfaces)


def _assign_subnets(topology: Topology, segments: list[Segment]) -> None:
    fixed: dict[int, ipaddress.IPv4Network] = {}
    for segment in segments:
        for link_index in segment.links:
            link = topology.links[link_index]
            if link.subnet is None:
                continue
            where = f"link {link.name}"
            previous = fixed.get(segment.index)
            if previous is not None and previous != link.subnet:
                raise SpecError(topology.source, where,
                                f"address clash: subnet {link.subnet} but this segment already "
                                f"has {previous}", "give one subnet per switch segment")
            for other, subnet in fixed.items():
                if other != segment.index and subnet.overlaps(link.subnet):
                    raise SpecError(topology.source, where,
                                    f"address clash: {link.subnet} overlaps {subnet}",
                                    "give each segment its own subnet")
            fixed[segment.index] = link.subnet
    candidates = BASE.subnets(new_prefix=SEGMENT_PREFIX)
    next(candidates)  # keep 10.0.0.0/24 free
    for segment in segments:
        subnet = fixed.get(segment.index)
        if subnet is None:
            subnet = next(c for c in candidates
                          if not any(c.overlaps(f) for f in fixed.values()))
        needed = len(segment.members)
        if needed > subnet.num_addresses - 2:
            raise SpecError(topology.source, f"segment {subnet}",
                            f"address clash: {needed} interfaces do not fit in {subnet}",
                            "give a larger subnet")
        segment.subnet = subnet
