"""`cdnlab bench shaping`: what a delayed hop of the nfqueue backend costs in CPU, per packet,
against the kernel's own forwarding of the same traffic on an unshaped path, measured in
the same run.

Two two-host networks carry the same iperf3 UDP stream (a fixed rate of 1400-byte
datagrams, so both move the same MTU-sized packets): one over a plain veth pair (the
baseline), one over a link whose namespace holds the delay (10 ms each way,
`cdnlab-delayd`). Figures, each the mean of `rounds` transfers with its range, all per
packet that crossed the path:

    baseline_us_per_packet  the whole machine's busy CPU over the baseline transfer (both
                            hosts' stacks, iperf3, the veth, waking idle cores)
    delayed_us_per_packet   the same over the delayed transfer
    us_per_packet           what the delayed hop adds: delayed less baseline, round by
                            round (the delay server, its wake-ups, the packet's second
                            pass through the stack after the verdict)
    server_us_per_packet    the delay server's own CPU (its /proc/PID/stat time), a part
                            of what the hop adds

Busy is wall time times cores less the cores' idle residency, which cpuidle keeps in
microseconds; /proc/stat's busy ticks miss most of it on a tickless kernel (a core woken
for a packet and back in its idle state before the next tick is never counted busy: here
it said 1–6 µs for a baseline of about 20), so /proc/stat is only the fallback where a
core has no cpuidle driver.

Packets are counted by the receiving host's interface (received and sent), the same way
on both paths. UDP, not TCP: GSO would merge TCP's segments into a few large socket
buffers, and the delay server's per-packet figure would then hide in the receiving stack's
work on each of them, which the kernel runs in the verdict's context and charges to it.
The run ends `shaping: backend=nfqueue us_per_packet=<x> baseline_us_per_packet=<y>`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from cdnlab.measure.monitor import cpu_times, idle_residency_us
from cdnlab.net.emulation import Emulation
from cdnlab.net.shaping.base import run_in
from cdnlab.topology.spec import parse_topology
from nodes.common.procfs import TICKS_PER_S, process_ticks

RATE_MBPS = 50.0
DELAY_MS = 10.0


def pair(delay_ms: float) -> dict[str, Any]:
    link: dict[str, Any] = {"a": "src", "b": "dst"}
    if delay_ms:
        link["delay"] = delay_ms
    return {"name": "bench_shaping", "nodes": {"src": "server", "dst": "client"},
            "links": [link]}


@dataclass
class Transfer:
    packets: int
    busy_s: float  # the whole machine's, all cores
    server_s: float | None  # the delay server's

    def per_packet_us(self, seconds: float | None) -> float | None:
        return None if seconds is None or not self.packets else seconds * 1e6 / self.packets


def _busy_s() -> float:
    """The whole machine's busy CPU-seconds so far, all cores: wall time times cores less
    their idle residency where cpuidle keeps it (µs), else /proc/stat's 10 ms ticks (a
    2-second baseline costs a few of them, and none at all on an unlucky run)."""
    idle_us = idle_residency_us()
    if idle_us is None:
        cores, _ = cpu_times()
        return sum(busy for busy, _total in cores) / TICKS_PER_S
    return time.monotonic() * (os.cpu_count() or 1) - idle_us / 1e6


def _packets(emu: Emulation) -> int:
    intf = emu.interface("dst", emu.topology.links[0].index)
    out = run_in(emu.node("dst"), f"cat /sys/class/net/{intf}/statistics/rx_packets "
                                  f"/sys/class/net/{intf}/statistics/tx_packets")
    return sum(int(v) for v in out.split())


def transfer(emu: Emulation, seconds: float) -> Transfer:
    """One iperf3 UDP stream src → dst at RATE_MBPS for `seconds`, its packets and CPU."""
    server = emu.node("dst").popen(["iperf3", "-s", "-1", "-p", "5203"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    emu.ledger.add_process(server.pid, "iperf3 server on dst")
    time.sleep(0.5)
    process = emu.link("src", "dst").extra_processes()
    pid = process[0] if process else None
    packets, busy = _packets(emu), _busy_s()
    served = process_ticks(pid) if pid else None
    try:
        run_in(emu.node("src"), f"iperf3 -c {emu.ip('dst')} -p 5203 -u -l 1400 "
                                f"-b {RATE_MBPS:g}M -t {seconds:g} >/dev/null")
    finally:
        if server.poll() is None:
            server.wait(10)
    server_s = None if pid is None or served is None else \
        (process_ticks(pid) - served) / TICKS_PER_S
    return Transfer(_packets(emu) - packets, _busy_s() - busy, server_s)


def _figure(values: list[float | None]) -> dict[str, float | None]:
    known = [v for v in values if v is not None]
    if not known:
        return {"mean": None, "median": None, "min": None, "max": None}
    return {"mean": round(statistics.fmean(known), 2), "median": round(statistics.median(known), 2),
            "min": round(min(known), 2), "max": round(max(known), 2)}


def measure(rounds: int, seconds: float) -> dict[str, Any]:
    """Baseline and delayed transfers, alternated round by round so a busy moment of the
    host falls on both alike; CPUs left to idle (the spinners would count as busy)."""
    base = Emulation(parse_topology(pair(0.0), "bench"), shaping="nfqueue", cpu_awake="off")
    delayed = Emulation(parse_topology(pair(DELAY_MS), "bench"), shaping="nfqueue",
                        cpu_awake="off")
    rows: list[tuple[Transfer, Transfer]] = []
    with base, delayed:
        for _ in range(rounds):
            rows.append((transfer(base, seconds), transfer(delayed, seconds)))
    baseline = [b.per_packet_us(b.busy_s) for b, _d in rows]
    delayed = [d.per_packet_us(d.busy_s) for _b, d in rows]
    return {
        "rate_mbps": RATE_MBPS, "delay_ms": DELAY_MS, "seconds": seconds, "rounds": rounds,
        "packets": _figure([float(d.packets) for _b, d in rows]),
        "baseline_us_per_packet": _figure(baseline),
        "delayed_us_per_packet": _figure(delayed),
        "us_per_packet": _figure([None if b is None or d is None else d - b
                                  for b, d in zip(baseline, delayed, strict=True)]),
        "server_us_per_packet": _figure([d.per_packet_us(d.server_s) for _b, d in rows]),
    }


def closing_line(result: dict[str, Any]) -> str:
    return (f"shaping: backend=nfqueue us_per_packet={result['us_per_packet']['mean']} "
            f"baseline_us_per_packet={result['baseline_us_per_packet']['mean']}")


def run(rounds: int = 3, seconds: float = 5.0) -> int:
    result = measure(rounds, seconds)
    print(f"nfqueue delayed hop ({DELAY_MS:g} ms each way) against an unshaped veth, "
          f"iperf3 UDP at {RATE_MBPS:g} Mbit/s for {seconds:g} s, {rounds} rounds "
          "(mean, min–max):")
    for key in ("packets", "baseline_us_per_packet", "delayed_us_per_packet", "us_per_packet",
                "server_us_per_packet"):
        f = result[key]
        print(f"  {key:24s} {f['mean']}  ({f['min']}–{f['max']})")
    print(closing_line(result))
    return 0
