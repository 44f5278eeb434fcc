"""Anycast over real BGP (`anycast:` of a `routing: bgp` topology) on anycast_transit: the
catchments are the ones BGP policy predicts (ISP B's viewers go to the far edge_f by
AS-path length, not to the nearer edge_a), real requests to the anycast address land
there, and withdrawing a cluster's announcement moves its viewers with no DNS involved;
announcing it again brings them back. No FRR daemon is left afterwards."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cdnlab.measure.fidelity import measure_anycast_rtt, measure_rtt
from cdnlab.net.emulation import Emulation
from cdnlab.net.shaping.base import run_in
from cdnlab.services.router import FRR_BASE
from cdnlab.topology import load_topology
from tests.net.test_bgp_topology import frr_daemons

pytestmark = pytest.mark.root

PORT = 8080
# what BGP policy predicts (the topology's comment): ISP A's viewers reach the cache in
# ISP A; the transit prefers edge_f's one-AS path over ISP A's two, so ISP B's reach edge_f
POLICY = {"a1": "edge_a", "a2": "edge_a", "b1": "edge_f", "b2": "edge_f"}


def answering_servers(emu: Emulation) -> None:
    """On every anycast server, an HTTP server whose /name is the server's own name."""
    for cluster in ("edge_a", "edge_f"):
        for server in emu.topology.clusters()[cluster]:
            folder = Path(emu.run_dir) / "names" / server
            folder.mkdir(parents=True)
            (folder / "name").write_text(server)
            process = emu.node(server).popen(
                ["python3", "-m", "http.server", str(PORT), "--bind", "0.0.0.0",
                 "--directory", str(folder)], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            emu.ledger.add_process(process.pid, f"name server on {server}")  # type: ignore[union-attr]


def served_by(emu: Emulation, client: str, address: str) -> str:
    """The cluster whose server answered `client` at `address`."""
    name = run_in(emu.node(client), f"curl -s --retry 10 --retry-delay 1 "
                                    f"--retry-connrefused --max-time 3 "
                                    f"http://{address}:{PORT}/name").strip()
    return name.rsplit("_", 1)[0]


def test_catchments_follow_policy_and_move_on_withdrawal(nothing_left_behind: None) -> None:
    before = frr_daemons()
    with Emulation(load_topology("anycast_transit")) as emu:
        assert emu.bgp is not None and emu.topology.anycast is not None
        address = emu.topology.anycast.address
        described = emu.bgp.describe()["anycast"]
        assert described["catchments"] == POLICY, described
        answering_servers(emu)
        assert {c: served_by(emu, c, address) for c in POLICY} == POLICY
        # BGP, not RTT: b1's anycast RTT is edge_f's (74 ms), far over edge_a's (26 ms),
        # and every client's anycast RTT is its catchment's path's: the least of its pings
        # (the mean, which the bring-up check judges, also carries the wake-ups of a busy
        # host; `topo check anycast_transit` judges it on an idle one)
        samples = measure_anycast_rtt(emu)
        (unicast,) = measure_rtt(emu, [("b1", "edge_a_1")])
        anycast_b1 = next(s for s in samples if s.src == "b1")
        assert anycast_b1.min_ms > unicast.min_ms + 30, (anycast_b1, unicast)
        assert {s.src: s.dst for s in samples} == {c: f"anycast:{k}" for c, k in POLICY.items()}
        assert all(s.received == s.sent for s in samples), samples
        assert [s.min_ms for s in samples] == pytest.approx([s.expected_ms for s in samples],
                                                            rel=0.05), samples
        assert [s.expected_ms for s in samples] == pytest.approx([6.0, 6.0, 74.0, 74.0])

        # edge_f withdraws: ISP B's viewers now reach edge_a through the transit and ISP A
        change = emu.bgp.withdraw("edge_f")
        assert 0 < change.convergence_s < 30
        moved = dict.fromkeys(POLICY, "edge_a")
        assert emu.bgp.catchments() == change.catchments == moved
        # only the transit's gateway for the prefix changed; ISP B still sends it there
        assert change.routers_changed == ("tr",) and not change.unreachable
        assert {c: served_by(emu, c, address) for c in POLICY} == moved

        # and back when it announces again
        emu.bgp.announce("edge_f")
        assert emu.bgp.catchments() == POLICY
        assert served_by(emu, "b2", address) == "edge_f"

        # the CDN prepends its AS three times on edge_f's announcement: the transit's path
        # through ISP A (two ASes) is now the shorter, and ISP B's viewers reach edge_a
        change = emu.bgp.set_policy("edge_f", None, {"prepend": 3})
        assert change.catchments == moved and change.routers_changed == ("tr",)
        assert served_by(emu, "b1", address) == "edge_a"
        assert emu.bgp.set_policy("edge_f", "tr", {"prepend": None}).catchments == POLICY
        # the transit's own policy does as much: a higher preference for ISP A's routes
        assert emu.bgp.set_policy("tr", "isp_a", {"local_pref": 250}).catchments == moved
        with pytest.raises(KeyError, match="isp_b is not a BGP neighbour of edge_f"):
            emu.bgp.set_policy("edge_f", "isp_b", {"prepend": 1})
    assert not list(FRR_BASE.glob("*")), "no FRR directory outlives the run"
    assert frr_daemons() <= before, "no FRR daemon outlives the run"
