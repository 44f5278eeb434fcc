"""Topology spec validation: every shipped topology loads; bad specs name the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cdnlab.errors import SpecError
from cdnlab.topology import load_topology
from cdnlab.topology.spec import HOST, ROUTER, SWITCH, parse_topology

SHIPPED = ["minimal", "two_isp_ixp", "isp_mesh"]


def small(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "t",
        "nodes": {"c1": "client", "r1": "isp", "o": "origin"},
        "links": [{"a": "c1", "b": "r1", "rate": 10, "delay": 5},
                  {"a": "r1", "b": "o", "delay": 1}],
    }
    spec.update(changes)
    return spec


def error_of(spec: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as caught:
        parse_topology(spec, "t.yaml")
    return str(caught.value)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_topologies_load(name: str) -> None:
    topology = load_topology(name)
    assert topology.by_role("client") and topology.by_role("origin") and topology.by_role("dns")
    assert topology.clusters()


def test_two_isp_ixp_has_three_clusters_of_two_and_six_clients() -> None:
    topology = load_topology("two_isp_ixp")
    assert {c: len(s) for c, s in topology.clusters().items()} == {
        "edge_a": 2, "edge_x": 2, "edge_c": 2}
    assert len(topology.by_role("client")) == 6


def test_roles_map_to_kinds_and_clusters_expand() -> None:
    topology = parse_topology(small(nodes={"c1": "client", "r1": "isp", "o": "origin",
                                           "e": {"role": "edge", "servers": 3}},
                                    links=[["c1", "r1"], ["r1", "o"], ["e", "r1"]]), "t")
    assert topology.kind("c1") == HOST and topology.kind("r1") == ROUTER
    assert topology.kind("e") == SWITCH
    assert topology.clusters() == {"e": ["e_1", "e_2", "e_3"]}
    assert all(topology.link(s, "e").klass == "cluster" for s in topology.clusters()["e"])


def test_asymmetric_shapes_overlay_the_common_values() -> None:
    spec = small()
    spec["links"][0] = {"a": "c1", "b": "r1", "rate": 10, "delay": 5,
                        "b_to_a": {"rate": 30, "loss": 1}}
    link = parse_topology(spec, "t").link("c1", "r1")
    assert (link.a_to_b.rate, link.a_to_b.delay, link.a_to_b.loss) == (10, 5, 0)
    assert (link.b_to_a.rate, link.b_to_a.delay, link.b_to_a.loss) == (30, 5, 1)


def test_defaults_apply_to_links() -> None:
    topology = parse_topology(small(defaults={"rate": 100, "queue": 50}), "t")
    assert topology.link("r1", "o").a_to_b.rate == 100
    assert topology.link("r1", "o").a_to_b.queue == 50
    assert topology.link("c1", "r1").a_to_b.rate == 10


@pytest.mark.parametrize(("change", "expected"), [
    ({"links": [{"a": "c1", "b": "r9"}]}, "unknown node 'r9'"),
    ({"links": [{"a": "c1", "b": "r1", "delay": -1}, {"a": "r1", "b": "o"}]}, "negative delay"),
    ({"links": [{"a": "c1", "b": "r1", "rate": 0}, {"a": "r1", "b": "o"}]}, "rate 0"),
    ({"links": [{"a": "c1", "b": "r1", "loss": 100}, {"a": "r1", "b": "o"}]}, "loss 100"),
    ({"links": [{"a": "c1", "b": "r1", "delay": "slow"}, {"a": "r1", "b": "o"}]},
     "expected a number"),
    ({"links": [{"a": "c1", "b": "r1"}, {"a": "r1", "b": "c1"}, {"a": "r1", "b": "o"}]},
     "second link"),
    ({"links": [{"a": "c1", "b": "r1"}, {"a": "r1", "b": "o"}, {"a": "o", "b": "c1"}]},
     "exactly one link"),
    ({"nodes": {"c1": "client", "r1": "isp", "o": "origin", "x": "dns"}},
     "a host (dns) must have exactly one link, has 0"),
    ({"nodes": {"c1": "client", "r1": "wizard", "o": "origin"}}, "unknown role 'wizard'"),
    ({"nodes": {"c1": "client", "r1": "isp", "o": "origin", "averyverylongname": "isp"}},
     "longer than 10"),
    ({"nodes": {"c1": "client", "r1": "isp", "o": "origin", "Bad": "isp"}}, "bad node name"),
    ({"links": [{"a": "c1", "b": "r1", "colour": "red"}, {"a": "r1", "b": "o"}]},
     "unknown field 'colour'"),
    ({"links": [{"a": "c1", "b": "r1", "class": "wormhole"}, {"a": "r1", "b": "o"}]},
     "unknown link class"),
    ({"links": []}, "links: missing or empty"),
])
def test_bad_specs_name_the_problem(change: dict[str, Any], expected: str) -> None:
    message = error_of(small(**change))
    assert expected in message
    assert message.startswith("t.yaml: ")
    assert "fix:" in message


def test_disconnected_graph_is_refused_with_the_cut_off_nodes() -> None:
    spec = small(nodes={"c1": "client", "r1": "isp", "o": "origin", "r2": "isp", "c2": "client"},
                 links=[["c1", "r1"], ["r1", "o"], ["c2", "r2"]])
    message = error_of(spec)
    assert "disconnected" in message and "r2" in message and "c2" in message


def test_cluster_server_name_clash_is_a_duplicate() -> None:
    spec = small(nodes={"c1": "client", "r1": "isp", "o": "origin", "e_1": "server",
                        "e": {"role": "edge", "servers": 1}})
    assert "duplicate name 'e_1'" in error_of(spec)


def test_switch_loop_is_refused() -> None:
    spec = small(nodes={"c1": "client", "r1": "isp", "o": "origin", "s1": "switch",
                        "s2": "switch", "s3": "switch"},
                 links=[["c1", "s1"], ["s1", "s2"], ["s2", "s3"], ["s3", "s1"], ["s1", "r1"],
                        ["r1", "o"]])
    assert "loop of switches" in error_of(spec)


def test_duplicate_yaml_key_is_a_duplicate_name(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("nodes:\n  c1: client\n  c1: isp\nlinks: []\n")
    with pytest.raises(SpecError, match=r"dup.yaml: line 3: duplicate key 'c1'"):
        load_topology(path)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("nodes:\n  c1: [client\nlinks: []\n")
    with pytest.raises(SpecError, match=r"broken.yaml: line \d+: not valid YAML"):
        load_topology(path)


def test_unknown_topology_name_lists_the_shipped_ones() -> None:
    with pytest.raises(SpecError, match="two_isp_ixp"):
        load_topology("no_such_topology")


def test_family_parameters_scale_the_network() -> None:
    topology = load_topology("isp_mesh", {"isps": 4, "ixps": 1, "clusters": 6,
                                          "clients_per_isp": 3})
    assert len(topology.by_role("client")) == 12
    assert len(topology.by_role("isp")) == 4
    assert len(topology.clusters()) == 6


def test_bad_family_parameter_is_reported() -> None:
    with pytest.raises(SpecError, match="isps must be a whole number"):
        load_topology("isp_mesh", {"isps": 0})


def test_params_for_a_plain_topology_are_refused() -> None:
    with pytest.raises(SpecError, match="no family"):
        load_topology("minimal", {"isps": 2})


def test_trace_reference_is_checked(tmp_path: Path) -> None:
    spec = small()
    spec["links"][0]["trace"] = {"file": "traces/step_down.csv", "direction": "b_to_a"}
    link = parse_topology(spec, "t", base_dir=tmp_path).link("c1", "r1")
    assert link.trace is not None and link.trace.direction == "b_to_a"
    spec["links"][0]["trace"] = {"file": "traces/missing.csv"}
    assert "cannot read trace" in error_of(spec)
