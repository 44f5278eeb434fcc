"""Policies and the zone as pure code: no sockets, constructed states."""

from __future__ import annotations

import ipaddress
import random
import time
from collections.abc import Callable

import pytest

from nodes.common.records import record_name
from nodes.dns.policies import POLICIES, PolicyInput, PolicySettings
from nodes.dns.spill import SpillController
from nodes.dns.view import Reading
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
    settings = settings or PolicySettings()
    spill = SpillController(settings.spill_gain, settings.spill_max_share)  # as the server's
    return [POLICIES[policy](PolicyInput(client, zone.view, now or time.time(), settings,
                                         rng.random, turns.__next__, spill))
            for _ in range(n)]


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
def test_a_first_spill_step_takes_the_configured_share(load: float, threshold: float,
                                                       gain: float, cap: float) -> None:
    """From no spill, one reading of load L over threshold T: demand is L, the target
    1 − T/L, and the share gain · target (capped): (L − T)/L at gain 1."""
    zone = zone_with(RTTS, {"edge_a": load}).apply(
        [Op("replace", record_name("threshold", ZONE, "edge_a"), "TXT", 0, (str(threshold),))])
    settings = PolicySettings(spill_gain=gain, spill_max_share=cap)
    decisions = ask(zone, "min_rtt_spill", CLIENT_A, seed=5, n=10_000, settings=settings)
    expected = min(cap, max(0.0, gain * (load - threshold) / load))
    spilled = [d for d in decisions if d.reason == "spill"]
    assert len(spilled) / 10_000 == pytest.approx(expected, abs=1e-4), "exactly the share"
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


def closed_loop(rule: Callable[[float, float], float], demand: list[float],
                threshold: float = 0.8, lag: int = 2) -> tuple[list[float], list[float]]:
    """The nearest cluster under `demand` (utilisation it would carry alone) per probe
    interval. Answers hold for a TTL, so the share in force is the mean of the last `lag`
    shares decided; the load read at the end of an interval drives the next share.
    (shares, utilisations) per interval."""
    shares, loads = [0.0], []
    for wanted in demand:
        in_force = sum(shares[-lag:]) / len(shares[-lag:])
        loads.append(wanted * (1 - in_force))
        shares.append(rule(loads[-1], threshold))
    return shares[1:], loads


def controller_rule(gain: float = 0.5) -> Callable[[float, float], float]:
    controller = SpillController(gain, 0.9, ttl_s=2.0)  # answers hold 2 intervals, as modelled
    clock = iter(range(10**6))
    return lambda load, threshold: controller.share(
        "edge_a", Reading(load, float(next(clock))), threshold).share


def memoryless(load: float, threshold: float) -> float:
    """The rule before the controller: min(0.9, (L − T)/L) of the load measured."""
    return min(0.9, max(0.0, (load - threshold) / load))


def test_the_spill_controller_settles_at_the_threshold() -> None:
    """Demand twice the threshold: the controller holds the cluster within ±10 % of the
    threshold, steadily; the memoryless rule it replaced settles near √(D·T) = 1.13
    instead (and, without lag, alternates 0, ½)."""
    shares, loads = closed_loop(controller_rule(), [1.6] * 40)
    assert all(abs(u - 0.8) <= 0.08 for u in loads[-20:]), loads
    assert max(shares[-10:]) - min(shares[-10:]) < 0.02, "settled, not oscillating"
    _old_shares, old_loads = closed_loop(memoryless, [1.6] * 40)
    assert abs(old_loads[-1] - 0.8) > 0.08
    alternating, _ = closed_loop(memoryless, [1.6] * 6, lag=1)
    assert alternating[1:5] == pytest.approx([0.0, 0.5, 0.0, 0.5])


def test_the_spill_share_follows_demand_up_and_back_to_zero() -> None:
    shares, loads = closed_loop(controller_rule(), [1.2] * 30 + [2.4] * 30 + [0.6] * 30)
    assert shares[29] == pytest.approx(1 - 0.8 / 1.2, abs=0.03)
    assert shares[59] == pytest.approx(1 - 0.8 / 2.4, abs=0.03) and shares[59] > shares[29]
    assert shares[-1] < 0.01 and loads[-1] == pytest.approx(0.6, abs=0.01)


def test_no_spill_to_a_cluster_over_its_own_threshold() -> None:
    zone = zone_with(RTTS, {"edge_a": 1.6, "edge_x": 0.9, "edge_c": 0.1})
    spilled = [d for d in ask(zone, "min_rtt_spill", CLIENT_A, n=2000) if d.reason == "spill"]
    assert spilled and {d.cluster for d in spilled} == {"edge_c"}, "edge_x is over 0.8"
    full = zone_with(RTTS, {"edge_a": 1.6, "edge_x": 0.9, "edge_c": 0.95})
    decisions = ask(full, "min_rtt_spill", CLIENT_A, n=200)
    assert {d.cluster for d in decisions} == {"edge_a"}
    assert all("spill_blocked" in d.extra for d in decisions)


def test_stale_measurements_fall_back_instead_of_failing() -> None:
    """Every RTT stale (probes starved): the last known ranking, then the coverage zone,
    then any cluster up; SERVFAIL (no cluster) only when every cluster is down."""
    old = time.time() - 100
    stale = zone_with(RTTS, now=old)
    (d,) = ask(stale, "min_rtt_spill", CLIENT_A)
    assert (d.cluster, d.reason) == ("edge_a", "stale_ranking")
    (d,) = ask(stale, "min_rtt_spill", CLIENT_B)
    assert (d.cluster, d.reason) == ("edge_x", "stale_ranking")
    covered = PolicySettings(coverage=((ipaddress.IPv4Network("192.168.0.0/16"), "edge_c"),))
    only_stale = zone_with(RTTS, {"edge_a": 0.1, "edge_x": 0.1, "edge_c": 0.1}, now=old)
    stranger = int(ipaddress.IPv4Address("192.168.7.7"))
    (d,) = ask(only_stale, "min_rtt_spill", stranger, settings=covered)
    assert (d.cluster, d.reason) == ("edge_c", "coverage_fallback")
    (d,) = ask(only_stale, "min_rtt_spill", stranger)
    assert d.reason == "no_measurement" and d.cluster is not None
    dead = zone_with(RTTS, down=("edge_a", "edge_x", "edge_c"), now=old)
    (d,) = ask(dead, "min_rtt_spill", CLIENT_A)
    assert (d.cluster, d.reason) == (None, "no_cluster")


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
