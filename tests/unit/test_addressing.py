"""The address plan is deterministic, clash-free and fits Linux's interface names."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from cdnlab.errors import SpecError
from cdnlab.topology import load_topology
from cdnlab.topology.addressing import plan_addresses
from cdnlab.topology.spec import HOST, ROUTER, parse_topology


@pytest.mark.parametrize("name", ["minimal", "two_isp_ixp", "isp_mesh"])
def test_plan_is_deterministic_and_unique(name: str) -> None:
    topology = load_topology(name)
    first, second = plan_addresses(topology), plan_addresses(load_topology(name))
    assert first.interfaces == second.interfaces
    addresses = [i.address.ip for i in first.interfaces.values() if i.address]
    assert len(addresses) == len(set(addresses))
    subnets = [s.subnet for s in first.segments]
    assert all(not a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1:])
    assert all(len(i.name) <= 15 for i in first.interfaces.values())
    for iface in first.interfaces.values():
        kind = topology.kind(iface.node)
        assert (iface.address is not None) == (kind in (HOST, ROUTER))


def test_shared_lan_is_one_segment_with_routers_first() -> None:
    topology = load_topology("two_isp_ixp")
    plan = plan_addresses(topology)
    lan = plan.segments[plan.segment_of("a1")[0]]
    members = [n for n, _ in lan.members]
    assert sorted(members) == ["a1", "a2", "a3", "isp_a"]
    assert plan.interface("isp_a", topology.link("acc_a", "isp_a").index).address == \
        ipaddress.IPv4Interface(f"{next(lan.subnet.hosts())}/24")
    ixp = plan.segments[plan.segment_of("edge_x_1")[0]]
    assert {n for n, _ in ixp.members} == {"isp_a", "isp_b", "cloud", "edge_x_1", "edge_x_2"}


def test_owner_finds_the_node_of_an_address() -> None:
    plan = plan_addresses(load_topology("minimal"))
    assert plan.owner(plan.address("origin")) == "origin"
    assert plan.owner("192.0.2.1") is None


def _two_segment_spec(subnet_a: str, subnet_b: str) -> dict[str, Any]:
    return {"nodes": {"c1": "client", "r1": "isp", "o": "origin"},
            "links": [{"a": "c1", "b": "r1", "subnet": subnet_a},
                      {"a": "r1", "b": "o", "subnet": subnet_b}]}


def test_fixed_subnets_are_used_and_autos_avoid_them() -> None:
    topology = parse_topology(_two_segment_spec("10.0.1.0/24", "10.9.0.0/30"), "t")
    plan = plan_addresses(topology)
    assert str(plan.address("c1")) == "10.0.1.2" and str(plan.address("o")) == "10.9.0.2"


def test_overlapping_fixed_subnets_clash() -> None:
    topology = parse_topology(_two_segment_spec("10.5.0.0/16", "10.5.1.0/24"), "t")
    with pytest.raises(SpecError, match=r"address clash: 10\.5\.1\.0/24 overlaps 10\.5\.0\.0/16"):
        plan_addresses(topology)


def test_too_small_subnet_clashes() -> None:
    spec = {"nodes": {"c1": "client", "c2": "client", "c3": "client", "s": "switch",
                      "r1": "isp", "o": "origin"},
            "links": [{"a": "c1", "b": "s", "subnet": "10.7.0.0/30"}, ["c2", "s"], ["c3", "s"],
                      ["s", "r1"], ["r1", "o"]]}
    with pytest.raises(SpecError, match=r"4 interfaces do not fit in 10\.7\.0\.0/30"):
        plan_addresses(parse_topology(spec, "t"))
