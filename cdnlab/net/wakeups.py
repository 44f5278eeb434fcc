"""Prompt wake-ups for the timers that pace emulated packets (engine, network layer).

Every shaped packet waits on a timer: htb's and netem's watchdogs in the kernel, the
nfqueue delay process's `select()` in userspace. A timer is only as prompt as the CPU's
wake-up from idle. In a virtual machine an idle vCPU halts back to the hypervisor, and
waking it can take far longer than a timer tick. Measured on the development VM with
2000 sleeps of 1 ms each:

- CPUs idle: late by 88 µs at the median, 1.3 ms at p99, up to 8 ms.
- Every CPU kept busy: 17 µs at the median, 44 µs at p99.

Late timers lengthen delays and starve htb. That is the most likely cause of two CI runs
on a busier host of this kind, before this module, reading short paths 20–30 % over their
RTT and TCP 13 % below its rate.

This module holds three remedies, and the measurement that decides the first:

- `CpuAwake` starts one spinner per CPU at SCHED_IDLE, the lowest scheduling class. Any
  runnable task preempts it at once, so the emulated hosts keep their CPU time, but the
  CPU never halts. This is the effect of the kernel's `idle=poll`, for one run only.
  It does not help everywhere: in the QEMU tier's guest, whose CPUs are emulated (TCG),
  spinning vCPUs made wake-ups worse, p99 314 µs idle against 2.9 ms kept awake. So
  `auto` (the default) measures both ways and keeps the CPUs awake only where that at
  least halves the share of wake-ups over LATE_US late (here p99 varied from 0.11 to
  2.7 ms idle from one second to the next, against 25–50 µs awake). The spinners are
  recorded in the run's ledger and die with the process that started them
  (PR_SET_PDEATHSIG).
- `precise_timers()` sets the calling process's timer slack to 1 ns; the default is 50 µs.
- `realtime()` moves the calling process to SCHED_FIFO, so a delay process's wake-up
  preempts iperf3, nginx or a player. netem gets the same precedence for free by running
  in softirq context.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from cdnlab.errors import CdnlabError

PR_SET_PDEATHSIG = 1
PR_SET_TIMERSLACK = 29
PR_GET_TIMERSLACK = 30
LATE_US = 100.0  # a wake-up later than this is late (a 1 ms delay off by 10 %)
SPINNER_START_S = 5.0  # at most, for the spinners' interpreters to start
MODES = ("auto", "on", "off")
DELAY_PRIORITY = 10  # SCHED_FIFO priority of the delay processes (1–99; threaded IRQs: 50)


def _prctl(option: int, value: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0))


def precise_timers() -> None:
    """Timer slack 1 ns for the calling thread (and threads it starts later)."""
    _prctl(PR_SET_TIMERSLACK, 1)


def realtime(priority: int = DELAY_PRIORITY) -> str:
    """SCHED_FIFO at `priority` for the calling process; the policy in force, by name.
    A container or cgroup may refuse real-time scheduling: the process then stays in the
    normal class, which works, only with later wake-ups under load."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError:
        return "normal"
    return f"fifo:{priority}"


@dataclass(frozen=True)
class WakeLatency:
    """How late a 1 ms sleep wakes, in microseconds, over `samples` sleeps."""

    median_us: float
    p99_us: float
    max_us: float
    late_share: float  # of the sleeps, those woken over LATE_US late
    samples: int

    @classmethod
    def of(cls, late_us: list[float]) -> WakeLatency:
        late = sorted(late_us)
        share = sum(1 for x in late if x > LATE_US) / len(late)
        return cls(round(late[len(late) // 2], 1), round(late[int(0.99 * len(late))], 1),
                   round(late[-1], 1), round(share, 4), len(late))

    def to_dict(self) -> dict[str, float]:
        return {"median_us": self.median_us, "p99_us": self.p99_us, "max_us": self.max_us,
                "late_share": self.late_share, "samples": self.samples}


def lateness_us(samples: int, sleep_s: float = 0.001) -> list[float]:
    """Sleep `samples` times for `sleep_s`; how late each wake-up was. Timer slack is 1 ns
    meanwhile, so the figures are the machine's, not the default slack's."""
    previous = _prctl(PR_GET_TIMERSLACK, 0)
    precise_timers()
    late: list[float] = []
    try:
        for _ in range(samples):
            started = time.monotonic()
            time.sleep(sleep_s)
            late.append((time.monotonic() - started - sleep_s) * 1e6)
    finally:
        if previous > 0:
            _prctl(PR_SET_TIMERSLACK, previous)
    return late


def wake_latency(samples: int = 300, sleep_s: float = 0.001) -> WakeLatency:
    """`lateness_us`, summarised."""
    return WakeLatency.of(lateness_us(samples, sleep_s))


def spin(cpu: int, parent: int) -> None:
    """The spinner: pinned to `cpu`, lowest priority, gone when `parent` goes."""
    os.sched_setaffinity(0, {cpu})
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        return
    while True:
        pass


class CpuAwake:
    """Keeps every CPU this process may use out of its idle halt, between `start` and
    `stop`. `mode` is `on`, `off` or `auto`: measure wake-ups with the CPUs idle and kept
    awake, and keep them awake only if some idle wake-ups are late and keeping awake at
    least halves their share. The share, unlike p99 (3 of 300 sleeps), is not swayed by
    one stall of the host."""

    def __init__(self, mode: str = "auto") -> None:
        if mode not in MODES:
            raise CdnlabError(f"unknown --cpu-awake mode {mode!r}: use {', '.join(MODES)}")
        self.mode = mode
        self.ledger: Any = None  # a run's Ledger, given to `start`
        self.idle: WakeLatency | None = None  # measured by `auto`, CPUs left to idle
        self.awake: WakeLatency | None = None  # and with the CPUs kept awake
        self.reason = "not started"
        self.kept_awake = False  # the decision, which `describe` reports also after `stop`
        self.spinners: list[subprocess.Popen[bytes]] = []

    @property
    def active(self) -> bool:
        return bool(self.spinners)

    def start(self, ledger: Any = None) -> None:
        """Spinners (recorded in `ledger` if given) as `mode` says; `auto` measures first."""
        self.ledger = ledger
        if self.mode == "off":
            self.reason = "off as asked"
            return
        if self.mode == "on":
            self.reason = "on as asked"
            self._spin()
            self.kept_awake = True
            return
        self._spin()
        self.idle, self.awake = self._compare()
        self.kept_awake = (self.idle.late_share > 0
                           and self.awake.late_share <= self.idle.late_share / 2)
        if self.kept_awake:
            self.reason = "kept awake: at most half as many late wake-ups as idle"
        else:
            self.reason = "left to idle: keeping awake did not halve the late wake-ups"
            self.stop()

    def _spin(self) -> None:
        """One spinner per CPU; returns once every spinner has reached its idle class."""
        parent = os.getpid()
        for cpu in sorted(os.sched_getaffinity(0)):
            spinner = subprocess.Popen(
                [sys.executable, "-m", "cdnlab.net.wakeups", str(cpu), str(parent)],
                stdin=subprocess.DEVNULL)
            self.spinners.append(spinner)
            if self.ledger is not None:
                self.ledger.add_process(spinner.pid, f"CPU {cpu} kept awake")
        deadline = time.monotonic() + SPINNER_START_S
        for spinner in self.spinners:
            while time.monotonic() < deadline and spinner.poll() is None:
                try:
                    if os.sched_getscheduler(spinner.pid) == os.SCHED_IDLE:
                        break
                except OSError:
                    break
                time.sleep(0.01)

    def _compare(self, rounds: int = 3, per_round: int = 100) -> tuple[WakeLatency, WakeLatency]:
        """Wake-ups with the spinners paused (SIGSTOP) and running, in alternate rounds, so
        a busy moment of the host falls on both measures alike."""
        idle: list[float] = []
        awake: list[float] = []
        for _ in range(rounds):
            self._signal(signal.SIGSTOP)
            idle += lateness_us(per_round)
            self._signal(signal.SIGCONT)
            awake += lateness_us(per_round)
        return WakeLatency.of(idle), WakeLatency.of(awake)

    def _signal(self, signum: int) -> None:
        for spinner in self.spinners:
            if spinner.poll() is None:
                spinner.send_signal(signum)

    def stop(self) -> None:
        for spinner in self.spinners:
            if spinner.poll() is None:
                spinner.kill()
            spinner.wait()
        self.spinners.clear()

    def describe(self) -> dict[str, Any]:
        """For run.json and the fidelity report: the mode, the decision and the measures."""
        return {"mode": self.mode, "active": self.kept_awake, "reason": self.reason,
                "idle_wake_latency": self.idle.to_dict() if self.idle else None,
                "awake_wake_latency": self.awake.to_dict() if self.awake else None}


def summary(described: dict[str, Any] | None) -> str:
    """`CPUs kept awake; wake-ups over 100 µs late: 21.3 % idle, 0.3 % awake` from
    `CpuAwake.describe()`, for one-line headers; empty for None."""
    if not described:
        return ""
    idle, awake = described.get("idle_wake_latency"), described.get("awake_wake_latency")
    figures = (f"; wake-ups over {LATE_US:g} µs late: {100 * idle['late_share']:.1f} % idle, "
               f"{100 * awake['late_share']:.1f} % awake" if idle and awake else "")
    return f"CPUs {'kept awake' if described['active'] else 'left to idle'}{figures}"


if __name__ == "__main__":
    spin(int(sys.argv[1]), int(sys.argv[2]))
