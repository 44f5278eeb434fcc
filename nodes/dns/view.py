"""What the policies read, derived once per zone snapshot from its records (the scheme is
in nodes/common/records.py): every cluster's addresses, health, load and threshold, and per
client network the RTT from each cluster, each with the time it was last written so
staleness is judged at query time."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nodes.common.conventions import LOAD_THRESHOLD
from nodes.common.records import meaning

if TYPE_CHECKING:
    from nodes.dns.zone import Zone

DEFAULT_THRESHOLD = LOAD_THRESHOLD


@dataclass(frozen=True)
class Reading:
    value: float
    updated: float


@dataclass
class ClusterState:
    name: str
    addresses: tuple[str, ...] = ()
    addresses6: tuple[str, ...] = ()
    up: bool = True
    health_updated: float | None = None
    load: Reading | None = None
    threshold: float = DEFAULT_THRESHOLD


@dataclass
class NetworkRtts:
    network: ipaddress.IPv4Network
    rtt: dict[str, Reading] = field(default_factory=dict)

    @property
    def base(self) -> int:
        return int(self.network.network_address)

    @property
    def mask(self) -> int:
        return int(self.network.netmask)


@dataclass
class View:
    clusters: dict[str, ClusterState]
    networks: list[NetworkRtts]  # longest prefix first
    # per-snapshot cache for policies (candidate lists by network and second)
    memo: dict[object, object] = field(default_factory=dict)

    def network_for(self, address: int) -> NetworkRtts | None:
        for entry in self.networks:
            if address & entry.mask == entry.base:
                return entry
        return None


def _number(text: str) -> float:
    return float(text.strip().strip('"'))


def build_view(zone: Zone) -> View:
    clusters: dict[str, ClusterState] = {}
    networks: dict[ipaddress.IPv4Network, NetworkRtts] = {}

    def cluster(name: str) -> ClusterState:
        return clusters.setdefault(name, ClusterState(name))

    for (name, rtype), rrset in sorted(zone.rrsets.items()):
        what = meaning(name, zone.origin)
        if what.kind == "static" or what.cluster is None:
            continue
        if what.kind == "cluster" and rtype == "A":
            cluster(what.cluster).addresses = rrset.rdatas
        elif what.kind == "cluster" and rtype == "AAAA":
            cluster(what.cluster).addresses6 = rrset.rdatas
        elif what.kind == "health" and rtype == "TXT":
            state = cluster(what.cluster)
            state.up = rrset.rdatas[-1].strip('"') == "up"
            state.health_updated = rrset.updated
        elif what.kind == "load" and rtype == "TXT":
            cluster(what.cluster).load = Reading(_number(rrset.rdatas[-1]), rrset.updated)
        elif what.kind == "threshold" and rtype == "TXT":
            cluster(what.cluster).threshold = _number(rrset.rdatas[-1])
        elif what.kind == "rtt" and rtype == "TXT" and what.network is not None:
            entry = networks.setdefault(what.network, NetworkRtts(what.network))
            entry.rtt[what.cluster] = Reading(_number(rrset.rdatas[-1]), rrset.updated)
    # a cluster without IPv4 addresses cannot be answered with (the emulation is IPv4)
    usable = {n: c for n, c in clusters.items() if c.addresses}
    ordered = sorted(networks.values(), key=lambda e: -e.network.prefixlen)
    return View(usable, ordered)
