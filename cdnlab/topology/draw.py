"""`cdnlab topo draw`: a PNG picture of a topology, with roles, addresses and link shapes.

Nodes are laid out in layers by hop distance from the origin (the cloud at the top, clients
at the bottom), in declaration order within a layer, so the same file always draws the same.
"""

from __future__ import annotations

from pathlib import Path

from cdnlab.topology.addressing import plan_addresses
from cdnlab.topology.shape import LinkShape
from cdnlab.topology.spec import HOST, ROUTER, Topology

COLORS = {"client": "#4C9BE8", "isp": "#F2A541", "transit": "#F2A541", "cloud": "#F2A541",
          "router": "#F2A541", "ixp": "#7BC47F", "access": "#BBBBBB", "switch": "#BBBBBB",
          "edge": "#9B6BD3", "edge_server": "#C9A9F0", "origin": "#E8574C", "dns": "#E8C14C",
          "route_server": "#A8D8AA"}


def shape_label(shape: LinkShape) -> str:
    parts = [f"{shape.rate:g}M" if shape.rate else "∞"]
    if shape.delay:
        parts.append(f"{shape.delay:g}ms")
    if shape.jitter:
        parts.append(f"±{shape.jitter:g}")
    if shape.loss:
        parts.append(f"{shape.loss:g}%")
    return " ".join(parts)


def _layers(topology: Topology) -> dict[str, int]:
    roots = topology.by_role("origin") or [next(iter(topology.nodes))]
    depth = {roots[0]: 0}
    frontier = [roots[0]]
    while frontier:
        following = []
        for name in frontier:
            for link in topology.links_of(name):
                other = link.other(name)
                if other not in depth:
                    depth[other] = depth[name] + 1
                    following.append(other)
        frontier = following
    return depth


def draw(topology: Topology, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plan = plan_addresses(topology)
    depth = _layers(topology)
    rows: dict[int, list[str]] = {}
    for name in topology.nodes:
        rows.setdefault(depth[name], []).append(name)
    width = max(len(r) for r in rows.values())
    pos = {}
    for level, names in rows.items():
        for i, name in enumerate(names):
            pos[name] = ((i + 0.5) * width / len(names), -level)
    fig, ax = plt.subplots(figsize=(max(8, width * 1.6), max(5, len(rows) * 1.4)))
    for link in topology.links:
        (xa, ya), (xb, yb) = pos[link.a], pos[link.b]
        ax.plot([xa, xb], [ya, yb], color="#888888", lw=1, zorder=1)
        label = shape_label(link.a_to_b)
        if link.b_to_a != link.a_to_b:
            label += f" / {shape_label(link.b_to_a)}"
        ax.text((xa + xb) / 2, (ya + yb) / 2, label, fontsize=6, ha="center", va="center",
                bbox={"fc": "white", "ec": "none", "pad": 0.5}, zorder=2)
    for name, node in topology.nodes.items():
        x, y = pos[name]
        marker = "o" if node.kind == HOST else ("s" if node.kind == ROUTER else "D")
        ax.scatter([x], [y], s=420, c=COLORS.get(node.role, "#DDDDDD"), marker=marker,
                   edgecolors="black", zorder=3)
        text = name
        if node.kind in (HOST, ROUTER):
            text += f"\n{plan.address(name)}"
        ax.text(x, y - 0.22, text, fontsize=7, ha="center", va="top", zorder=4)
    ax.set_title(f"{topology.name}: {topology.description}" if topology.description
                 else topology.name, fontsize=10)
    ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
