"""The os-ken controller running the switches (Open vSwitch; userspace here): every shipped
topology reaches full connectivity through it, its byte counters agree with iperf3, traffic
survives its death, and its counters show the bytes a transfer from the origin put on the
transit link."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from cdnlab.capabilities import detect
from cdnlab.measure.reachability import unreachable
from cdnlab.measure.transfer import counted_transfer
from cdnlab.net.emulation import Emulation
from cdnlab.net.shaping.base import run_in
from cdnlab.services.origin import OriginService
from cdnlab.topology import load_topology
from nodes.origin.store import ContentStore
from nodes.origin.synth import SynthOptions, synthesize
from tests.net.conftest import alive, recorded_processes

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(not detect().ovs_daemons,
                                 reason="Open vSwitch is not running (cdnlab doctor --fix)")]


@pytest.mark.parametrize("name", ["minimal", "two_isp_ixp", "isp_mesh"])
def test_every_topology_is_fully_connected_through_the_controller(
        name: str, nothing_left_behind: None) -> None:
    with Emulation(load_topology(name), controller="os-ken") as emu:
        processes = recorded_processes(emu)
        assert emu.datapath in ("user", "kernel")
        assert unreachable(emu, count=2) == []
        assert emu.controller.alive
        events = [json.loads(line) for line in emu.controller.events.read_text().splitlines()]
        switches = [n for n in emu.topology.nodes if emu.topology.kind(n) == "switch"]
        assert len({e["dpid"] for e in events if e["event"] == "switch_up"}) == len(switches)
    assert alive(processes) == []


def test_counters_agree_with_iperf3_and_traffic_survives_the_controller(
        nothing_left_behind: None) -> None:
    with Emulation(load_topology("two_isp_ixp"), controller="os-ken") as emu:
        processes = recorded_processes(emu)
        counted = counted_transfer(emu, "a1", "edge_a_1", seconds=3, mbps=20)
        # counters hold Ethernet, IP and UDP headers: 42 bytes on each 1400-byte datagram
        assert abs(counted["byte_err_pct"]) <= 5.0, counted
        assert counted["counted_bytes"] >= counted["iperf_bytes"], "nothing was missed"
        stats = emu.controller.port_stats()
        assert {s["class"] for s in stats} >= {"access", "transit"}
        # kill the controller in the middle of a TCP transfer: it goes on
        server = emu.node("edge_x_1").popen(["iperf3", "-s", "-1", "-p", "5203"],
                                            stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
        emu.ledger.add_process(server.pid, "iperf3 server")
        time.sleep(0.5)
        client = emu.node("b1").popen(["iperf3", "-c", emu.ip("edge_x_1"), "-p", "5203",
                                       "-t", "6", "-i", "1", "--json"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        emu.ledger.add_process(client.pid, "iperf3 client")
        time.sleep(2.0)
        emu.controller.kill()
        out, _ = client.communicate(timeout=30)
        server.wait(10)
        intervals = json.loads(out)["intervals"]
        after = [i["sum"]["bits_per_second"] / 1e6 for i in intervals[3:]]
        assert after and min(after) > 5.0, after  # 20 Mbit/s access: still flowing
        assert not emu.controller.check()
        lost = [json.loads(line) for line in emu.controller.events.read_text().splitlines()]
        assert [e["event"] for e in lost].count("controller_lost") == 1
        # in standalone fail mode the switches take over: new flows find their way too
        deadline = time.monotonic() + 15
        while unreachable(emu, timeout_s=1.0):
            assert time.monotonic() < deadline, "switches never took over"
    assert alive(processes) == []


def test_transit_bytes_of_a_fetch_from_the_origin(nothing_left_behind: None) -> None:
    """Standing in for push-versus-pull until scenarios exist: the bytes a client pulls
    from the origin cross the transit link, and the controller's counters say so."""
    with Emulation(load_topology("two_isp_ixp"), controller="os-ken") as emu:
        store = emu.run_dir / "store"
        synthesize(ContentStore(store), SynthOptions(titles=1, duration_s=24, seed=6))
        origin = OriginService(emu, store)
        origin.start()
        entry = json.loads((store / "catalog.json").read_text())["titles"]["synth-0001"]
        rep = entry["profiles"]["avc"]["representations"][5]
        urls = [f"{origin.url}/synth-0001/" + rep["media"].replace("$Number%05d$", f"{n:05d}")
                for n in range(1, 7)]

        def transit_bytes() -> int:
            """Bytes into the IXP from the transit link (the switch's side of it)."""
            time.sleep(2.5 * emu.controller.interval_s)
            latest: dict[str, int] = {}
            for stat in emu.controller.port_stats():
                if stat["class"] == "transit":
                    latest[stat["name"]] = int(stat["rx_bytes"])
            return sum(latest.values())

        def origin_sent() -> int:
            dev = run_in(emu.node("origin"), "cat /proc/net/dev").splitlines()[2:]
            return sum(int(line.split(":")[1].split()[8]) for line in dev
                       if line.split(":")[0].strip() != "lo")

        before, sent_before = transit_bytes(), origin_sent()
        run_in(emu.node("a1"), f"{sys.executable} -m nodes.common.fetch {' '.join(urls)}")
        carried, sent = transit_bytes() - before, origin_sent() - sent_before
        payload = sum(rep["segment_bytes"][:6])
        # every byte the origin put on the wire (retransmissions included, when a1's
        # 20 Mbit/s access queue overflows) entered the IXP over transit, and was counted
        assert carried >= payload
        assert abs(carried - sent) <= 0.02 * sent, (carried, sent, payload)
