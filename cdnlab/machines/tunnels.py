"""The tunnels of a split run, measured before shaping and taken off the links' delays.

A link between machines is a GRE tunnel over the real network, which adds its own delay
(and, on a guest without acceleration, the cost of the extra virtual network hop) to the
emulated one. Before any shape is installed, every such link whose two ends are hosts or
routers is pinged across (unshaped), and so is one link of the same kind on the head
(the baseline: what an emulated link costs on one machine). Half the difference of the
median RTTs (robust to the bring-up's bursts of load) is the tunnel's own one-way delay,
which each direction of the link then subtracts from its configured delay
(`ShapedLink.applied`), so the link's RTT is the configured one: "delay compensation",
which Mininet Cluster Edition lists as a need of high-fidelity cluster runs still to do
(`mininet/examples/cluster.py`, "hifi support"). What cannot be compensated (a tunnel
slower than the link's delay) stays visible in the run's fidelity check, which measures
RTT across every link between machines.
"""

from __future__ import annotations

import re
import statistics
from typing import Any

from cdnlab.machines.spec import HEAD
from cdnlab.net.shaping.base import run_in
from cdnlab.topology.spec import HOST, ROUTER, Link

PINGS = 25
_REPLY = re.compile(r"time=([\d.]+) ms")


def _median_rtt_ms(emu: Any, link: Link, source: str) -> float | None:
    """Median RTT from `source` to the other end of `link`, across that link alone."""
    other = link.other(source)
    address = emu.plan.interface(other, link.index).address
    if address is None:
        return None
    try:
        out = run_in(emu.node(source), f"ping -n -c {PINGS} -i 0.02 -W 2 {address.ip}")
    except RuntimeError:
        return None
    times = [float(t) for t in _REPLY.findall(out)]
    return round(statistics.median(times), 3) if times else None


def _layer3(emu: Any, link: Link) -> bool:
    return all(emu.topology.kind(end) in (HOST, ROUTER) for end in (link.a, link.b))


def compensate(emu: Any) -> dict[str, dict[str, float | None]]:
    """Measure each tunnel against the baseline and set its links' compensation; per
    link between machines: its RTT, the baseline's, and the one-way compensation (None
    where it could not be measured)."""
    placement = emu.placement
    crossing = [lk for lk in emu.topology.links if lk.name in placement.crossing]
    local = [lk for lk in emu.topology.links if lk.name not in placement.crossing
             and _layer3(emu, lk) and placement.machine_of[lk.a] == HEAD]
    baseline = _median_rtt_ms(emu, local[0], local[0].a) if local else None
    found: dict[str, dict[str, float | None]] = {}
    for link in crossing:
        entry: dict[str, float | None] = {"rtt_ms": None, "baseline_rtt_ms": baseline,
                                          "compensation_ms": None}
        found[link.name] = entry
        if not _layer3(emu, link) or baseline is None:
            continue
        source = link.a if placement.machine_of[link.a] == HEAD else link.b
        rtt = _median_rtt_ms(emu, link, source)
        entry["rtt_ms"] = rtt
        if rtt is None:
            continue
        one_way = round(max(0.0, (rtt - baseline) / 2.0), 3)
        entry["compensation_ms"] = one_way
        emu.links[link.name].compensation_ms = one_way
    return found
