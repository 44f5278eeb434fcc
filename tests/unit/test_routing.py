"""Routes follow the lowest delay, never cross hosts, and imply the documented RTTs."""

from __future__ import annotations

import pytest

from cdnlab.topology import load_topology
from cdnlab.topology.addressing import plan_addresses
from cdnlab.topology.routing import Routing
from cdnlab.topology.spec import HOST, parse_topology

# The matrix documented at the top of topologies/two_isp_ixp.yaml.
TWO_ISP_IXP_RTT = {
    "a1": {"edge_a_1": 6, "edge_x_1": 13, "edge_c_1": 44, "origin": 44},
    "b1": {"edge_a_1": 26, "edge_x_1": 17, "edge_c_1": 48, "origin": 48},
}


def routing_of(name: str) -> Routing:
    topology = load_topology(name)
    return Routing(topology, plan_addresses(topology))


@pytest.mark.parametrize(("client", "server"), [(c, s) for c, row in TWO_ISP_IXP_RTT.items()
                                                for s in row])
def test_two_isp_ixp_rtts_match_the_documented_matrix(client: str, server: str) -> None:
    assert routing_of("two_isp_ixp").expected_rtt_ms(client, server) == pytest.approx(
        TWO_ISP_IXP_RTT[client][server])


def test_isp_b_reaches_isp_a_cluster_across_the_ixp() -> None:
    routing = routing_of("two_isp_ixp")
    crossed = [h.link.name for h in routing.path("b1", "edge_a_1")]
    assert crossed == ["b1--acc_b", "acc_b--isp_b", "isp_b--ixp", "isp_a--ixp",
                       "isp_a--edge_a", "edge_a_1--edge_a"]


@pytest.mark.parametrize("name", ["minimal", "two_isp_ixp", "isp_mesh"])
def test_every_host_has_a_path_to_every_other_that_crosses_no_host(name: str) -> None:
    routing = routing_of(name)
    topology = routing.topology
    hosts = topology.hosts()
    for src in hosts:
        for dst in hosts:
            if src == dst:
                continue
            path = routing.path(src, dst)
            assert path[0].src == src and path[-1].dst == dst
            inner = [h.dst for h in path[:-1]]
            assert not any(topology.kind(n) == HOST for n in inner)


def test_lower_delay_path_wins_over_fewer_hops() -> None:
    spec = {"nodes": {"c": "client", "r1": "router", "r2": "router", "r3": "router",
                      "o": "origin"},
            "links": [["c", "r1"], {"a": "r1", "b": "r3", "delay": 50},
                      {"a": "r1", "b": "r2", "delay": 5}, {"a": "r2", "b": "r3", "delay": 5},
                      ["r3", "o"]]}
    topology = parse_topology(spec, "t")
    routing = Routing(topology, plan_addresses(topology))
    assert routing.expected_rtt_ms("c", "o") == 20
    assert routing.routes["r1"][routing.plan.segment_of("o")[0]].via_node == "r2"


def test_asymmetric_delays_add_per_direction() -> None:
    spec = {"nodes": {"c": "client", "r": "router", "o": "origin"},
            "links": [{"a": "c", "b": "r", "delay": 5, "b_to_a": {"delay": 15, "rate": 50}},
                      {"a": "r", "b": "o", "rate": 10}]}
    topology = parse_topology(spec, "t")
    routing = Routing(topology, plan_addresses(topology))
    assert routing.expected_rtt_ms("c", "o") == 20
    assert routing.bottleneck_mbps("o", "c") == 10
    assert routing.bottleneck_mbps("c", "o") == 10


def test_path_loss_compounds() -> None:
    spec = {"nodes": {"c": "client", "r": "router", "o": "origin"},
            "links": [{"a": "c", "b": "r", "loss": 10}, {"a": "r", "b": "o", "loss": 10}]}
    topology = parse_topology(spec, "t")
    routing = Routing(topology, plan_addresses(topology))
    assert routing.path_loss_pct("c", "o") == pytest.approx(19.0)
