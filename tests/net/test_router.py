"""Real FRR daemons on emulated routers (`nodes/router`, the first piece of BGP routing):
on `minimal`, isp1 (AS 65001) and cloud (AS 65002) speak eBGP over their link, isp1
originates a prefix on its loopback, and cloud's kernel gets the route from bgpd through
zebra. The daemons' PIDs are in the run's ledger (they drop root, so they would not die
with the node program by themselves); stopping the program stops them; after the run
nothing of theirs is left, not even when the node program itself was killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from cdnlab.net.emulation import Emulation
from cdnlab.net.shaping.base import run_in
from cdnlab.services.router import RouterService
from cdnlab.topology import load_topology
from cdnlab.topology.addressing import plan_addresses
from cdnlab.topology.bgp import bgp_routers
from nodes.router.config import BgpRouter, Neighbour
from tests.net.conftest import alive, recorded_processes

pytestmark = pytest.mark.root

PREFIX = "192.0.2.1/32"


def frr_complaints(config: str) -> str:
    """What bgpd's dry run (`-C`) says about a config: nothing when it takes every line.
    (The file goes where user frr can read it: pytest's directories are root's alone.)"""
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)
        path = Path(directory) / "frr.conf"
        path.write_text(config)
        path.chmod(0o644)
        done = subprocess.run(["/usr/lib/frr/bgpd", "-C", "-u", "frr", "-g", "frr", "-f",
                               str(path)], capture_output=True, text=True, check=False)
    return (done.stdout + done.stderr).strip()


def test_bgpd_takes_every_line_of_a_rendered_policy() -> None:
    config = BgpRouter("r1", 65001, "10.0.0.1", (
        Neighbour("10.0.0.2", 65002, local_pref=200, prepend=2, med=50),
        Neighbour("10.0.0.6", 65003)), networks=("192.0.2.0/24",),
        redistribute_connected=True).render()
    assert "set as-path prepend 65001 65001" in config and "set local-preference 200" in config
    assert frr_complaints(config) == ""
    complaint = frr_complaints(config.replace("set metric 50", "set metrik 50"))
    assert "No such command" in complaint, "the dry run would catch a line bgpd refuses"
    # and an IXP route server's, and an anycast speaker's
    for topology in (load_topology("ixp_rs_bgp"), load_topology("anycast_transit")):
        routers = bgp_routers(topology, plan_addresses(topology))
        for name in ("ixp_rs", "edge_a_1"):
            if name in routers:
                assert frr_complaints(routers[name].render()) == "", name


def link_address(emu: Emulation, node: str, other: str) -> str:
    link = emu.topology.link(node, other)
    address = emu.plan.interface(node, link.index).address
    assert address is not None
    return str(address.ip)


def wait_for(ready: Any, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def routers(emu: Emulation) -> tuple[RouterService, RouterService]:
    isp, cloud = link_address(emu, "isp1", "cloud"), link_address(emu, "cloud", "isp1")
    return (RouterService(emu, BgpRouter("isp1", 65001, isp, (Neighbour(cloud, 65002),),
                                         networks=(PREFIX,))),
            RouterService(emu, BgpRouter("cloud", 65002, cloud, (Neighbour(isp, 65001),))))


def test_ebgp_session_installs_the_route_and_the_daemons_are_recorded(
        nothing_left_behind: None) -> None:
    with Emulation(load_topology("minimal")) as emu:
        left = session_and_stops(emu)
    assert not alive(left), "the run's end ended the daemons a killed program left"


def session_and_stops(emu: Emulation) -> list[tuple[int, int | None]]:
    """The session, the route, the stops; the daemons a killed router program left."""
    run_in(emu.node("isp1"), f"ip addr add {PREFIX} dev lo")
    isp1, cloud = routers(emu)
    for router in (isp1, cloud):
        router.start()
    daemons = [int(p) for r in (isp1, cloud) for p in (r.work / "frr.pids").read_text().split()]
    assert len(daemons) == 4
    recorded = {pid for pid, _ in recorded_processes(emu)}
    assert set(daemons) <= recorded, "the FRR daemons are in the run's ledger"

    def learned() -> bool:
        return "proto bgp" in run_in(emu.node("cloud"), f"ip route show {PREFIX}")

    wait_for(learned, "cloud's kernel has isp1's prefix from BGP")
    log = Path(emu.run_dir) / "events" / "cloud.bgp.jsonl"

    def said() -> list[dict[str, Any]]:
        return [e for e in map(json.loads, log.read_text().splitlines())
                if e["event"] == "bgp" and e["prefixes"] == 1]

    wait_for(said, "cloud's bgp events say it received the prefix")
    assert said()[0]["peers"] == {link_address(emu, "isp1", "cloud"): {
        "state": "Established", "prefixes": 1}}, said()[0]
    assert said()[0]["established"] == 1
    assert "proto bgp" not in run_in(emu.node("isp1"), f"ip route show {PREFIX}")

    # stopping the program stops its daemons
    assert isp1.stop() == 0
    isp1_daemons = [int(p) for p in (isp1.work / "frr.pids").read_text().split()]
    wait_for(lambda: not alive([(p, s) for p, s in recorded_processes(emu)
                                if p in isp1_daemons]), "isp1's daemons ended", 10)
    # a killed program leaves its daemons (they dropped root): the run's end ends them
    assert cloud.process is not None
    cloud.process.send_signal(signal.SIGKILL)
    cloud.process.wait()
    cloud_daemons = [(p, s) for p, s in recorded_processes(emu)
                     if p in {int(x) for x in (cloud.work / "frr.pids").read_text().split()}]
    assert alive(cloud_daemons), "bgpd and zebra outlive a killed node program"
    return cloud_daemons
