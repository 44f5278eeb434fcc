"""The naming scheme that makes measurements and load ordinary DNS records, so `nsupdate`
(or the REST API, or the probes) can set them. Under the zone (e.g. `cdn.lab.`):

    <cluster>.cluster.<zone>       A      one record per server address of the cluster
                                   AAAA   (optional) the servers' IPv6 addresses
    <cluster>.health.<zone>        TXT    "up" or "down"
    <cluster>.load.<zone>          TXT    utilisation, e.g. "0.92" (1.0 = at capacity)
    <cluster>.threshold.<zone>     TXT    utilisation above which load spills, e.g. "0.8"
    <net>.<cluster>.rtt.<zone>     TXT    smoothed RTT in ms from the cluster to client
                                          network <net>, written 10-0-1-0-24 for 10.0.1.0/24

Any other name in the zone is served as it is (static records); service names (e.g.
`video.<zone>`) are answered by policy and cannot be written. Cluster names come from the
topology and may hold '_', which is no host name: nsupdate refuses such A/AAAA owners
unless its script says `check-names no` (TXT records are not checked).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$")
KINDS = {"cluster": "A", "health": "TXT", "load": "TXT", "threshold": "TXT"}


class SchemeError(ValueError):
    """A record under a reserved subtree that does not follow the scheme."""


@dataclass(frozen=True)
class Meaning:
    kind: str  # cluster | health | load | threshold | rtt | static
    cluster: str | None = None
    network: ipaddress.IPv4Network | None = None


def net_label(network: ipaddress.IPv4Network | str) -> str:
    net = ipaddress.IPv4Network(network, strict=False)
    return f"{net.network_address}-{net.prefixlen}".replace(".", "-")


def parse_net_label(label: str) -> ipaddress.IPv4Network:
    parts = label.split("-")
    if len(parts) != 5:
        raise SchemeError(f"{label!r} is not a network label like 10-0-1-0-24")
    try:
        return ipaddress.IPv4Network(f"{'.'.join(parts[:4])}/{parts[4]}")
    except ValueError as err:
        raise SchemeError(f"{label!r} is not a network: {err}") from err


def meaning(name: str, zone: str) -> Meaning:
    """What a (lower-case, absolute) name in `zone` holds."""
    relative = name[: -len(zone)].rstrip(".") if name.endswith(zone) else name
    labels = relative.split(".") if relative else []
    if len(labels) == 2 and labels[1] in KINDS:
        if not _LABEL.match(labels[0]):
            raise SchemeError(f"{labels[0]!r} is not a cluster name")
        return Meaning(labels[1], labels[0])
    if len(labels) == 3 and labels[2] == "rtt":
        if not _LABEL.match(labels[1]):
            raise SchemeError(f"{labels[1]!r} is not a cluster name")
        return Meaning("rtt", labels[1], parse_net_label(labels[0]))
    if labels and labels[-1] in (*KINDS, "rtt"):
        raise SchemeError(f"{name} is under the reserved {labels[-1]}.{zone} subtree but not "
                         f"of its form (see the naming scheme)")
    return Meaning("static")


def check_value(kind: str, rtype: str, rdata: str) -> None:
    """Refuse values a policy could not read, naming the problem."""
    expected = ("A", "AAAA") if kind == "cluster" else ("TXT",)
    if kind == "static":
        return
    if rtype not in expected:
        raise SchemeError(f"{kind} records are {' or '.join(expected)}, not {rtype}")
    if kind == "cluster":
        return
    text = rdata.strip().strip('"')
    if kind == "health":
        if text not in ("up", "down"):
            raise SchemeError(f'health is "up" or "down", not {rdata}')
        return
    try:
        value = float(text)
    except ValueError as err:
        raise SchemeError(f"{kind} must be a number, not {rdata}") from err
    if value < 0 or value != value:
        raise SchemeError(f"{kind} must be a non-negative number, not {rdata}")


def record_name(kind: str, zone: str, cluster: str,
                network: ipaddress.IPv4Network | str | None = None) -> str:
    if kind == "rtt":
        assert network is not None
        return f"{net_label(network)}.{cluster}.rtt.{zone}"
    return f"{cluster}.{kind}.{zone}"
