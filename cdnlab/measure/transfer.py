"""A counted transfer: a UDP iperf3 stream whose bytes the OpenFlow controller's port
counters must account for (`topo check --controller` and the controller tests)."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from cdnlab.errors import EnvironmentProblem
from cdnlab.net.shaping.base import run_in
from cdnlab.topology.spec import HOST, ROUTER


def counted_transfer(emu: Any, client: str, server: str, seconds: float = 3.0,
                     mbps: float = 20.0) -> dict[str, Any]:
    """Send a UDP iperf3 stream client → server and read the bytes the controller counted
    on the first switch port of the path (where the stream enters a switch); iperf3's own
    figure beside it. Counters include Ethernet, IP and UDP headers (42 bytes a datagram of
    1400), so `byte_err_pct` is about +3 % when the counting is right."""
    hops = emu.routing.path(client, server)
    entry = next(((hop.src, hop.dst, hop.link) for hop in hops
                  if emu.topology.kind(hop.dst) not in (HOST, ROUTER)), None)
    if entry is None:
        raise EnvironmentProblem(f"no switch on the path {client} → {server}")
    upstream, switch, link = entry
    port = emu.plan.interface(switch, link.index).name
    controller = emu.controller

    def settle() -> int:
        """The port's counter from a poll that began after now: written more than one
        interval from now. (Counting events instead was racy: one poll writes an event per
        port, so two new events could be the rest of a poll already under way, taken
        while the access link's queue still held the stream's last packets.)"""
        after = time.time() - emu.t0 + controller.interval_s
        deadline = time.monotonic() + 5 * controller.interval_s + 2
        while True:
            stats = [s for s in controller.port_stats() if s["name"] == port]
            if stats and stats[-1]["t"] > after:
                return int(stats[-1]["rx_bytes"])
            if time.monotonic() > deadline:
                raise EnvironmentProblem(f"the controller wrote no counters of {port} "
                                         "for a poll after the transfer")
            time.sleep(0.1)

    before = settle()
    server_node = emu.node(server)
    listener = server_node.popen(["iperf3", "-s", "-1", "-p", "5202"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    emu.ledger.add_process(listener.pid, f"iperf3 server on {server}")
    time.sleep(0.5)
    try:
        out = run_in(emu.node(client), f"iperf3 -c {emu.ip(server)} -p 5202 -u -b {mbps:g}M "
                                       f"-l 1400 -t {seconds:g} --json")
    finally:
        listener.wait(10) if listener.poll() is None else None
    sent = int(json.loads(out)["end"]["sum"]["bytes"])
    after = settle()
    delta = after - before
    return {"link": link.name, "switch": switch, "port": port, "upstream": upstream,
            "iperf_bytes": sent, "counted_bytes": delta,
            "byte_err_pct": round((delta - sent) / sent * 100, 2) if sent else None}
