"""The fidelity verdict of a run: its invariants, judged over the whole run.

Each invariant has a limit and a hold time; it is violated when it stays past its limit
for at least the hold time (consecutive samples), or at once where the hold is 0. The
limits, in one place:

    cpu_saturated   mean busy share of all cores ≥ 0.95 for ≥ 3 s: no headroom left, so
                    forwarding, delays and players wait for CPU (Mininet-HiFi's first
                    invariant is the CPU the emulation gets); it names the parts of the
                    run that took most of its CPU in that window (`parts`, from the
                    monitor's `cpu_by_part`)
    host_steal      the hypervisor took over 1 % of the machine's CPU time (the monitor's
                    `steal_share`) for ≥ 3 s: each stolen slice stalls every timer and
                    delay on its core for its length (a whole quota period on a host that
                    caps its guests' CPU); a lone slice, as when a workload's programs
                    all start at once, shows in `steal_share_max` and is not judged, as a
                    lone busy second is not
    timer_late      a 1 ms sleep's p99 lateness in the monitor over 1000 µs for ≥ 3 s: a
                    timer is then late by as much as the shortest link delay
    host_late       the same, but in every second of it the lateness less each sleep's
                    wait in the guest's run queue (the monitor's `wake_host_p99_us`) was
                    over the limit by itself: the wake-ups reached the guest's scheduler
                    late, so the hypervisor ran the virtual CPU late (the host's doing, as
                    `host_steal` is, when its steal accounting misses it)
    delay_late      a userspace delay queue (nfqueue backend) releasing packets a mean of
                    over 500 µs late for ≥ 3 s
    kernel_drops    the kernel dropped packets queued for the delay process (the queue
                    was full or the process could not take them): at once
    rate_short      a shaped link's kernel queue (htb) held packets at every reading of
                    an interval (its ends and `QUEUE_CHECKS` between: the monitor's
                    `backlog_min`) yet sent under 80 % of the rate its class is told, for
                    ≥ 3 s: the shaper, not the link, set the rate (a queue that drains
                    within the interval is not backlogged, so bursts of traffic that leave
                    the link idle part of the time are not judged; samples without
                    `backlog_min` are judged at the two ends alone)
    event_late      a timeline event begun over 0.5 s after its second: at once (the time
                    applying it takes, `apply_s`, is the event's own, not lateness)
    probe_loss      a cluster's RTT probes unanswered for over 20 % of the networks they
                    measure, round after round for ≥ 3 s, while no timeline event has a
                    link or cluster down, and not for a cluster whose capacity a
                    `cluster_capacity` event cut (then loss is the emulated network's, a
                    down or congested path, not the emulator's): the probes starve, as
                    they did under CPU saturation

Violations carry the invariant, where (a link's queue, an event), from and to (scenario
seconds), the worst value, the limit and the unit. `describe` puts them in words for the
report and the end-of-run line.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from cdnlab.net.cgroup import PARTS

HOLD_S = 3.0
CPU_BUSY_LIMIT = 0.95
WAKE_P99_LIMIT_US = 1000.0
STEAL_LIMIT = 0.01  # of all cores' time, per monitor interval
DELAY_LAG_LIMIT_US = 500.0
EVENT_LATE_LIMIT_S = 0.5
PROBE_LOSS_LIMIT = 0.2
RATE_SHORT_LIMIT = 0.2  # the share of the told rate a backlogged queue may fall short
DOWN_UP = {"link_down": "link_up", "cluster_down": "cluster_up"}


@dataclass(frozen=True)
class Violation:
    invariant: str
    where: str | None
    from_s: float
    to_s: float
    worst: float
    limit: float
    unit: str
    parts: dict[str, float] | None = None  # cpu_saturated: part → share of the run's CPU

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


TOP_PARTS = 3


def top_parts(samples: list[dict[str, Any]], start: float, end: float) -> dict[str, float] | None:
    """The parts that took most of the run's CPU in samples ending in (start, end], as
    shares of the run's CPU there (`TOP_PARTS` of them, largest first); None unmeasured."""
    totals: dict[str, float] = defaultdict(float)
    for sample in samples:
        if start < sample["t"] <= end + 1e-9:
            for part, share in (sample.get("cpu_by_part") or {}).items():
                totals[part] += share
    whole = sum(totals.values())
    if whole <= 0:
        return None
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:TOP_PARTS]
    return {part: round(value / whole, 3) for part, value in ranked}


def _held(points: Iterable[tuple[float, float]], limit: float, hold_s: float,
          interval_s: float) -> list[tuple[float, float, float]]:
    """Runs of consecutive (t, value) points over `limit` that last at least `hold_s`:
    (from, to, worst). A point stands for the interval that ends at its t; a gap of over
    two intervals ends a run."""
    runs: list[tuple[float, float, float]] = []

    def close(run: list[tuple[float, float]]) -> None:
        if run and run[-1][0] - (run[0][0] - interval_s) >= hold_s - 1e-9:
            runs.append((run[0][0] - interval_s, run[-1][0], max(v for _, v in run)))

    run: list[tuple[float, float]] = []
    for t, value in points:
        if value > limit and run and t - run[-1][0] <= 2.5 * interval_s:
            run.append((t, value))
            continue
        close(run)
        run = [(t, value)] if value > limit else []
    close(run)
    return runs


def _host_alone(samples: list[dict[str, Any]], start: float, end: float) -> bool:
    """Whether, in every sample ending in (start, end], the timers' lateness less their
    run-queue wait was over the limit by itself (unknown counts as not)."""
    inside = [s.get("wake_host_p99_us") for s in samples if start < s["t"] <= end + 1e-9]
    return bool(inside) and all(v is not None and v > WAKE_P99_LIMIT_US for v in inside)


def down_windows(events_applied: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """Scenario seconds during which a link or a cluster was down by the timeline's hand."""
    windows: list[tuple[float, float]] = []
    open_at: dict[str, float] = {}
    for event in sorted(events_applied, key=lambda e: e["at"]):
        key = f"{event['kind'].rsplit('_', 1)[0]}:{event.get('args')}"
        if event["kind"] in DOWN_UP:
            open_at.setdefault(key, float(event["at"]))
        elif event["kind"] in DOWN_UP.values() and key in open_at:
            windows.append((open_at.pop(key), float(event["at"])))
    windows += [(start, float("inf")) for start in open_at.values()]
    return windows


def judge(samples: list[dict[str, Any]], queue_stats: list[dict[str, Any]],
          events_applied: list[dict[str, Any]], offset: float,
          interval_s: float = 1.0,
          probe_rounds: list[dict[str, Any]] | None = None) -> list[Violation]:
    """Every violation in a run, in scenario seconds (`offset`: event time of scenario
    second 0)."""
    found: list[Violation] = []
    downs = down_windows(events_applied)

    def add(invariant: str, where: str | None, runs: list[tuple[float, float, float]],
            limit: float, unit: str) -> None:
        found.extend(Violation(invariant, where, round(a - offset, 1), round(b - offset, 1),
                               round(worst, 4), limit, unit) for a, b, worst in runs)

    by_machine: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for sample in samples:  # a split run's machines each sample themselves
        by_machine[sample.get("machine")].append(sample)
    for machine, own in sorted(by_machine.items(), key=lambda kv: kv[0] or ""):
        for a, b, worst in _held([(s["t"], s["cpu_busy_mean"]) for s in own], CPU_BUSY_LIMIT,
                                 HOLD_S, interval_s):
            found.append(Violation("cpu_saturated", machine, round(a - offset, 1),
                                   round(b - offset, 1), round(worst, 4), CPU_BUSY_LIMIT,
                                   "busy share", top_parts(own, a, b)))
        add("host_steal", machine, _held([(s["t"], s["steal_share"]) for s in own
                                          if s.get("steal_share") is not None],
                                         STEAL_LIMIT, HOLD_S, interval_s),
            STEAL_LIMIT, "share of CPU time taken by the host")
        for a, b, worst in _held([(s["t"], s["wake_p99_us"]) for s in own],
                                 WAKE_P99_LIMIT_US, HOLD_S, interval_s):
            late = "host_late" if _host_alone(own, a, b) else "timer_late"
            found.append(Violation(late, machine, round(a - offset, 1), round(b - offset, 1),
                                   round(worst, 4), WAKE_P99_LIMIT_US, "µs"))
    lags: dict[str, list[tuple[float, float]]] = defaultdict(list)
    drops: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for record in queue_stats:
        for number, queue in record["queues"].items():
            where = f"{record['node']} queue {number}"
            if queue.get("lag_mean_us") is not None:
                lags[where].append((record["t"], queue["lag_mean_us"]))
            if queue.get("kernel_drops") is not None:
                drops[where].append((record["t"], queue["kernel_drops"]))
    for where, points in sorted(lags.items()):
        add("delay_late", where, _held(points, DELAY_LAG_LIMIT_US, HOLD_S, interval_s),
            DELAY_LAG_LIMIT_US, "µs")
    for where, counts in sorted(drops.items()):
        grew = [(t, float(n - before)) for (_, before), (t, n)
                in itertools.pairwise(counts) if n > before]
        if counts and counts[0][1] > 0:
            grew.insert(0, (counts[0][0], float(counts[0][1])))
        add("kernel_drops", where, [(t - interval_s, t, n) for t, n in grew], 0, "packets")
    for own in by_machine.values():
        for where, points in sorted(shortfalls(own).items()):
            add("rate_short", where, _held(points, RATE_SHORT_LIMIT, HOLD_S, interval_s),
                RATE_SHORT_LIMIT, "share of the rate missing")
    lost: dict[str, list[tuple[float, float]]] = defaultdict(list)
    cut = {e["args"]["cluster"]: float(e["at"]) for e in events_applied
           if e["kind"] == "cluster_capacity"}
    for probe in probe_rounds or []:
        raw = probe.get("raw_ms") or {}
        at = probe["t"] - offset
        congested = at >= cut.get(str(probe.get("cluster")), float("inf")) - 1.0
        if raw and not congested and \
                not any(start - 1.0 <= at <= end + 2.0 for start, end in downs):
            share = sum(1 for v in raw.values() if v is None) / len(raw)
            lost[probe.get("cluster") or probe.get("node", "?")].append((probe["t"], share))
    for cluster, points in sorted(lost.items()):
        add("probe_loss", cluster, _held(points, PROBE_LOSS_LIMIT, HOLD_S, interval_s),
            PROBE_LOSS_LIMIT, "share unanswered")
    for event in events_applied:
        late = event.get("late_s")
        if late is not None and late > EVENT_LATE_LIMIT_S:
            at = float(event["at"])
            found.append(Violation("event_late", event["kind"], at, round(at + late, 1),
                                   round(late, 3), EVENT_LATE_LIMIT_S, "s"))
    return sorted(found, key=lambda v: (v.from_s, v.invariant))


def shortfalls(samples: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Per queue, (t, share of the told rate not sent) over the intervals it stayed
    backlogged (every reading, or both ends where the sample has no `backlog_min`); 0 for
    the others, so they end a run."""
    found: dict[str, list[tuple[float, float]]] = defaultdict(list)
    backlogged: dict[str, bool] = {}
    for sample in samples:
        for where, queue in (sample.get("queues") or {}).items():
            now = queue["backlog"] > 0
            told = queue.get("told_mbps")
            stayed = queue["backlog_min"] > 0 if "backlog_min" in queue else \
                now and backlogged.get(where, False)
            short = 1.0 - queue["sent_mbps"] / told if told and stayed else 0.0
            found[where].append((sample["t"], short))
            backlogged[where] = now
    return found


WORDS = {"cpu_saturated": "CPU saturated (busy {worst:.0%})",
         "timer_late": "timer lateness p99 {worst_ms:.1f} ms",
         "host_steal": "the host took {worst:.0%} of the CPU time (steal)",
         "host_late": "timer lateness p99 {worst_ms:.1f} ms, none of it queued in the guest "
                      "(the host ran its CPUs late)",
         "delay_late": "delay queue {where} releasing {worst_ms:.1f} ms late",
         "kernel_drops": "kernel dropped {worst:.0f} packets queued at {where}",
         "event_late": "event {where} begun {worst:.1f} s late",
         "probe_loss": "{where}'s RTT probes {worst:.0%} unanswered",
         "rate_short": "link {where} sent {worst:.0%} under its rate while backlogged"}


HOST_INVARIANTS = frozenset({"host_steal", "host_late"})  # the host's doing, not the emulator's
HOST_ATTEMPTS = 3  # a run the host alone let down is worth making up to this many times
STOLEN_TIME_SHOWS = ("timer_late", "cpu_saturated")  # what a guest losing time shows


def limited_by_host(fidelity: dict[str, Any]) -> bool:
    """Whether a run's `fidelity` (summary.json) judged it unfaithful for the host's
    reasons alone: its RTTs right at the end, and every violation one of
    `HOST_INVARIANTS`, or late timers or a saturated CPU within a window in which the host
    was taking over `STEAL_LIMIT` of the CPU time (`host_steal`: a guest losing that much
    time queues its work for it). The host's share comes and goes with its other guests,
    so such a run may be made again (`run_scenario(faithful=True)`, `bench scale`); one
    the emulator itself let down is cdnlab's to mend."""
    violations = fidelity.get("violations") or []
    stolen = [(v.get("where"), v["from_s"], v["to_s"]) for v in violations
              if v.get("invariant") == "host_steal"]

    def hosts(v: dict[str, Any]) -> bool:
        return v.get("invariant") in HOST_INVARIANTS or (
            v.get("invariant") in STOLEN_TIME_SHOWS and
            any(where == v.get("where") and start - HOLD_S <= v["from_s"] and
                v["to_s"] <= end + HOLD_S for where, start, end in stolen))

    return (fidelity.get("ok") is False and fidelity.get("rtt_ok") is not False
            and bool(violations) and all(hosts(v) for v in violations))


MACHINE_WIDE = ("cpu_saturated", "timer_late", "host_late", "host_steal")  # where: a machine


def describe(violations: list[dict[str, Any]]) -> str:
    """`emulator-limited from 21 s to 40 s: CPU saturated (busy 100%), …`, or `faithful`."""
    if not violations:
        return "faithful: no invariant broken"
    start = min(v["from_s"] for v in violations)
    end = max(v["to_s"] for v in violations)
    seen: list[str] = []
    for v in violations:
        text = WORDS[v["invariant"]].format(worst=v["worst"], worst_ms=v["worst"] / 1000,
                                            where=v["where"])
        if v["invariant"] == "cpu_saturated" and v.get("parts"):
            text += ": " + ", ".join(f"{PARTS.get(part, part)} {share:.0%}"
                                     for part, share in v["parts"].items())
        if v["invariant"] in MACHINE_WIDE and v["where"]:
            text += f" on {v['where']}"  # another machine of a split run
        if text not in seen:
            seen.append(text)
    more = f" (and {len(seen) - 4} more)" if len(seen) > 4 else ""
    return f"emulator-limited from {start:g} s to {end:g} s: {', '.join(seen[:4])}{more}"
