"""`routing: bgp` topologies on real FRR daemons (`cdnlab.net.bgp`): `topo check` on
two_isp_bgp brings it up, BGP converges (its time reported), every pair reaches, the
kernels' routes follow policy rather than the shortest delay (ISP B's preferred private
link to the cloud), and measured RTTs match the RTTs those routes imply. No FRR daemon is
left afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cdnlab.measure.fidelity import measure_rtt
from cdnlab.net.build import gateway_routes
from cdnlab.net.emulation import Emulation
from cdnlab.net.ledger import process_start_time
from cdnlab.net.shaping.base import run_in
from cdnlab.services.router import FRR_BASE
from cdnlab.topology import load_topology
from nodes.router.__main__ import VTYSH, peers

pytestmark = pytest.mark.root


def frr_daemons() -> set[int]:
    """PIDs of running zebra and bgpd processes (read, never signalled: a test only
    compares what exists before and after it). A zombie, killed and not yet reaped by the
    parent it was left to, runs no more."""
    found = set()
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in ("zebra", "bgpd"):
                found.add(int(comm.parent.name))
        except OSError:
            continue
    return {pid for pid in found if process_start_time(pid) is not None}


def test_topo_check_on_a_bgp_topology(nothing_left_behind: None) -> None:
    before = frr_daemons()
    done = subprocess.run([sys.executable, "-m", "cdnlab.cli", "topo", "check", "two_isp_bgp",
                           "--no-goodput", "--json"], capture_output=True, text=True,
                          check=False, timeout=600)
    document = json.loads(done.stdout)
    data = document["data"]
    assert done.returncode == 0 and document["ok"], done.stderr[-3000:]
    bgp = data["bgp"]
    assert bgp["asns"] == {"isp_a": 64510, "isp_b": 64520, "cloud": 64500}
    assert bgp["sessions"] == 4  # three members on the IXP fabric, and the private link
    assert 0 < bgp["convergence_s"] < 60, bgp
    assert "converged in" in done.stderr
    assert data["unreachable"] == [] and data["route_differences"] == []

    # the routes are BGP's: ISP B reaches the cloud over its preferred private link (32 ms
    # each way) where the shortest delay would go through the IXP (6 + 15)
    expected = {(s["src"], s["dst"]): s["expected_ms"] for s in data["rtt"]}
    assert expected[("b1", "edge_c_1")] == pytest.approx(70.0, abs=0.5), expected
    assert expected[("a1", "edge_c_1")] == pytest.approx(44.0, abs=0.5), expected
    assert expected[("b1", "edge_x_1")] == pytest.approx(17.0, abs=0.5), expected
    # and the network agrees: every measured RTT within the usual bounds
    assert data["summary"]["ok"], [s for s in data["rtt"] if not s["ok"]]
    assert not list(FRR_BASE.glob("*")), "no FRR directory outlives the run"
    assert frr_daemons() <= before, "no FRR daemon outlives the check"


def bgp_paths(work: Path, prefix: str) -> list[dict[str, Any]]:
    """bgpd's paths to `prefix`, as `show bgp ipv4 unicast PREFIX json` gives them."""
    done = subprocess.run([VTYSH, "--vty_socket", str(work), "-c",
                           f"show bgp ipv4 unicast {prefix} json"],
                          capture_output=True, text=True, check=True, timeout=10)
    return list(json.loads(done.stdout).get("paths") or [])


def test_an_ixp_route_server_carries_the_isps_peering(nothing_left_behind: None) -> None:
    """ixp_rs_bgp: ISP A and ISP B peer through the IXP's route server (RFC 7947), which
    passes each one's routes with the AS path and next hop untouched, so their traffic
    still goes member to member; the cloud, their transit there, keeps bilateral
    sessions; routes and RTTs are two_isp_bgp's."""
    before = frr_daemons()
    with Emulation(load_topology("ixp_rs_bgp")) as emu:
        assert emu.bgp is not None
        described = emu.bgp.describe()
        assert described["route_servers"] == {
            "ixp_rs": {"asn": 64700, "clients": ["isp_a", "isp_b"]}}
        assert described["sessions"] == 5  # two with the route server, three bilateral

        def fabric(node: str) -> str:
            link = emu.topology.link(node, "ixp")
            address = emu.plan.interface(node, link.index).address
            assert address is not None
            return str(address.ip)

        server = emu.bgp.services["ixp_rs"]
        assert {a: p["state"] for a, p in peers(server.work).items()} == {
            fabric("isp_a"): "Established", fabric("isp_b"): "Established"}
        # ISP A's best path to ISP B's viewers: learned from the route server, AS path
        # ISP B's alone, next hop ISP B on the fabric; the kernel holds that gateway
        access_b = emu.topology.link("acc_b", "isp_b").index
        subnet = next(str(s.subnet) for s in emu.plan.segments if access_b in s.links)
        (best,) = [p for p in bgp_paths(emu.bgp.services["isp_a"].work, subnet)
                   if (p.get("bestpath") or {}).get("overall")]
        assert best["aspath"]["string"] == "64520", best
        assert best["nexthops"][0]["ip"] == fabric("isp_b"), best
        assert best["peer"]["peerId"] == fabric("ixp_rs"), best
        assert (subnet, fabric("isp_b")) in gateway_routes(
            run_in(emu.node("isp_a"), "ip -4 -o route show proto bgp"))
        expected = {(src, dst): emu.paths.expected_rtt_ms(dst, src)
                    for src, dst in (("b1", "edge_c_1"), ("a1", "edge_c_1"), ("a1", "b1"))}
        assert expected == pytest.approx({("b1", "edge_c_1"): 70.0, ("a1", "edge_c_1"): 44.0,
                                          ("a1", "b1"): 28.0}, abs=0.5)
        (sample,) = measure_rtt(emu, [("a1", "b1")])
        assert sample.min_ms == pytest.approx(28.0, rel=0.05), sample
    assert not list(FRR_BASE.glob("*")), "no FRR directory outlives the run"
    assert frr_daemons() <= before, "no FRR daemon outlives the run"
