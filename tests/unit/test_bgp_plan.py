"""BGP planning for `routing: bgp` topologies (`cdnlab.topology.bgp`): ASes, sessions per
segment, relationships and their mirror, the FRR policy they render, and the spec's
refusals."""

from __future__ import annotations

from typing import Any

import pytest

from cdnlab.errors import SpecError
from cdnlab.topology import load_topology
from cdnlab.topology.addressing import plan_addresses
from cdnlab.topology.bgp import bgp_routers, router_asns
from cdnlab.topology.spec import parse_topology
from nodes.router.config import NOT_FOR_PEERS


def sessions(topology: Any) -> dict[str, dict[tuple[str, int], tuple[str | None, int | None]]]:
    """router → (neighbour address, its AS) → (relationship, local preference)."""
    return {name: {(n.address, n.asn): (n.relationship, n.preference) for n in r.neighbours}
            for name, r in bgp_routers(topology, plan_addresses(topology)).items()}


def line(a: str, b: str, **extra: Any) -> dict[str, Any]:
    return {"a": a, "b": b, "delay": 1, **extra}


def small(nodes: dict[str, Any], links: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "t", "routing": "bgp",
            "nodes": {"c1": "client", "c2": "client", **nodes},
            "links": [line("c1", "r1"), line("c2", "r3"), *links]}


def test_ases_default_to_private_numbers_nobody_named() -> None:
    topology = parse_topology(small({"r1": "isp", "r2": {"role": "isp", "asn": 65002},
                                     "r3": "transit"},
                                    [line("r1", "r2"), line("r2", "r3")]), "t")
    assert topology.routing == "bgp"
    assert router_asns(topology) == {"r1": 65001, "r2": 65002, "r3": 65003}


def test_relationships_mirror_and_set_preference_and_export() -> None:
    topology = load_topology("two_isp_bgp")
    plan = plan_addresses(topology)
    found = sessions(topology)
    ixp = {n: str(plan.interface(n, topology.link(n, "ixp").index).address.ip)  # type: ignore[union-attr]
           for n in ("isp_a", "isp_b", "cloud")}
    private = {n: str(plan.interface(n, topology.link("isp_b", "cloud").index).address.ip)  # type: ignore[union-attr]
               for n in ("isp_b", "cloud")}
    assert found["isp_a"] == {(ixp["isp_b"], 64520): ("peer", 150),
                              (ixp["cloud"], 64500): ("provider", 100)}
    # isp_b names only the cloud; isp_a's "peer" is mirrored, the private link's
    # preference overrides the relationship's
    assert found["isp_b"] == {(ixp["isp_a"], 64510): ("peer", 150),
                              (ixp["cloud"], 64500): ("provider", 100),
                              (private["cloud"], 64500): ("provider", 120)}
    assert found["cloud"] == {(ixp["isp_a"], 64510): ("customer", 200),
                              (ixp["isp_b"], 64520): ("customer", 200),
                              (private["isp_b"], 64520): ("customer", 220)}
    config = bgp_routers(topology, plan)["isp_a"].render()
    # routes from a peer or provider never go to a peer or provider; a customer gets all
    assert f"match community {NOT_FOR_PEERS}" in config
    assert "set community 65000:150" in config and "set community 65000:100" in config
    cloud = bgp_routers(topology, plan)["cloud"].render()
    assert "deny 5" not in cloud and "set community 65000:200" in cloud


def test_routers_of_one_as_reflect_to_each_other() -> None:
    topology = parse_topology(small({"r1": {"role": "isp", "asn": 65010},
                                     "r2": {"role": "isp", "asn": 65010}, "r3": "transit"},
                                    [line("r1", "r2"), line("r2", "r3")]), "t")
    routers = bgp_routers(topology, plan_addresses(topology))
    internal = [n for n in routers["r2"].neighbours if n.asn == 65010]
    external = [n for n in routers["r2"].neighbours if n.asn != 65010]
    assert [n.reflect for n in internal] == [True] and [n.reflect for n in external] == [False]
    config = routers["r2"].render()
    address = internal[0].address
    assert f"neighbor {address} route-reflector-client" in config
    assert f"neighbor {address} next-hop-self force" in config
    # another AS's communities are dropped on the way in, ours kept inside the AS
    assert config.count("set community none") == 1


@pytest.mark.parametrize(("change", "says"), [
    ({"routing": "ospf"}, "unknown routing 'ospf'"),
    ({"nodes": {"c1": {"role": "client", "asn": 65001}}}, "not a router and has no AS"),
    ({"nodes": {"r1": {"role": "isp", "asn": 0}}}, "AS number is a whole number"),
    ({"nodes": {"r1": {"role": "isp", "bgp": {"r3": {"relationship": "friend"}}}}},
     "unknown relationship 'friend'"),
    ({"nodes": {"r1": {"role": "isp", "bgp": {"r3": {"relationship": "customer"}}},
                "r3": {"role": "transit", "bgp": {"r1": {"relationship": "customer"}}}}},
     "r1 calls r3 its customer but r3 calls r1 its customer"),
    ({"nodes": {"r1": {"role": "isp", "bgp": {"c1": {"local_pref": 200}}}}},
     "c1 is a client, not a router"),
    ({"links": [line("r1", "r3", bgp={"c2": {"med": 5}})]}, "'c2' is not an end"),
    ({"links": [line("r1", "r3", bgp={"r1": {"prepend": 11}})]}, "≤ 10"),
])
def test_bad_bgp_settings_are_refused_by_name(change: dict[str, Any], says: str) -> None:
    spec = small({"r1": "isp", "r3": "transit"}, [line("r1", "r3")])
    spec["links"] = spec["links"][:2] + change.pop("links", [line("r1", "r3")])
    for node, value in change.pop("nodes", {}).items():
        spec["nodes"][node] = value
    spec |= change
    with pytest.raises(SpecError, match=says):
        parse_topology(spec, "t")


def test_anycast_clusters_announce_from_a_speaker_on_their_first_server() -> None:
    topology = load_topology("anycast_transit")
    assert topology.anycast is not None and topology.anycast.address == "198.51.100.1"
    routers = bgp_routers(topology, plan_addresses(topology))
    speaker = routers["edge_a_1"]
    assert speaker.asn == 64999 and speaker.networks == ("198.51.100.0/24",)
    config = speaker.render()
    # the speaker sends its prefix and nothing it hears (no transit between ISPs)
    assert "ip prefix-list OWN seq 5 permit 198.51.100.0/24" in config
    assert "match ip address prefix-list OWN" in config
    found = sessions(topology)
    assert found["isp_a"][(speaker.router_id, 64999)] == ("customer", 200)
    assert found["tr"][(routers["edge_f_1"].router_id, 64999)] == ("customer", 200)
    assert all(asn != 64999 for asn in (a for _addr, a in found["isp_b"]))


@pytest.mark.parametrize(("anycast", "routing", "says"), [
    ({"clusters": ["edge_a"]}, "static", "add `routing: bgp`"),
    ({"clusters": ["edge_z"]}, "bgp", "'edge_z' is not an edge cluster"),
    ({"asn": 65001}, "bgp", "AS 65001 is a router's"),
    ({"prefix": "10.9.0.0/24"}, "bgp", "overlaps the address plan"),
])
def test_bad_anycast_settings_are_refused_by_name(anycast: dict[str, Any], routing: str,
                                                  says: str) -> None:
    spec = small({"r1": {"role": "isp", "asn": 65001}, "r3": "transit",
                  "edge_a": {"role": "edge", "servers": 1}},
                 [line("r1", "r3"), line("edge_a", "r1")])
    spec |= {"routing": routing, "anycast": anycast}
    with pytest.raises(SpecError, match=says):
        parse_topology(spec, "t")


@pytest.mark.parametrize("anycast", [None, {"clusters": ["edge_b"]}])
def test_a_policy_toward_a_cluster_that_announces_nothing_is_refused(
        anycast: dict[str, Any] | None) -> None:
    spec = small({"r1": {"role": "isp", "bgp": {"edge_a": {"relationship": "customer"}}},
                  "r3": "transit", "edge_a": {"role": "edge", "servers": 1},
                  "edge_b": {"role": "edge", "servers": 1}},
                 [line("r1", "r3"), line("edge_a", "r1"), line("edge_b", "r3")])
    spec |= {"routing": "bgp", "anycast": anycast}
    with pytest.raises(SpecError, match=r"nodes.r1.bgp.edge_a.*edge_a announces no anycast "
                                        r"prefix.*add edge_a to the topology's anycast"):
        parse_topology(spec, "t")
    spec["anycast"] = {"clusters": ["edge_a", "edge_b"]}
    assert parse_topology(spec, "t").anycast is not None


def test_members_that_only_peer_do_so_through_the_ixp_route_server() -> None:
    topology = load_topology("ixp_rs_bgp")
    plan = plan_addresses(topology)
    fabric = {n: str(plan.interface(n, topology.link(n, "ixp").index).address.ip)  # type: ignore[union-attr]
              for n in ("isp_a", "isp_b", "cloud", "ixp_rs")}
    found = sessions(topology)
    # the ISPs' peering goes through the route server; their transit stays bilateral
    assert found["isp_a"] == {(fabric["ixp_rs"], 64700): ("peer", 150),
                              (fabric["cloud"], 64500): ("provider", 100)}
    assert (fabric["isp_b"], 64520) not in found["isp_a"]
    assert set(found["cloud"]) >= {(fabric["isp_a"], 64510), (fabric["isp_b"], 64520)}
    server = bgp_routers(topology, plan)["ixp_rs"]
    assert server.asn == 64700 and {(n.address, n.route_server_client)
                                    for n in server.neighbours} == \
        {(fabric["isp_a"], True), (fabric["isp_b"], True)}
    config = server.render()
    # transparent (RFC 7947 §2.2): AS path and next hop untouched, communities kept
    assert f"neighbor {fabric['isp_a']} route-server-client" in config
    assert "set community none" not in config and "redistribute" not in config


def test_a_pair_with_a_policy_of_its_own_keeps_its_bilateral_session() -> None:
    spec = small({"r1": {"role": "isp", "bgp": {"r2": {"relationship": "peer",
                                                         "local_pref": 170}}},
                  "r2": "isp", "r3": "isp", "x": {"role": "ixp", "route_server": {"asn": 65100}}},
                 [line("r1", "x"), line("r2", "x"), line("r3", "x")])
    topology = parse_topology(spec, "t")
    plan = plan_addresses(topology)
    routers = bgp_routers(topology, plan)
    fabric = {n: str(plan.interface(n, topology.link(n, "x").index).address.ip)  # type: ignore[union-attr]
              for n in ("r1", "r2", "r3", "x_rs")}
    assert {n.address for n in routers["r1"].neighbours} == {fabric["r2"], fabric["x_rs"]}
    assert {n.address for n in routers["x_rs"].neighbours} == \
        {fabric["r1"], fabric["r2"], fabric["r3"]}
    assert routers["x_rs"].asn == 65100


@pytest.mark.parametrize(("ixp", "routing", "says"), [
    ({"role": "ixp", "route_server": True}, "static", "needs routers that speak BGP"),
    ({"role": "ixp", "route_server": "yes"}, "bgp", "must be true or a mapping"),
    ({"role": "ixp", "route_server": {"asn": 0}}, "bgp", "an AS number is a whole number"),
    ({"role": "ixp", "route_server": {"as": 65100}}, "bgp", "unknown field 'as'"),
])
def test_bad_route_servers_are_refused_by_name(ixp: dict[str, Any], routing: str,
                                               says: str) -> None:
    spec = small({"r1": "isp", "r3": "isp", "x": ixp}, [line("r1", "x"), line("r3", "x")])
    spec["routing"] = routing
    with pytest.raises(SpecError, match=says):
        parse_topology(spec, "t")
