"""The fidelity verdict's arithmetic: an invariant is violated only when it stays past its
limit for the hold time, a gap ends a run, drops and late events count at once, and the
words name what broke and when."""

from __future__ import annotations

from typing import Any

from cdnlab.measure import verdict


def samples(busy: list[float], wake_us: float = 50.0, start: float = 10.0) -> list[dict[str, Any]]:
    return [{"t": start + n, "cpu_busy_mean": b, "wake_p99_us": wake_us}
            for n, b in enumerate(busy)]


def test_a_limit_must_hold_for_three_seconds() -> None:
    assert verdict.judge(samples([0.99, 0.99, 0.5, 0.99, 0.99]), [], [], 0.0) == []
    (found,) = verdict.judge(samples([0.5, 0.99, 1.0, 0.97, 0.5]), [], [], 4.0)
    assert (found.invariant, found.from_s, found.to_s, found.worst) == \
        ("cpu_saturated", 6.0, 9.0, 1.0), "scenario seconds: the offset is taken off"
    gap = samples([0.99, 0.99]) + samples([0.99, 0.99], start=20.0)
    assert verdict.judge(gap, [], [], 0.0) == [], "a gap in the samples ends a run"


def test_late_timers_delay_queues_drops_and_events() -> None:
    late = verdict.judge(samples([0.1] * 4, wake_us=1500.0), [], [], 0.0)
    assert [v.invariant for v in late] == ["timer_late"]
    queues = [{"t": 10.0 + n, "node": "l3", "queues": {"0": {
        "lag_mean_us": lag, "kernel_drops": drops}}}
              for n, (lag, drops) in enumerate([(900, 0), (800, 0), (700, 5), (10, 5)])]
    found = verdict.judge([], queues, [{"at": 20, "kind": "set_link", "late_s": 0.9},
                                       {"at": 25, "kind": "link_down", "late_s": 0.1}], 0.0)
    assert [(v.invariant, v.where) for v in found] == [
        ("delay_late", "l3 queue 0"), ("kernel_drops", "l3 queue 0"),
        ("event_late", "set_link")]
    assert found[1].worst == 5 and found[1].from_s == 11.0


def test_the_host_taking_cpu_time_for_three_seconds() -> None:
    def steal(shares: list[float]) -> list[dict[str, Any]]:
        return [{"t": 10.0 + n, "cpu_busy_mean": 0.3, "wake_p99_us": 50.0,
                 "steal_share": share} for n, share in enumerate(shares)]

    (found,) = verdict.judge(steal([0.0, 0.05, 0.1, 0.05, 0.0]), [], [], 0.0)
    assert (found.invariant, found.from_s, found.to_s, found.worst) == \
        ("host_steal", 10.0, 13.0, 0.1)
    assert verdict.describe([found.to_dict()]) == \
        "emulator-limited from 10 s to 13 s: the host took 10% of the CPU time (steal)"
    assert verdict.judge(steal([0.0, 0.05, 0.005, 0.05, 0.0]), [], [], 0.0) == [], \
        "a lone slice (a workload starting) is not judged"
    assert verdict.judge(samples([0.3] * 3), [], [], 0.0) == [], "older samples have none"


def test_late_timers_the_guest_did_not_queue_are_the_hosts() -> None:
    def late(host_us: list[float | None]) -> list[dict[str, Any]]:
        return [{"t": 10.0 + n, "cpu_busy_mean": 0.3, "wake_p99_us": 3000.0,
                 "wake_host_p99_us": h} for n, h in enumerate(host_us)]

    (host,) = verdict.judge(late([2900.0, 2500.0, 1800.0]), [], [], 0.0)
    assert (host.invariant, host.from_s, host.to_s, host.worst) == \
        ("host_late", 9.0, 12.0, 3000.0)
    assert verdict.describe([host.to_dict()]) == (
        "emulator-limited from 9 s to 12 s: timer lateness p99 3.0 ms, none of it queued in "
        "the guest (the host ran its CPUs late)")
    # one second the guest's own run queue explains, or one unmeasured: the emulator's
    for mixed in ([2900.0, 40.0, 1800.0], [2900.0, None, 1800.0]):
        (found,) = verdict.judge(late(mixed), [], [], 0.0)
        assert found.invariant == "timer_late", mixed
    assert verdict.limited_by_host({"ok": False, "violations": [host.to_dict()]})
    assert not verdict.limited_by_host({"ok": False, "violations": [found.to_dict()]})


def test_the_words() -> None:
    assert verdict.describe([]).startswith("faithful")
    text = verdict.describe([v.to_dict() for v in verdict.judge(
        samples([0.99, 1.0, 1.0], wake_us=4000.0), [], [], 0.0)])
    assert text == ("emulator-limited from 9 s to 12 s: CPU saturated (busy 100%), "
                    "timer lateness p99 4.0 ms")


def test_starved_probes_count_unless_the_timeline_took_a_link_down() -> None:
    def rounds(start: float, shares: list[float]) -> list[dict[str, Any]]:
        return [{"t": start + n, "cluster": "edge_a",
                 "raw_ms": {"10.0.4.0/24": None if share else 5.0,
                            "10.0.5.0/24": None if share > 0.5 else 7.0}}
                for n, share in enumerate(shares)]

    starved = verdict.judge([], [], [], 0.0, probe_rounds=rounds(10.0, [1.0, 0.5, 1.0, 0.0]))
    assert [(v.invariant, v.where, v.worst) for v in starved] == [
        ("probe_loss", "edge_a", 1.0)]
    taken_down = [{"at": 9.5, "kind": "link_down", "args": ["isp_a", "ixp"]},
                  {"at": 14.0, "kind": "link_up", "args": ["isp_a", "ixp"]}]
    assert verdict.judge([], [], taken_down, 0.0,
                         probe_rounds=rounds(10.0, [1.0, 0.5, 1.0, 0.0])) == []
    assert verdict.down_windows(taken_down[:1]) == [(9.5, float("inf"))], "never came up"
    cut = [{"at": 9.5, "kind": "cluster_capacity", "args": {"cluster": "edge_a", "mbps": 4}}]
    assert verdict.judge([], [], cut, 0.0, probe_rounds=rounds(10.0, [1.0, 0.5, 1.0])) == \
        [], "a cluster whose capacity was cut loses probes to its congested uplink"
    other = [{**cut[0], "args": {"cluster": "edge_x", "mbps": 4}}]
    assert len(verdict.judge([], [], other, 0.0,
                             probe_rounds=rounds(10.0, [1.0, 0.5, 1.0]))) == 1


def queue_samples(points: list[tuple[float, float | None, int]]) -> list[dict[str, Any]]:
    """(sent, told, backlog) per second for one link direction."""
    return [{"t": 10.0 + n, "cpu_busy_mean": 0.1, "wake_p99_us": 50.0,
             "queues": {"l7:a_to_b": {"sent_mbps": sent, "told_mbps": told,
                                      "backlog": backlog, "qlen": 1 if backlog else 0,
                                      "drops": 0, "overlimits": 0}}}
            for n, (sent, told, backlog) in enumerate(points)]


def test_a_backlogged_queue_that_sends_under_its_rate() -> None:
    """Judged only over intervals backlogged at both ends: a queue idle part of the time
    sends less than its rate and that is the workload's doing, not the shaper's."""
    short = queue_samples([(20.0, 20.0, 9000), (12.0, 20.0, 9000), (11.0, 20.0, 9000),
                           (10.0, 20.0, 9000), (19.5, 20.0, 9000)])
    (found,) = verdict.judge(short, [], [], 0.0)
    assert (found.invariant, found.where, found.from_s, found.to_s, found.worst) == (
        "rate_short", "l7:a_to_b", 10.0, 13.0, 0.5)
    assert "link l7:a_to_b sent 50% under its rate" in verdict.describe([found.to_dict()])
    idle = queue_samples([(20.0, 20.0, 9000), (5.0, 20.0, 0), (5.0, 20.0, 9000),
                          (5.0, 20.0, 0), (5.0, 20.0, 9000), (5.0, 20.0, 0)])
    assert verdict.judge(idle, [], [], 0.0) == [], "a queue that drained is not judged"
    untold = queue_samples([(1.0, None, 9000)] * 5)
    assert verdict.judge(untold, [], [], 0.0) == [], "no rate told, nothing to fall short of"
    steady = queue_samples([(17.0, 20.0, 9000)] * 5)
    assert verdict.judge(steady, [], [], 0.0) == [], "15 % short is within the limit"


def test_each_machine_of_a_split_run_is_judged_on_its_own() -> None:
    """A saturated machine is found even with another machine's idle samples between its
    own (mixed, the idle ones would break every run), and the words name the machine."""
    head = samples([0.99] * 5)
    other = [s | {"t": s["t"] + 0.5, "machine": "10.0.9.2", "cpu_busy_mean": 0.2}
             for s in samples([0.2] * 5)]
    mixed = sorted(head + other, key=lambda s: s["t"])
    (found,) = verdict.judge(mixed, [], [], 0.0)
    assert (found.invariant, found.where) == ("cpu_saturated", None)
    hot = [s | {"cpu_busy_mean": 1.0} for s in other]
    (found,) = verdict.judge(sorted(samples([0.2] * 5) + hot, key=lambda s: s["t"]), [], [],
                             0.0)
    assert found.where == "10.0.9.2"
    assert verdict.describe([found.to_dict()]).endswith("CPU saturated (busy 100%) on 10.0.9.2")


def test_a_queue_that_drained_within_the_interval_is_not_judged() -> None:
    """With the monitor's readings between the ends (`backlog_min`), a queue backlogged at
    both ends of each second but empty at a reading in between is bursty traffic, not a
    shaper falling short; one that never drained is judged as before."""
    points = [(20.0, 20.0, 9000)] + [(10.0, 20.0, 9000)] * 4
    drained = queue_samples(points)
    for sample in drained:
        sample["queues"]["l7:a_to_b"]["backlog_min"] = 0
    assert verdict.judge(drained, [], [], 0.0) == []
    stayed = queue_samples(points)
    for sample in stayed:
        sample["queues"]["l7:a_to_b"]["backlog_min"] = 3000
    (found,) = verdict.judge(stayed, [], [], 0.0)
    assert (found.invariant, found.from_s, found.worst) == ("rate_short", 10.0, 0.5)


def test_a_saturated_cpu_names_the_parts_that_took_it() -> None:
    saturated = samples([0.99] * 5)
    for sample in saturated:
        sample["cpu_by_part"] = {"players": 0.6, "delay": 0.2, "edges": 0.1, "dns": 0.05}
    (found,) = verdict.judge(saturated, [], [], 0.0)
    assert found.parts == {"players": 0.632, "delay": 0.211, "edges": 0.105}
    assert "CPU saturated (busy 99%): players 63%, delay path 21%, edges 10%" in \
        verdict.describe([found.to_dict()])
    assert verdict.judge(samples([0.99] * 5), [], [], 0.0)[0].parts is None, "unmeasured"
