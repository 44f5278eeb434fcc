"""Scenario files without root: validation errors naming the field, overrides, the
workload plan's determinism, and the summary arithmetic."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdnlab.errors import SpecError
from cdnlab.results.summary import concurrency, jain
from cdnlab.scenario.spec import (
    SCENARIOS_DIR,
    load_scenario,
    parse_scenario,
    variant_overrides,
)
from cdnlab.scenario.workload import plan_sessions, zipf_weights

BASE: dict[str, Any] = {
    "name": "t", "topology": "two_isp_ixp",
    "workload": {"viewers": {"a1": 2, "isp_b": 3}, "segments": 4},
}


def scenario(**changes: Any) -> Any:
    return parse_scenario(BASE | changes, "t.yaml", SCENARIOS_DIR)


@pytest.mark.parametrize("path", sorted(SCENARIOS_DIR.glob("*.yaml")))
def test_every_shipped_scenario_validates(path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cdnlab.cli", "validate", str(path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert ": ok — " in done.stdout


@pytest.mark.parametrize(("changes", "where", "words"), [
    ({"colour": "red"}, "colour", "unknown field"),
    ({"dns": {"policy": "nearest"}}, "dns.policy", "'nearest' is not one of"),
    ({"cdn": {"mode": "push", "fill": {"start_s": 10, "end_s": 5}}}, "cdn.fill.end_s",
     "ends before it starts"),
    ({"workload": {"viewers": {"zz": 2}}}, "workload.viewers.zz", "unknown node"),
    ({"workload": {"viewers": {"a1": -1}}}, "workload.viewers.a1", "whole number"),
    ({"workload": {"viewers": {"a1": 1}, "abr": {"pensieve": 1}}}, "workload.abr.pensieve",
     "unknown ABR algorithm"),
    ({"workload": {"viewers": {"a1": 1}, "abr": []}}, "workload.abr",
     "weights per ABR algorithm"),
    ({"workload": {"viewers": {"a1": 1}, "abr": {"dashjs": 1}}}, "workload.abr.dashjs",
     "browser viewers need real encoded titles"),
    ({"content": {"uploads": [{"uploader": "b3"}]},
      "workload": {"viewers": {"a1": 1}, "abr": {"dashjs": 1}, "closed_loop": True}},
     "workload.closed_loop", "browser viewers play one session each"),
    ({"timeline": [{"at": 5, "set_link": {"a": "a1", "b": "edge_a"}}]},
     "timeline[0].set_link", "no link between 'a1' and 'edge_a'"),
    ({"timeline": [{"at": 5, "cluster_down": "edge_q"}]}, "timeline[0].cluster_down",
     "unknown cluster 'edge_q'"),
    ({"timeline": [{"at": 5, "explode": 1}]}, "timeline[0].explode", "unknown event"),
    ({"timeline": [{"at": 5, "replay": {"a": "a1", "b": "acc_a", "trace": "no.csv"}}]},
     "timeline[0].replay.trace", "no trace file"),
    ({"timeline": [{"at": 5, "kill_program": "dsn"}]}, "timeline[0].kill_program",
     "unknown program 'dsn'"),
    ({"timeline": [{"at": 5, "pause_program": {"program": "dns", "signal": "KILL"}}]},
     "timeline[0].pause_program.signal", "unknown field"),
    ({"timeline": [{"at": 5, "kill_program": {"program": "dns", "signal": "HUP"}}]},
     "timeline[0].kill_program.signal", "'HUP' is not one of"),
    ({"supervise": ["orign"]}, "supervise", "unknown program 'orign'"),
    ({"timeline": [{"at": 5, "origin_fault": {"seconds": 3}}]}, "timeline[0].origin_fault",
     "needs one of status or slow_kbps"),
    ({"timeline": [{"at": 5, "origin_fault": {"status": 404}}]},
     "timeline[0].origin_fault.status", "'404' is not one of"),
    ({"timeline": [{"at": 5, "dns_drop": {"seconds": 0}}]}, "timeline[0].dns_drop.seconds",
     "outside"),
    ({"timeline": [{"at": 5, "fill_cache": {"seconds": 2}}]}, "timeline[0].fill_cache",
     "names no edge server"),
    ({"timeline": [{"at": 5, "fill_cache": {"edge": "edge_a_3"}}]},
     "timeline[0].fill_cache", "unknown edge server 'edge_a_3'"),
    ({"cdn": {"mode": "pull", "modes": {"edge_c": "push"}},
      "timeline": [{"at": 5, "fill_cache": {"edge": "edge_c_1"}}]},
     "timeline[0].fill_cache", "'edge_c_1' is a push edge"),
    ({"chaos": {"from_s": 3, "to_s": 58}}, "chaos.to_s", "past duration_s 60"),
    ({"timeline": [{"at": 5, "cluster_capacity": {"cluster": "edge_q", "mbps": 4}}]},
     "timeline[0].cluster_capacity.cluster", "unknown cluster 'edge_q'"),
    ({"timeline": [{"at": 5, "cluster_capacity": {"cluster": "edge_x", "mbps": 0}}]},
     "timeline[0].cluster_capacity.mbps", "outside"),
    ({"routing": {"mode": "steering", "cmsd": "yes"}}, "routing.cmsd", "not true or false"),
    ({"routing": "anycast"}, "routing", "topology two_isp_ixp has none"),
    ({"routing": {"mode": "dns", "withdraw_above": 0.9}}, "routing.withdraw_above",
     "only anycast withdraws"),
    ({"topology": "anycast_transit", "routing": {"mode": "anycast", "withdraw_above": 0}},
     "routing.withdraw_above", "outside"),
    ({"variants": {"fast": {"dns.ttl": -1}}}, "variants.fast", "dns.ttl"),
    ({"variants": {"fast": ["dns.ttl", 1]}}, "variants.fast", "mapping of dotted keys"),
    ({"duration_s": "long"}, "duration_s", "must be a number"),
    ({"topology": 7}, "topology", "not a name, path or mapping"),
    ({"timeline": [{"at": 5, "bgp_withdraw": "edge_a"}]}, "timeline[0].bgp_withdraw",
     "two_isp_ixp does not route by BGP"),
    ({"topology": "anycast_transit", "timeline": [{"at": 5, "bgp_announce": "edge_z"}]},
     "timeline[0].bgp_announce", "'edge_z' is not an anycast cluster"),
    ({"topology": "anycast_transit",
      "timeline": [{"at": 5, "bgp_policy": {"router": "a1", "prepend": 1}}]},
     "timeline[0].bgp_policy.router", "'a1' speaks no BGP here"),
    ({"topology": "anycast_transit",
      "timeline": [{"at": 5, "bgp_policy": {"router": "tr", "neighbour": "trr", "med": 1}}]},
     "timeline[0].bgp_policy.neighbour", "'trr' speaks no BGP here"),
    ({"topology": "anycast_transit", "timeline": [{"at": 5, "bgp_policy": {"router": "tr"}}]},
     "timeline[0].bgp_policy", "changes nothing"),
    ({"topology": "anycast_transit",
      "timeline": [{"at": 5, "bgp_policy": {"router": "edge_f", "prepend": 11}}]},
     "timeline[0].bgp_policy.prepend", "outside"),
    ({"topology": "anycast_transit",
      "timeline": [{"at": 5, "bgp_policy": {"router": "edge_f", "prepend": 1.5}}]},
     "timeline[0].bgp_policy.prepend", "must be a whole number"),
])
def test_bad_scenarios_name_the_field(changes: dict[str, Any], where: str,
                                      words: str) -> None:
    with pytest.raises(SpecError) as caught:
        scenario(**changes)
    assert caught.value.where == where and words in caught.value.problem, str(caught.value)
    assert str(caught.value).startswith("t.yaml: ")


def test_bgp_events_keep_their_settings() -> None:
    timeline = scenario(topology="anycast_transit", timeline=[
        {"at": 5, "bgp_withdraw": "edge_a"},
        {"at": 6, "bgp_policy": {"router": "edge_f", "neighbour": "tr", "prepend": 3}},
        {"at": 7, "bgp_policy": {"router": "tr", "local_pref": None}}]).timeline
    assert [(e.kind, e.args) for e in timeline] == [
        ("bgp_withdraw", "edge_a"),
        ("bgp_policy", {"router": "edge_f", "neighbour": "tr", "prepend": 3}),
        ("bgp_policy", {"router": "tr", "local_pref": None})]


def test_variants_are_the_scenario_with_their_overrides() -> None:
    base = scenario(variants={"short": {"dns.ttl": 2}, "steered": {"routing": "steering"}})
    assert base.variants == {"short": {"dns.ttl": 2}, "steered": {"routing": "steering"}}
    short = parse_scenario(BASE | {"variants": base.variants}, "t.yaml", SCENARIOS_DIR,
                           variant_overrides("short", base.variants["short"]))
    assert short.dns.ttl == 2 and short.variants == {} and short.raw["variant"] == "short"
    steered = parse_scenario(BASE | {"variants": base.variants}, "t.yaml", SCENARIOS_DIR,
                             variant_overrides("steered", base.variants["steered"]))
    assert steered.routing.steering and steered.dns.ttl == base.dns.ttl


def test_a_fault_on_a_misspelt_program_names_the_nearest() -> None:
    with pytest.raises(SpecError) as caught:
        scenario(timeline=[{"at": 5, "stop_program": "probe_edgea"}])
    assert "did you mean 'probe_edge_a'?" in caught.value.fix, caught.value.fix
    loaded = scenario(supervise="all", timeline=[
        {"at": 2, "pause_program": "dns"}, {"at": 3, "resume_program": {"program": "dns"}},
        {"at": 4, "kill_program": {"program": "edge_a_1", "signal": "TERM"}}])
    assert {"origin", "dns", "probe_edge_a"} <= set(loaded.supervise)
    assert [e.args for e in loaded.timeline] == [
        {"program": "dns"}, {"program": "dns"}, {"program": "edge_a_1", "signal": "TERM"}]


def test_chaos_is_the_same_faults_for_a_seed_and_others_for_another() -> None:
    first, again, other = (scenario(seed=s, chaos={"from_s": 3, "to_s": 20}, supervise="all")
                           for s in (1, 1, 2))
    assert first.timeline == again.timeline != other.timeline
    kinds = [e.kind for e in first.timeline]
    assert sorted(kinds) == sorted(["kill_program", "stop_program", "restart_program",
                                    "pause_program", "resume_program", "origin_fault",
                                    "origin_fault", "dns_drop", "fill_cache"])
    assert all(3 <= e.at <= 24 for e in first.timeline)
    assert first.origin_slow_rates() == (400,), "the origin's nginx is told the slow rate"
    (filled,) = [e.args["edge"] for e in first.timeline if e.kind == "fill_cache"]
    assert first.filled_edges() == {filled}, "that edge gets a cache filesystem of its own"


def test_browser_viewers_play_only_uploaded_titles() -> None:
    """A dashjs viewer draws its title from the uploads alone (it decodes what it plays);
    the others from every title, as before."""
    from cdnlab.scenario.workload import plan_sessions
    mixed = scenario(content={"titles": 30, "uploads": [{"title": "film", "uploader": "b3"}]},
                     workload={"viewers": {"a1": 20}, "segments": 4,
                               "abr": {"dashjs": 1, "bola": 1}})
    sessions = plan_sessions(mixed)["a1"]
    browsers = [s for s in sessions if s["algo"] == "dashjs"]
    assert browsers and {s["title"] for s in browsers} == {"film"}
    assert {s["title"] for s in sessions if s["algo"] == "bola"} - {"film"}, \
        "Python players still draw synthetic titles"


def test_broken_yaml_and_a_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ntopology: [unclosed\n")
    done = subprocess.run([sys.executable, "-m", "cdnlab.cli", "validate", str(broken)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "not valid YAML" in done.stderr
    with pytest.raises(SpecError, match="no such scenario"):
        load_scenario(tmp_path / "nothing.yaml")


def test_overrides_and_isp_viewers_and_dynamic_links(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(BASE | {"timeline": [
        {"at": 3, "set_link": {"a": "isp_a", "b": "edge_a", "delay": 30}},
        {"at": 1, "set_link": {"a": "a1", "b": "acc_a", "rate": 5}}]}))
    loaded = load_scenario(path, {"dns.ttl": 9, "seed": 4})
    assert loaded.dns.ttl == 9 and loaded.seed == 4
    assert loaded.workload.viewers == {"a1": 2, "b1": 1, "b2": 1, "b3": 1}
    assert [e.at for e in loaded.timeline] == [1, 3], "sorted by time"
    assert loaded.dynamic_links() == {"isp_a--edge_a"}, "rate changes need no box"


def test_the_workload_repeats_for_a_seed() -> None:
    first, again, other = (plan_sessions(scenario(seed=s)) for s in (1, 1, 2))
    assert first == again
    assert first != other
    sessions = [s for plan in first.values() for s in plan]
    assert len(sessions) == 5 and all(s["segments"] == 4 for s in sessions)
    starts = sorted(s["start_s"] for s in sessions)
    assert starts[0] == 1.0 and starts == sorted(set(starts)), "poisson: distinct arrivals"
    weights = zipf_weights(3, 1.0)
    assert weights == [1.0, 0.5, pytest.approx(1 / 3)]


def test_jain_fairness() -> None:
    assert jain([2.0, 2.0, 2.0]) == 1.0
    assert jain([1.0, 0.0, 0.0, 0.0]) == 0.25
    assert jain([]) is None


def test_bundle_directories_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nginx and other node programs get paths under the bundle and resolve relative ones
    from their own working directory: `cdnlab run` without --out (`make demo`) once gave
    nginx `results/…/nginx.conf` twice over."""
    from cdnlab.scenario.runner import results_dir

    monkeypatch.chdir(tmp_path)
    scenario = load_scenario(SCENARIOS_DIR / "youtube_pull.yaml")
    default = results_dir(scenario, None)
    assert default.is_absolute() and default.parent == tmp_path / "results"
    assert default.name.startswith("youtube_pull-")
    assert results_dir(scenario, Path("out/run1")) == tmp_path / "out" / "run1"


def test_resolvers_give_each_client_its_nameservers() -> None:
    """ISP resolvers serve their ISP's clients that no public resolver claims; a public
    resolver's clients fall back to their own ISP's resolver unless told otherwise."""
    parsed = scenario(topology="isp_resolvers", dns={"resolvers": {
        "res_a": {}, "res_b": {"fallback": "pub_ecs"},
        "pub": {"kind": "public", "clients": ["a2", "b2"]},
        "pub_ecs": {"kind": "public", "ecs": True, "clients": ["a3"]}}})
    resolvers = {r.name: r for r in parsed.dns.resolvers}
    assert resolvers["res_a"].clients == ("a1",) and resolvers["res_b"].clients == ("b1", "b3")
    assert resolvers["pub_ecs"].ecs and not resolvers["pub"].ecs
    assert parsed.dns.nameservers == {
        "a1": ("res_a",), "b1": ("res_b", "pub_ecs"), "b3": ("res_b", "pub_ecs"),
        "a2": ("pub", "res_a"), "b2": ("pub", "res_b"), "a3": ("pub_ecs", "res_a")}
    assert scenario().dns.resolvers == () and scenario().dns.nameservers == {}


@pytest.mark.parametrize(("resolvers", "where", "words"), [
    ({"dns": {}}, "dns.resolvers.dns", "not a resolver host"),
    ({"pub": {"kind": "public"}}, "dns.resolvers.pub.clients", "needs its clients"),
    ({"pub": {"kind": "public", "clients": ["nobody"]}}, "dns.resolvers.pub.clients",
     "a list of client hosts"),
    ({"res_a": {}, "pub": {"kind": "public", "clients": ["a1"]},
      "pub_ecs": {"kind": "public", "clients": ["a1"]}}, "dns.resolvers.pub_ecs.clients",
     "a1 already uses pub"),
    ({"res_a": {"fallback": "res_a"}}, "dns.resolvers.res_a.fallback", "other resolvers"),
    ({"res_a": {"ecs": "yes"}}, "dns.resolvers.res_a.ecs", "true or false"),
])
def test_bad_resolvers_name_the_field(resolvers: dict[str, Any], where: str,
                                      words: str) -> None:
    with pytest.raises(SpecError) as caught:
        scenario(topology="isp_resolvers", dns={"resolvers": resolvers})
    assert caught.value.where == where and words in str(caught.value)


def test_a_resolver_event_names_a_resolver() -> None:
    with pytest.raises(SpecError, match="unknown resolver 'edge_a'"):
        scenario(topology="isp_resolvers", timeline=[{"at": 3, "resolver_down": "edge_a"}])


def test_no_viewer_arrives_after_duration_s() -> None:
    """duration_s is the arrival window: a plan that starts a session after it is refused
    with the rate that would fit."""
    crowd = {"viewers": {"isp_a": 30}, "arrival": {"process": "poisson", "rate_per_s": 1}}
    with pytest.raises(SpecError) as caught:
        scenario(duration_s=12, workload=crowd)
    assert caught.value.where == "workload.arrival.rate_per_s"
    assert "past duration_s 12" in str(caught.value) and "raise rate_per_s" in str(caught.value)
    assert scenario(duration_s=40, workload=crowd).workload.viewers  # it fits in 40 s
    with pytest.raises(SpecError, match="past duration_s 10"):
        scenario(duration_s=10, workload={"viewers": {"a1": 2}, "arrival": {
            "process": "uniform", "start_s": 2, "window_s": 9}})


def test_a_closed_loop_viewer_has_titles_to_play_until_duration_s() -> None:
    looped = scenario(duration_s=30, workload={"viewers": {"a1": 2}, "closed_loop": True,
                                                "segments": 5, "max_buffer_s": 4})
    plans = plan_sessions(looped)["a1"]
    for plan in plans:
        assert plan["until_s"] == 30
        # sessions of at least 5 × 2 − 4 = 6 s fill the rest of 30 s in at most 5 more
        assert len(plan["more_titles"]) == math.ceil((30 - plan["start_s"]) / 6) + 1
    open_loop = plan_sessions(scenario(duration_s=30, workload={"viewers": {"a1": 2}}))["a1"]
    assert all("until_s" not in p for p in open_loop)


def test_concurrency_counts_sessions_playing_at_once() -> None:
    events = [{"t": t, "event": e} for t, e in [
        (0, "session_start"), (1, "session_start"), (2, "session_end"), (3, "session_start"),
        (4, "session_end"), (4, "segment"), (6, "session_end")]]
    assert concurrency(events) == (2, round((1 + 2 + 1 + 2 + 1 * 2) / 6, 2))
    assert concurrency([]) == (None, None)
