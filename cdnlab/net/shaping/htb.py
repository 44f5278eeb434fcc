"""htb: the rate half of every shaping backend.

A link direction's rate is an htb class on the egress interface of the node it leaves: root
5:, class 5:1 (the handles Mininet's TCLink uses), and a leaf under it: a packet FIFO (the
nfqueue backend) or netem (the netem backend). One rate change works on both. Trace replay
and scenario events change the class's rate in place (`tc class change`), never rebuilding
the qdisc, so queued packets survive.

A class is metered by two token buckets, its rate and its ceil (here the same rate), and
each keeps `burst` bytes: that much can leave at once after a timer fired late, so late
wake-ups cost no rate until they exceed a burst's worth of time. tc leaves the ceil's
bucket (`cburst`) at one MTU unless told, which made every late timer lose rate for good:
the QEMU guest's TCP read 92-100 % of 50 Mbit/s with it and 97-100 % with `cburst` =
`burst`, alternating in one run.
"""

from __future__ import annotations

from typing import Any

from cdnlab.net.shaping.base import run_in

ROOT = "5:0"
CLASS = "5:1"
LEAF = "10:"
MIN_BURST_BYTES = 15000
QUANTUM_BYTES = 60000


def _rate_args(rate_mbps: float) -> str:
    burst = max(MIN_BURST_BYTES, int(rate_mbps * 1e6 / 8 * 0.001))
    return f"rate {rate_mbps:.6g}mbit burst {burst} cburst {burst} quantum {QUANTUM_BYTES}"


def fifo(queue: int) -> str:
    """The leaf that is the bottleneck buffer alone: a `queue`-packet FIFO."""
    return f"pfifo limit {queue}"


def install_commands(intf: str, rate_mbps: float, leaf: str) -> list[str]:
    """htb with one class at `rate_mbps`, and `leaf` (a qdisc and its arguments) under it."""
    return [
        f"tc qdisc replace dev {intf} root handle {ROOT} htb default 1",
        f"tc class add dev {intf} parent {ROOT} classid {CLASS} htb {_rate_args(rate_mbps)}",
        f"tc qdisc add dev {intf} parent {CLASS} handle {LEAF} {leaf}",
    ]


def install(node: Any, intf: str, rate_mbps: float, leaf: str) -> None:
    """The three commands in one shell of `node`: one process, which matters where every
    process start is slow (the QEMU guest, and big topologies anywhere)."""
    run_in(node, " && ".join(install_commands(intf, rate_mbps, leaf)))


def change_rate_command(intf: str, rate_mbps: float) -> str:
    return f"tc class change dev {intf} parent {ROOT} classid {CLASS} htb {_rate_args(rate_mbps)}"


def change_queue_command(intf: str, queue: int) -> str:
    return f"tc qdisc change dev {intf} parent {CLASS} handle {LEAF} pfifo limit {queue}"
