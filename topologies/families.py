"""Builders for parametric topology families, for experiments at scale.

Each builder returns a mapping in the topology schema (nodes, links), which then goes
through the same validation as a hand-written file. Layouts and delays are fixed formulas
of the parameters, so the same parameters always give the same network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def isp_mesh(isps: int = 3, ixps: int = 2, clusters: int = 4, clients_per_isp: int = 2,
             access_mbps: float = 20.0, access_delay_ms: float = 2.0) -> dict[str, Any]:
    """N ISPs peering at M IXPs, a cloud with origin and DNS behind transit, K edge
    clusters placed in turn inside ISPs, at IXPs and in the cloud, C clients per ISP.

    ISP i meets IXP ((i-1) mod M)+1 at 2+i ms (and the next IXP at 4+i ms when M > 1);
    the cloud reaches IXP m at 10+2m ms; clusters sit 1 ms (0.5 ms at an IXP) from their site.
    """
    for name, value, low in (("isps", isps, 1), ("ixps", ixps, 1), ("clusters", clusters, 1),
                             ("clients_per_isp", clients_per_isp, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be a whole number ≥ {low}, got {value!r}")
    nodes: dict[str, Any] = {"cloud": "transit", "origin": "origin", "dns": "dns"}
    links: list[dict[str, Any]] = [
        {"a": "cloud", "b": "origin", "rate": 1000, "delay": 1, "class": "transit"},
        {"a": "cloud", "b": "dns", "rate": 100, "delay": 1, "class": "transit"},
    ]
    for m in range(1, ixps + 1):
        nodes[f"ixp{m}"] = "ixp"
        links.append({"a": "cloud", "b": f"ixp{m}", "rate": 1000, "delay": 10 + 2 * m,
                      "class": "transit"})
    for i in range(1, isps + 1):
        isp, access = f"isp{i}", f"acc{i}"
        nodes[isp] = "isp"
        nodes[access] = "access"
        links.append({"a": access, "b": isp, "class": "access"})
        first = (i - 1) % ixps + 1
        links.append({"a": isp, "b": f"ixp{first}", "rate": 1000, "delay": 2 + i,
                      "class": "ixp"})
        if ixps > 1:
            links.append({"a": isp, "b": f"ixp{first % ixps + 1}", "rate": 1000,
                          "delay": 4 + i, "class": "ixp"})
        for j in range(1, clients_per_isp + 1):
            client = f"c{i}_{j}"
            nodes[client] = "client"
            links.append({"a": client, "b": access, "rate": access_mbps,
                          "delay": access_delay_ms})
    sites = [f"isp{i}" for i in range(1, isps + 1)]
    sites += [f"ixp{m}" for m in range(1, ixps + 1)] + ["cloud"]
    for k in range(1, clusters + 1):
        cluster, site = f"e{k}", sites[(k - 1) % len(sites)]
        nodes[cluster] = {"role": "edge", "servers": 1, "site": site}
        at_ixp = site.startswith("ixp")
        links.append({"a": cluster, "b": site, "rate": 1000, "delay": 0.5 if at_ixp else 1,
                      "class": "ixp" if at_ixp else "core"})
    return {"name": f"isp_mesh_{isps}x{ixps}x{clusters}x{clients_per_isp}",
            "nodes": nodes, "links": links}


FAMILIES: dict[str, Callable[..., dict[str, Any]]] = {"isp_mesh": isp_mesh}


def build(family: str, params: dict[str, Any]) -> dict[str, Any]:
    if family not in FAMILIES:
        raise KeyError(f"unknown family {family!r}")
    return FAMILIES[family](**params)
