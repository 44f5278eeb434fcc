"""htb: the rate half of every shaping backend.

A link direction's rate is an htb class on the egress interface of the node it leaves:
root 5:, class 5:1 (the same handles Mininet's TCLink uses, so one rate change works on
both backends), and a leaf queue. Trace replay and scenario events change the class's rate
in place (`tc class change`), never rebuilding the qdisc, so queued packets survive.
"""

from __future__ import annotations

ROOT = "5:0"
CLASS = "5:1"
LEAF = "10:"
MIN_BURST_BYTES = 15000
QUANTUM_BYTES = 60000


def _rate_args(rate_mbps: float) -> str:
    burst = max(MIN_BURST_BYTES, int(rate_mbps * 1e6 / 8 * 0.001))
    return f"rate {rate_mbps:.6g}mbit burst {burst} quantum {QUANTUM_BYTES}"


def install_commands(intf: str, rate_mbps: float, queue: int) -> list[str]:
    """htb with one class at `rate_mbps` and a `queue`-packet FIFO as the bottleneck buffer."""
    return [
        f"tc qdisc replace dev {intf} root handle {ROOT} htb default 1",
        f"tc class add dev {intf} parent {ROOT} classid {CLASS} htb {_rate_args(rate_mbps)}",
        f"tc qdisc add dev {intf} parent {CLASS} handle {LEAF} pfifo limit {queue}",
    ]


def change_rate_command(intf: str, rate_mbps: float) -> str:
    return f"tc class change dev {intf} parent {ROOT} classid {CLASS} htb {_rate_args(rate_mbps)}"


def change_queue_command(intf: str, queue: int) -> str:
    return f"tc qdisc change dev {intf} parent {CLASS} handle {LEAF} pfifo limit {queue}"
