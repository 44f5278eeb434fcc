"""Policies and the zone as pure code: no sockets, constructed states."""

from __future__ import annotations

import ipaddress
import random
import time

import pytest

from nodes.common.records import record_name
from nodes.dns.policies import POLICIES, PolicyInput, PolicySettings
from nodes.dns.zone import Op, Zone, ZoneError

ZONE = "cdn.lab."
NET_A, NET_B = "10.0.4.0/24", "10.0.5.0/24"
CLIENT_A = int(ipaddress.IPv4Address("10.0.4.9"))
CLIENT_B = int(ipaddress.IPv4Address("10.0.5.9"))


def zone_with(rtts: dict[tuple[str, str], float], load: dict[str, float] | None = None,
              down: tuple[str, ...] = (), now: float | None = None) -> Zone:
    zone = Zone(ZONE, frozenset({f"video.{ZONE}"}))
    ops = [Op("replace", record_name("cluster", ZONE, c), "A", 60, (f"10.9.{i}.2",))
           for i, c in enumerate(("edge_a", "edge_x", "edge_c"))]
    ops += [Op("replace", record_name("rtt", ZONE, c, net), "TXT", 0, (str(v),))
            for (c, net), v in rtts.items()]
    ops += [Op("replace", record_name("load", ZONE, c), "TXT", 0, (str(v),))
            for c, v in (load or {}).items()]
    ops += [Op("replace", record_name("health", ZONE, c), "TXT", 0, ("down",)) for c in down]
    return zone.apply(ops, now=now)


RTTS = {("edge_a", NET_A): 6.0, ("edge_x", NET_A): 13.0, ("edge_c", NET_A): 44.0,
        ("edge_a", NET_B): 26.0, ("edge_x", NET_B): 17.0, ("edge_c", NET_B): 48.0}


def ask(zone: Zone, policy: str, client: int, seed: int = 1, n: int = 1,
        settings: PolicySettings | None = None, now: float | None = None) -> list:
    rng = random.Random(seed)
    turns = iter(range(10**9))
    return [POLICIES[policy](PolicyInput(client, zone.view, now or time.time(),
                                         settings or PolicySettings(), rng.random,
                                         turns.__next__)) for _ in range(n)]


@pytest.mark.parametrize("policy", ["min_rtt", "min_rtt_spill"])
def test_lowest_rtt_wins_per_client_network(policy: str) -> None:
    zone = zone_with(RTTS)
    (a,), (b,) = ask(zone, policy, CLIENT_A), ask(zone, policy, CLIENT_B)
    assert (a.cluster, a.reason, a.scope) == ("edge_a", "lowest_rtt", 24)
    assert (b.cluster, b.reason, b.lowest) == ("edge_x", "lowest_rtt", "edge_x")
    assert [c.cluster for c in a.candidates] == ["edge_a", "edge_x", "edge_c"]


@pytest.mark.parametrize(("load", "threshold", "gain", "cap"), [
    (0.9, 0.8, 1.0, 0.9), (1.2, 0.8, 1.0, 0.9), (1.6, 0.8, 1.0, 0.9), (1.0, 0.5, 2.0, 0.6),
    (0.79, 0.8, 1.0, 0.9)])
def test_spill_share_follows_the_configured_curve(load: float, threshold: float, gain: float,
                                                  cap: float) -> None:
    zone = zone_with(RTTS, {"edge_a": load}).apply(
        [Op("replace", record_name("threshold", ZONE, "edge_a"), "TXT", 0, (str(threshold),))])
    settings = PolicySettings(spill_gain=gain, spill_max_share=cap)
    decisions = ask(zone, "min_rtt_spill", CLIENT_A, seed=5, n=10_000, settings=settings)
    expected = min(cap, max(0.0, gain * (load - threshold) / load))
    spilled = [d for d in decisions if d.reason == "spill"]
    assert len(spilled) / 10_000 == pytest.approx(expected, abs=0.03)
    assert all(d.cluster == "edge_x" and d.extra["from"] == "edge_a" for d in spilled)
    assert all(d.cluster == "edge_a" for d in decisions if d.reason != "spill")
    again = ask(zone, "min_rtt_spill", CLIENT_A, seed=5, n=10_000, settings=settings)
    assert [d.cluster for d in again] == [d.cluster for d in decisions], "seeded: repeats"


def test_min_rtt_ignores_load() -> None:
    zone = zone_with(RTTS, {"edge_a": 5.0})
    assert {d.cluster for d in ask(zone, "min_rtt", CLIENT_A, n=200)} == {"edge_a"}


def test_unhealthy_and_stale_clusters_are_skipped() -> None:
    down = zone_with(RTTS, down=("edge_a",))
    (d,) = ask(down, "min_rtt_spill", CLIENT_A)
    assert (d.cluster, d.reason, d.lowest) == ("edge_x", "failover", "edge_a")
    assert next(c for c in d.candidates if c.cluster == "edge_a").why_not == "down"
    old = time.time() - 100
    stale = zone_with({k: v for k, v in RTTS.items() if k[0] == "edge_a"}, now=old).apply(
        [Op("replace", record_name("rtt", ZONE, c, NET_A), "TXT", 0, (str(v),))
         for (c, net), v in RTTS.items() if c != "edge_a" and net == NET_A])
    (d,) = ask(stale, "min_rtt", CLIENT_A, settings=PolicySettings(stale_after_s=30))
    assert (d.cluster, d.reason) == ("edge_x", "failover")
    assert next(c for c in d.candidates if c.cluster == "edge_a").why_not == "rtt_stale"
    stale_load = zone_with(RTTS, {"edge_a": 0.1}, now=old).apply(
        [Op("replace", record_name("rtt", ZONE, c, n), "TXT", 0, (str(v),))
         for (c, n), v in RTTS.items()])
    (d,) = ask(stale_load, "min_rtt", CLIENT_A)
    assert d.cluster == "edge_x"


def test_unknown_networks_nothing_usable_coverage_and_round_robin() -> None:
    zone = zone_with(RTTS, {"edge_a": 0.5, "edge_x": 0.2, "edge_c": 0.9})
    stranger = int(ipaddress.IPv4Address("192.168.7.7"))
    (d,) = ask(zone, "min_rtt_spill", stranger)
    assert (d.cluster, d.reason, d.scope) == ("edge_x", "no_measurement", 0)
    dead = zone_with(RTTS, down=("edge_a", "edge_x", "edge_c"))
    assert ask(dead, "min_rtt", CLIENT_A)[0].cluster is None
    coverage = PolicySettings(coverage=((ipaddress.IPv4Network("10.0.4.0/22"), "edge_c"),))
    (d,) = ask(zone, "coverage_zone", CLIENT_B, settings=coverage)
    assert (d.cluster, d.reason, d.scope) == ("edge_c", "coverage_zone", 22)
    (d,) = ask(zone, "coverage_zone", stranger, settings=coverage)
    assert d.reason == "no_measurement"
    turns = [d.cluster for d in ask(zone, "round_robin", CLIENT_A, n=6)]
    assert turns == ["edge_a", "edge_c", "edge_x"] * 2


def test_zone_batches_are_all_or_nothing_and_bump_the_serial() -> None:
    zone = zone_with(RTTS)
    serial = zone.serial
    with pytest.raises(ZoneError) as caught:
        zone.apply([Op("replace", record_name("load", ZONE, "edge_a"), "TXT", 0, ("0.5",)),
                    Op("replace", record_name("load", ZONE, "edge_x"), "TXT", 0, ("lots",))])
    assert caught.value.rcode == "REFUSED" and "must be a number" in caught.value.message
    assert zone.serial == serial and zone.rrset(f"edge_a.load.{ZONE}", "TXT") is None
    changed = zone.apply([Op("add", f"www.{ZONE}", "A", 30, ("10.1.1.1",))])
    assert changed.serial == serial + 1
    assert changed.apply([Op("delete_rrset", f"nothere.{ZONE}", "A")]) is changed
    for bad, rcode in [(Op("add", "www.example.com.", "A", 30, ("1.2.3.4",)), "NOTZONE"),
                       (Op("add", f"video.{ZONE}", "A", 30, ("1.2.3.4",)), "REFUSED"),
                       (Op("add", ZONE, "NS", 30, ("x.",)), "REFUSED"),
                       (Op("add", f"x.{ZONE}", "A", 30, ("300.1.1.1",)), "FORMERR"),
                       (Op("add", f"x.rtt.{ZONE}", "TXT", 0, ("1",)), "REFUSED"),
                       (Op("add", f"e.health.{ZONE}", "TXT", 0, ("maybe",)), "REFUSED")]:
        with pytest.raises(ZoneError) as caught:
            changed.apply([bad])
        assert caught.value.rcode == rcode, bad
    txt = changed.apply([Op("replace", f"edge_a.load.{ZONE}", "TXT", 0, ('"0.5"',))])
    same = txt.apply([Op("delete_rr", f"edge_a.load.{ZONE}", "TXT", 0, ("0.5",))])
    assert same.rrset(f"edge_a.load.{ZONE}", "TXT") is None
