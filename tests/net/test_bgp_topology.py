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

import pytest

from cdnlab.net.ledger import process_start_time
from cdnlab.services.router import FRR_BASE

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
