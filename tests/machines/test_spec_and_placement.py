"""A split run's machines and placement: `--cluster` and `cluster:` read with clear errors;
the placement keeps links on one machine, balances, prefers crossing long links, keeps
pins, and is the same every time."""

from __future__ import annotations

from typing import Any

import pytest

from cdnlab.errors import SpecError
from cdnlab.machines import placement as placement_module
from cdnlab.machines.placement import place
from cdnlab.machines.spec import HEAD, MachineSet, parse_machines, parse_section
from cdnlab.scenario.spec import SCENARIOS_DIR, parse_scenario, resolve_scenario
from cdnlab.topology import load_topology
from cdnlab.topology.spec import parse_topology, read_yaml

NODES = {"c1", "isp1", "edge1", "edge1_1", "cloud", "origin", "dns"}


def section_error(data: Any) -> str:
    with pytest.raises(SpecError) as caught:
        parse_section(data, "t.yaml", NODES)
    return str(caught.value)


def test_command_line_machines() -> None:
    chosen = parse_machines("10.0.9.2, node-b.lab ,localhost")
    assert chosen.machines == [HEAD, "10.0.9.2", "node-b.lab"]
    assert parse_machines("lab@10.0.9.2,lab@10.0.9.3").user == "lab"
    for bad, said in (("", "no machine named"), ("10.0.9.2,10.0.9.2", "named twice"),
                      ("a@10.0.9.2,b@10.0.9.3", "different ssh users"),
                      ("localhost", "names no machine besides this one"),
                      ("not a host!", "not a machine address")):
        with pytest.raises(SpecError, match=said):
            parse_machines(bad)


def test_cluster_section_errors_name_the_fix() -> None:
    assert "known keys: machines, user, place" in section_error({"machine": ["a"]})
    assert "must list at least one other machine" in section_error({"machines": []})
    assert "did you mean 'origin'?" in section_error({"machines": ["a"],
                                                     "place": {"origen": "a"}})
    assert "is not one of the run's" in section_error({"machines": ["a"],
                                                      "place": {"origin": "b"}})
    parsed = parse_section({"machines": "a,b", "user": "lab",
                            "place": {"origin": "b", "dns": "127.0.0.1"}}, "t.yaml", NODES)
    assert parsed == MachineSet(("a", "b"), "lab")
    assert parsed.place == {"origin": "b", "dns": HEAD}


def test_command_line_over_a_files_section() -> None:
    files = MachineSet(("a", "b"), "lab", {"origin": "b", "dns": "a"})
    chosen = parse_machines("a").over(files)
    assert chosen.machines == [HEAD, "a"] and chosen.user == "lab"
    assert chosen.place == {"dns": "a"}  # the pin to a machine not in the run is dropped


def test_topology_and_scenario_sections() -> None:
    spec = {"name": "t", "nodes": {"c1": "client", "r1": "isp", "o": "origin"},
            "links": [{"a": "c1", "b": "r1"}, {"a": "r1", "b": "o"}],
            "cluster": {"machines": ["10.0.9.2"], "place": {"o": "10.0.9.2"}}}
    topology = parse_topology(spec, "t.yaml")
    assert topology.machines.machines == [HEAD, "10.0.9.2"]
    assert topology.machines.place == {"o": "10.0.9.2"}
    assert load_topology("minimal").machines is None
    data = read_yaml(resolve_scenario("quick_pull")) | {"cluster": {"machines": ["10.0.9.3"]}}
    scenario = parse_scenario(data, "quick_pull.yaml", SCENARIOS_DIR)
    assert scenario.topology.machines.machines == [HEAD, "10.0.9.3"]


def test_minimal_splits_at_its_transit_link() -> None:
    found = place(load_topology("minimal"), [HEAD, "m2"])
    assert found.crossing == ("isp1--cloud",)
    assert set(found.nodes_on(HEAD)) == {"c1", "isp1", "edge1", "edge1_1"}
    assert found == place(load_topology("minimal"), [HEAD, "m2"])  # deterministic


@pytest.mark.parametrize("name", ["two_isp_ixp", "isp_mesh", "isp_resolvers"])
@pytest.mark.parametrize("machines", [2, 3])
def test_placements_are_balanced_and_name_every_crossing(name: str, machines: int) -> None:
    topology = load_topology(name)
    servers = [HEAD, *(f"m{i}" for i in range(2, machines + 1))]
    found = place(topology, servers)
    loads = [len(found.nodes_on(m)) for m in servers]
    n = len(topology.nodes)
    assert min(loads) >= 1 and max(loads) <= -(-n // machines) + max(1, n // (4 * machines))
    crossing = {lk.name for lk in topology.links
                if found.machine_of[lk.a] != found.machine_of[lk.b]}
    assert crossing == set(found.crossing)
    assert len(crossing) < len(topology.links) // 2


def ring() -> Any:
    """Four routers in a ring (a client and the origin on two of them): two balanced
    cuts of two links each, one through the long links."""
    return parse_topology({
        "name": "ring",
        "nodes": {"c1": "client", "o": "origin", "r1": "isp", "r2": "isp", "r3": "isp",
                  "r4": "isp"},
        "links": [{"a": "c1", "b": "r1"}, {"a": "o", "b": "r3"},
                  {"a": "r1", "b": "r2", "delay": 30}, {"a": "r2", "b": "r3", "delay": 1},
                  {"a": "r3", "b": "r4", "delay": 30}, {"a": "r4", "b": "r1", "delay": 1}]},
        "ring.yaml")


def test_equal_cuts_cross_the_longest_links() -> None:
    found = place(ring(), [HEAD, "m2"])
    assert sorted(found.crossing) == ["r1--r2", "r3--r4"]


def test_without_the_delay_preference_the_short_links_would_be_cut(monkeypatch: Any) -> None:
    """The check above can fail: with the preference off, the first start wins a tie."""
    monkeypatch.setattr(placement_module, "_DELAY_DISCOUNT", 0.0)
    assert sorted(place(ring(), [HEAD, "m2"]).crossing) == ["r2--r3", "r4--r1"]


def test_pins_hold_and_impossible_placements_are_refused() -> None:
    topology = load_topology("minimal")
    found = place(topology, [HEAD, "m2"], {"origin": HEAD, "c1": "m2"})
    assert found.machine_of["origin"] == HEAD and found.machine_of["c1"] == "m2"
    with pytest.raises(ValueError, match="name fewer machines"):
        place(topology, [HEAD, *(f"m{i}" for i in range(8))])
    with pytest.raises(ValueError, match="pin fewer nodes"):
        place(topology, [HEAD, "m2"], {n: HEAD for n in topology.nodes})
