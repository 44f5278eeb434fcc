"""Changes to a running emulation's links (engine, network layer): a new shape in one
direction, a link cut or restored, a rate that follows a bandwidth trace. The timeline,
the benchmarks and the tests change links only through here."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cdnlab.net.replay import TraceReplayer
from cdnlab.net.shaping.base import ShapedLink, run_in
from cdnlab.topology.shape import LinkShape
from cdnlab.topology.spec import HOST, ROUTER, Topology
from cdnlab.traces import BandwidthTrace


class LinkChanges:
    def __init__(self, topology: Topology, link: Callable[[str, str], ShapedLink],
                 interface: Callable[[str, int], str], node: Callable[[str], Any],
                 routes_dir: Callable[[], Path]) -> None:
        self.topology = topology
        self.link = link  # (a, b) → the shaped link between them
        self.interface = interface  # (node, link index) → its interface's name
        self.node = node  # name → the Mininet node
        self.routes_dir = routes_dir  # → each L3 node's `ip -batch` of addresses and routes
        self.replayers: list[TraceReplayer] = []

    def set_shape(self, a: str, b: str, direction: str, shape: LinkShape) -> None:
        self.link(a, b).set_shape(direction, shape)

    def set_link_up(self, a: str, b: str, up: bool) -> None:
        """Cut the a–b link (both ends' interfaces down) or restore it. The kernel drops
        routes through an interface that goes down, so restoring reinstalls every node's
        routes (`ip -force -batch`: those still there are left as they are)."""
        link = self.topology.link(a, b)
        for end in (link.a, link.b):
            name = self.interface(end, link.index)
            run_in(self.node(end), f"ip link set {name} {'up' if up else 'down'}")
        if up:
            for name, node in self.topology.nodes.items():
                if node.kind in (HOST, ROUTER):
                    batch = self.routes_dir() / f"{name}.ip"
                    run_in(self.node(name), f"ip -force -batch {batch} 2>/dev/null || true")

    def replay(self, a: str, b: str, trace: BandwidthTrace, direction: str = "both",
               loop: bool = True) -> TraceReplayer:
        """Make the a–b link's rate follow `trace` from now on, until `stop()`."""
        replayer = TraceReplayer(self.link(a, b), trace, direction, loop)
        self.replayers.append(replayer)
        replayer.start()
        return replayer

    def stop(self) -> None:
        """Stop every trace replay, reporting any that failed."""
        for replayer in self.replayers:
            replayer.stop()
            if replayer.error is not None:
                print(f"cdnlab: trace replay on {replayer.link.name} failed: {replayer.error}",
                      file=sys.stderr)
        self.replayers.clear()
