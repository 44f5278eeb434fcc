"""Every shipped topology comes up on a real Mininet network, every host reaches every
other, RTTs and goodput match the spec within the stated bounds, and teardown leaves nothing."""

from __future__ import annotations

import pytest

from cdnlab.measure import fidelity
from cdnlab.measure.reachability import unreachable
from cdnlab.net.emulation import Emulation
from cdnlab.topology import load_topology
from tests.net.conftest import alive, recorded_processes

pytestmark = pytest.mark.root


@pytest.mark.parametrize("name", ["minimal", "two_isp_ixp", "isp_mesh"])
def test_topology_up_connected_faithful_and_clean(name: str, nothing_left_behind: None) -> None:
    topology = load_topology(name)
    with Emulation(topology) as emu:
        processes = recorded_processes(emu)
        assert unreachable(emu) == []
        report = fidelity.check(emu, goodput_samples=1 if name == "isp_mesh" else 2)
        # a busy moment on a shared 2-core machine spoils what it meets: that, once more
        fidelity.rtt_misses_remeasured(emu, report)
        report.rate = fidelity.rate_remeasured_on_miss(emu, report.rate)
        assert all(s.ok for s in report.rtt), report.table()
        assert report.rtt and all(s.received == s.sent for s in report.rtt)
        assert report.rate and all(r.ok for r in report.rate), report.table()
        for sample in report.rtt:
            assert abs(sample.error_ms) <= max(1.0, 0.05 * sample.expected_ms)
        for rate in report.rate:
            assert abs(rate.measured_mbps - rate.rate_mbps) <= 0.10 * rate.rate_mbps
    assert alive(processes) == []


def test_clients_see_the_clusters_in_the_documented_rtt_order(nothing_left_behind: None) -> None:
    """ISP A's clients are nearest edge_a, ISP B's nearest edge_x (the IXP), as measured."""
    with Emulation(load_topology("two_isp_ixp")) as emu:
        samples = fidelity.measure_rtt(emu, [(c, s) for c in ("a1", "b1")
                                             for s in ("edge_a_1", "edge_x_1", "edge_c_1")])
    measured = {(s.src, s.dst): s.measured_ms for s in samples}
    assert min(("edge_a_1", "edge_x_1", "edge_c_1"), key=lambda s: measured[("a1", s)]) == \
        "edge_a_1"
    assert min(("edge_a_1", "edge_x_1", "edge_c_1"), key=lambda s: measured[("b1", s)]) == \
        "edge_x_1"


@pytest.mark.parametrize(("isps", "ixps", "clusters"), [(5, 4, 5), (8, 5, 4)])
def test_isp_mesh_plan_against_the_network_with_multihomed_isps(
        isps: int, ixps: int, clusters: int, nothing_left_behind: None) -> None:
    """Every ISP sits on two IXP fabrics; for some (isp4 of 5×4, isp5 of 8×5) the shorter
    way to the cloud is the second fabric. The routes the kernels hold are the planned ones,
    and every client's RTT to the origin and to every cluster is what a walk of those routes
    expects. The walk that took the first fabric a search met expected 50 ms for c4_1 →
    origin (5×4) and 54 ms for c5_1 (8×5) where these networks give 46 and 48: beyond the
    tolerance of 2.3 and 2.4 ms."""
    topology = load_topology("isp_mesh", {"isps": isps, "ixps": ixps, "clusters": clusters})
    with Emulation(topology) as emu:
        assert emu.route_differences == []
        assert sum(len(r) for r in emu.routing.routes.values()) > 0, "routes were read back"
        targets = ["origin", *[s for servers in topology.clusters().values() for s in servers]]
        pairs = [(f"c{i}_1", t) for i in range(1, isps + 1) for t in targets]
        samples = fidelity.rtt_remeasured_on_miss(emu, fidelity.measure_rtt(emu, pairs, 10))
        assert all(s.ok for s in samples), [
            (s.src, s.dst, s.expected_ms, s.measured_ms) for s in samples if not s.ok]
