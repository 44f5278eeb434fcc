"""The run monitor: the emulator's own invariants, sampled for the whole run.

A faithful emulation needs the machine to keep up with it; when it does not, the emulator
and not the emulated network sets the result (Handigol et al., "Reproducible Network
Experiments Using Container-Based Emulation", CoNEXT 2012, §3: monitor the invariants
during the experiment). Every `interval_s` the monitor process (at normal priority, like
the node programs) writes one `sample` line to `events/fidelity.jsonl`:

    cpu_busy          per core, the share of the interval not spent in an idle state
                      (cpuidle's residency, µs; /proc/stat's ticks where a core has no
                      cpuidle driver: `core_idle_us` says why), less what the engine's own
                      SCHED_IDLE spinners took (`--cpu-awake`: they only keep the core out
                      of its idle halt and yield to anything)
    cpu_busy_mean     their mean
    steal_share       the share of all cores' time the hypervisor took from this machine
                      over the interval (/proc/stat's steal): a guest kept waiting, the
                      emulation with it; a host that caps the guest's CPU throttles it for
                      up to its period once it is used up (README, "Timers that fire on
                      time")
    runnable          tasks running or ready to run (procs_running, /proc/stat)
    run_cpu_share     CPU time of the run's own processes (its cgroup's cpu.stat, less
                      the spinners) over the interval times the cores: what the emulation
                      itself took; None without a run cgroup
    cpu_by_part       the same share for each part of the run (`cdnlab.net.cgroup.PARTS`:
                      each child cgroup's cpu.stat; `engine` is what the run cgroup's own
                      processes took, less the spinners); absent without a run cgroup
    interval_s        the seconds the sample covers
    wake_p99_us, wake_max_us
                      how late `WAKE_SAMPLES` sleeps of 1 ms woke in this process (the
                      figure `bench wakeups` measures), p99 and max over the interval
    wake_host_p99_us  the p99 of the same sleeps' lateness less what each spent woken but
                      waiting in this machine's run queue (`lateness.timed_sleeps`): what
                      the guest's own scheduler does not explain, so the host's (it ran
                      the virtual CPU late); None where the kernel keeps no such account
    queues            per shaped link direction with a rate (`<link>:<direction>`), its
                      kernel queue (`cdnlab.measure.qdisc`, htb over a FIFO or netem):
                      sent_mbps (what left it over the interval), told_mbps (its htb
                      class's rate now), backlog (bytes) and qlen (packets) now,
                      backlog_min (the least backlog of `QUEUE_CHECKS` + 1 readings spread
                      over the interval, its start included: > 0 means the queue stayed
                      backlogged), and the drops and overlimits of the interval

Judging the samples is `cdnlab.measure.verdict`; the userspace delay processes report
their own lateness and drops beside it (`queue_stats` in each link's log).

In a split run (`cdnlab.machines`) every other machine runs the same sampler for itself,
started over ssh under the run's tether, on its own cores, its own run cgroup and the
queues of its own nodes, into `events/fidelity.<machine>.jsonl`; its samples carry
`machine`, and the verdict judges each machine's samples apart.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from cdnlab.measure.lateness import timed_sleeps
from cdnlab.measure.qdisc import QdiscReader, QueueStats, Target
from cdnlab.net.cgroup import ENGINE, RunCgroup
from cdnlab.net.shaping.base import machine_of
from nodes.common.lifecycle import spawn_child
from nodes.common.procfs import TICKS_PER_S, process_ticks, steal_share, steal_ticks

WAKE_SAMPLES = 20
INTERVAL_S = 1.0
QUEUE_CHECKS = 4  # readings of each queue's backlog within an interval, besides its ends


def cpu_times() -> tuple[list[tuple[int, int]], int]:
    """Per core (busy, total) jiffies, and procs_running, from /proc/stat."""
    cores: list[tuple[int, int]] = []
    running = 0
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith("cpu") and line[3:4].isdigit():
                values = [int(v) for v in line.split()[1:]]
                idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
                total = sum(values[:8])  # user … steal; guest time is inside user
                cores.append((total - idle, total))
            elif line.startswith("procs_running"):
                running = int(line.split()[1])
    return cores, running


def core_idle_us() -> list[int] | None:
    """Per core, in CPU number order, the microseconds it has spent in its idle states
    since boot (cpuidle's per-state `time`, which the kernel keeps at µs precision); None
    where a core has no cpuidle driver. /proc/stat's busy figures come from 10 ms ticks,
    and a tickless kernel takes no tick on a core that wakes for a packet and halts again
    before the next one: under light, bursty load they miss most of the busy time."""
    cores = sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*"),
                   key=lambda core: int(core.name[3:]))
    found = []
    for core in cores:
        states = list((core / "cpuidle").glob("state[0-9]*/time"))
        if not states:
            return None
        found.append(sum(int(state.read_text()) for state in states))
    return found or None


def idle_residency_us() -> int | None:
    """`core_idle_us`, summed over the cores."""
    cores = core_idle_us()
    return None if cores is None else sum(cores)


def core_busy(cores: list[tuple[int, int]], now_cores: list[tuple[int, int]],
              idle: list[int] | None, now_idle: list[int] | None,
              spun: dict[int, int], now_spun: dict[int, int], seconds: float) -> list[float]:
    """Each core's busy share over an interval, less its spinner's ticks: from the cores'
    idle residency over the interval's wall time where both readings have it for every
    core, else from /proc/stat's (busy, total) ticks."""
    spinning = [(now_spun.get(cpu, 0) - spun.get(cpu, 0)) for cpu in range(len(now_cores))]
    if idle is not None and now_idle is not None and len(idle) == len(now_idle) == \
            len(now_cores) and seconds > 0:
        return [round(min(max(seconds - (i1 - i0) / 1e6 - spin / TICKS_PER_S, 0.0)
                          / seconds, 1.0), 4)
                for i0, i1, spin in zip(idle, now_idle, spinning, strict=True)]
    return [round(max(busy1 - busy0 - spin, 0) / max(total1 - total0, 1), 4)
            for (busy0, total0), (busy1, total1), spin
            in zip(cores, now_cores, spinning, strict=False)]


def part_usage_us(cgroup: Path | None) -> dict[str, int]:
    """Each child cgroup's (part's) usage_usec so far."""
    if cgroup is None:
        return {}
    found = {}
    for part in RunCgroup(cgroup).parts():
        usage = cgroup_usage_us(part)
        if usage is not None:
            found[part.name] = usage
    return found


def part_shares(before: dict[str, int], after: dict[str, int], total_us: int,
                spinning_s: float, capacity_s: float) -> dict[str, float]:
    """Each part's share of all cores over an interval; `engine` takes the run's own rest
    (its total less its parts, less the spinners)."""
    used = {part: max(after[part] - before.get(part, 0), 0) / 1e6 for part in after}
    used[ENGINE] = max(total_us / 1e6 - sum(used.values()) - spinning_s, 0.0)
    return {part: round(seconds / capacity_s, 4) for part, seconds in used.items()
            if capacity_s > 0}


def cgroup_usage_us(cgroup: Path | None) -> int | None:
    if cgroup is None:
        return None
    try:
        for line in (cgroup / "cpu.stat").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "usage_usec":
                return int(value)
    except OSError:
        return None
    return None


class Sampler:
    """The sampling loop, run in a process of its own (`python -m cdnlab.measure.monitor`)
    so that its timer lateness is the machine's, not the engine's interpreter lock's."""

    def __init__(self, path: Path, t0: float, cgroup: Path | None,
                 spinners: dict[int, int] | None = None, interval_s: float = INTERVAL_S,
                 queues: list[Target] | None = None, machine: str | None = None) -> None:
        """`spinners`: CPU → PID of a process whose time counts as idle (`CpuAwake`);
        `queues`: the shaped links' egress interfaces to read; `machine`: the machine
        sampled, in a split run (not the head)."""
        self.path, self.t0, self.cgroup, self.interval_s = path, t0, cgroup, interval_s
        self.machine = machine
        self.spinners = dict(spinners or {})
        self.queues = QdiscReader(queues) if queues else None
        self.stopping = threading.Event()
        self._out: TextIO | None = None
        self._lowest: dict[str, int] = {}
        self._last_spun: dict[int, int] = {}

    def run(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            self._out = out
            cores, _ = cpu_times()
            stolen = steal_ticks()
            idle = core_idle_us()
            spun = self._spun()
            usage, at = cgroup_usage_us(self.cgroup), time.monotonic()
            parts = part_usage_us(self.cgroup)
            queued = self._queues()
            while not self._wait_reading_backlogs(queued):
                slept = timed_sleeps(WAKE_SAMPLES)
                now_cores, runnable = cpu_times()
                now_stolen = steal_ticks()
                now_idle = core_idle_us()
                now_spun = self._spun()
                now_usage, now = cgroup_usage_us(self.cgroup), time.monotonic()
                now_parts = part_usage_us(self.cgroup)
                busy = core_busy(cores, now_cores, idle, now_idle, spun, now_spun, now - at)
                spinning_s = (sum(now_spun.values()) - sum(spun.values())) / TICKS_PER_S
                share = None if usage is None or now_usage is None else round(max(
                    (now_usage - usage) / 1e6 - spinning_s, 0.0) /
                    ((now - at) * max(len(busy), 1)), 4)
                late = sorted(x for x, _ in slept)
                host = sorted(max(x - q, 0.0) for x, q in slept if q is not None)
                now_queued = self._queues()
                by_queue = queue_figures(queued, now_queued, now - at)
                by_part = {} if usage is None or now_usage is None else {
                    "cpu_by_part": part_shares(parts, now_parts, now_usage - usage, spinning_s,
                                               (now - at) * max(len(busy), 1))}
                for label, low in self._lowest.items():
                    if label in now_queued:
                        low = min(low, now_queued[label].backlog)
                    if label in by_queue:
                        by_queue[label]["backlog_min"] = low
                self._write({"event": "sample", "cpu_busy": busy,
                             "cpu_busy_mean": round(sum(busy) / max(len(busy), 1), 4),
                             "steal_share": steal_share(stolen, now_stolen),
                             "runnable": runnable, "run_cpu_share": share,
                             "interval_s": round(now - at, 3)} | by_part | {
                             "wake_p99_us": round(late[int(0.99 * (len(late) - 1))], 1),
                             "wake_max_us": round(late[-1], 1),
                             "wake_host_p99_us": round(host[int(0.99 * (len(host) - 1))], 1)
                             if len(host) == len(late) else None}
                            | ({"queues": by_queue} if self.queues is not None else {}))
                cores, usage, at, spun, parts = now_cores, now_usage, now, now_spun, now_parts
                idle, stolen = now_idle, now_stolen
                queued = now_queued
            if self.queues is not None:
                self.queues.close()
        self._out = None

    def _wait_reading_backlogs(self, start: dict[str, QueueStats]) -> bool:
        """Wait out the interval (less the wake-up sampling), reading every queue's backlog
        `QUEUE_CHECKS` times on the way; the least of each, from `start` on, goes to
        `_lowest`. True once stopping."""
        self._lowest = {label: stats.backlog for label, stats in start.items()}
        step = max(0.0, self.interval_s - WAKE_SAMPLES * 0.0012) / (
            QUEUE_CHECKS + 1 if self.queues is not None else 1)
        for _ in range(QUEUE_CHECKS if self.queues is not None else 0):
            if self.stopping.wait(step):
                return True
            for label, stats in self._queues().items():
                self._lowest[label] = min(self._lowest.get(label, stats.backlog), stats.backlog)
        return self.stopping.wait(step)

    def _queues(self) -> dict[str, QueueStats]:
        if self.queues is None:
            return {}
        try:
            return self.queues.read()
        except OSError:  # a namespace gone at teardown: nothing to read any more
            return {}

    def _spun(self) -> dict[int, int]:
        """Each spinner's ticks so far; a spinner stopped mid-run (`CpuAwake.watch`) keeps
        its last reading, so its CPU counts as idle up to that reading and not after."""
        spun = {cpu: process_ticks(pid) or self._last_spun.get(cpu, 0)
                for cpu, pid in self.spinners.items()}
        self._last_spun = spun
        return spun

    def _write(self, record: dict[str, Any]) -> None:
        assert self._out is not None
        line = {"t": round(time.time() - self.t0, 3), "node": "monitor"} | record
        if self.machine:
            line["machine"] = self.machine
        self._out.write(json.dumps(line, separators=(",", ":")) + "\n")
        self._out.flush()



def queue_figures(before: dict[str, QueueStats], after: dict[str, QueueStats],
                  seconds: float) -> dict[str, dict[str, Any]]:
    """Each queue's interval: what was sent and dropped over it, where it stands now."""
    figures = {}
    for label, now in after.items():
        was = before.get(label)
        if was is None or seconds <= 0:
            continue
        figures[label] = {
            "sent_mbps": round(max(now.bytes - was.bytes, 0) * 8 / seconds / 1e6, 3),
            "told_mbps": None if now.rate_bps is None else round(now.rate_bps / 1e6, 3),
            "backlog": now.backlog, "qlen": now.qlen,
            "drops": max(now.drops - was.drops, 0),
            "overlimits": max(now.overlimits - was.overlimits, 0)}
    return figures


def queue_targets(links: dict[str, Any], machine: str | None = None) -> list[Target]:
    """The egress interface of every shaped link direction with a rate (an htb class), in
    its node's namespace (a switch's is the root namespace), on one machine: this one, or
    in a split run the one named (its nodes' PIDs are that machine's)."""
    targets = []
    for name, link in links.items():
        for direction, shape in link.shapes.items():
            if shape.rate is None:
                continue
            node, intf = link.egress(direction)
            if machine_of(node) != machine:
                continue
            pid = node.pid if getattr(node, "inNamespace", True) else None
            targets.append(Target(f"{name}:{direction}", pid, intf))
    return targets


class RunMonitor:
    """The engine's handle on the sampler process: started with the network, stopped
    before the results (SIGTERM; it dies with the engine in any case)."""

    def __init__(self, path: Path, t0: float, cgroup: Path | None,
                 spinners: dict[int, int] | None = None, interval_s: float = INTERVAL_S,
                 ledger: Any = None, queues: list[Target] | None = None,
                 machine: str | None = None, machines: Any = None) -> None:
        """`machine`, `machines`: sample that other machine of a split run, started there
        through `machines` (cdnlab.machines.remote.Machines)."""
        queue_file = path.with_suffix(".queues.json")
        if queues:
            queue_file.parent.mkdir(parents=True, exist_ok=True)
            queue_file.write_text(json.dumps([asdict(q) for q in queues]))
        self.argv = [sys.executable, "-m", "cdnlab.measure.monitor", "--out", str(path),
                     "--t0", f"{t0:.6f}", "--interval", f"{interval_s:g}",
                     *(["--cgroup", str(cgroup)] if cgroup else []),
                     *(["--queues", str(queue_file)] if queues else []),
                     *(["--machine", machine] if machine else []),
                     *(f"--spinner={cpu}={pid}" for cpu, pid in (spinners or {}).items())]
        self.ledger = ledger
        self.machine, self.machines = machine, machines
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.machine:
            self.process = self.machines.popen(self.machine, self.argv)
        else:
            self.process = spawn_child(self.argv, stdin=subprocess.DEVNULL)
        if self.ledger is not None:
            where = f" of {self.machine}" if self.machine else ""
            self.ledger.add_process(self.process.pid, f"run monitor{where}")
            self.ledger.join_part(self.process.pid, "monitor")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cdnlab.measure.monitor")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--t0", type=float, required=True)
    parser.add_argument("--interval", type=float, default=INTERVAL_S)
    parser.add_argument("--cgroup", type=Path)
    parser.add_argument("--spinner", action="append", default=[], help="CPU=PID")
    parser.add_argument("--queues", type=Path, help="JSON list of queue targets to read")
    parser.add_argument("--machine", help="the machine sampled (a split run's other one)")
    args = parser.parse_args(argv)
    spinners = {int(c): int(p) for c, _, p in (s.partition("=") for s in args.spinner)}
    queues = [Target(**t) for t in json.loads(args.queues.read_text())] if args.queues \
        else None
    sampler = Sampler(args.out, args.t0, args.cgroup, spinners, args.interval, queues,
                      args.machine)
    signal.signal(signal.SIGTERM, lambda *_: sampler.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: sampler.stopping.set())
    sampler.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
