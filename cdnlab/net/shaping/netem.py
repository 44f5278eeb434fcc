"""The `netem` shaping backend, for kernels with sch_netem (the Vagrant VM, most distributions).

The layout of Mininet's TCLink, installed by the backend itself: on each end's egress
interface, htb (root 5:, class 5:1) for the rate and netem (10:) under it for delay, jitter
and loss. Every link gets both, an unshaped rate becoming htb at the 1000 Mbit/s ceiling, so
any direction can be reshaped in place later: `tc class change` for the rate, `tc qdisc
change` for netem. netem's limit holds both the packets waiting for the rate and those in
flight inside the delay, so it is the configured queue plus the bandwidth-delay product.

Each end is set up by one shell running three `tc` commands (TCLink runs about ten).
"""

from __future__ import annotations

import math
from typing import Any

from cdnlab.net.shaping import htb
from cdnlab.net.shaping.base import Backend, BuildContext, ShapedLink, run_in
from cdnlab.topology.shape import MAX_RATE_MBPS, LinkShape
from cdnlab.topology.spec import Link

PACKET_BITS = 1500 * 8


def netem_limit(shape: LinkShape) -> int:
    rate = shape.rate or MAX_RATE_MBPS
    in_flight = rate * 1e6 * (shape.delay + shape.jitter) / 1000.0 / PACKET_BITS
    return shape.queue + math.ceil(in_flight)


def netem_args(shape: LinkShape) -> str:
    args = f"delay {shape.delay:g}ms"
    if shape.jitter:
        args += f" {shape.jitter:g}ms"
    if shape.loss:
        args += f" loss {shape.loss:g}%"
    return f"{args} limit {netem_limit(shape)}"


class NetemLink(ShapedLink):
    def start(self) -> None:
        for direction, shape in self.shapes.items():
            node, intf = self.egress(direction)
            htb.install(node, intf, shape.rate or MAX_RATE_MBPS,
                        f"netem {netem_args(self.applied(shape))}")
        self.segment_for_loss()

    def set_shape(self, direction: str, shape: LinkShape) -> None:
        node, intf = self.egress(direction)
        old = self.shapes[direction]
        self.shapes[direction] = shape
        self.segment_for_loss()
        if shape.rate != old.rate:
            run_in(node, htb.change_rate_command(intf, shape.rate or MAX_RATE_MBPS))
        if (shape.delay, shape.jitter, shape.loss, shape.queue) != (
                old.delay, old.jitter, old.loss, old.queue) or shape.rate != old.rate:
            run_in(node, f"tc qdisc change dev {intf} parent {htb.CLASS} handle {htb.LEAF} "
                         f"netem {netem_args(self.applied(shape))}")

    def stop(self) -> None:
        """The qdiscs go with the interfaces."""


class NetemBackend(Backend):
    name = "netem"

    def connect(self, ctx: BuildContext, spec: Link, node_a: Any, node_b: Any,
                intf_a: str, intf_b: str, boxed: bool) -> ShapedLink:
        ctx.link(node_a, node_b, intf_a, intf_b)
        return NetemLink(spec, node_a, node_b, intf_a, intf_b)
