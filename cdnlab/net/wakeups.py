"""Prompt wake-ups for the timers that pace emulated packets (engine, network layer).

Every shaped packet waits on a timer: htb's and netem's watchdogs in the kernel, the
nfqueue delay process's `select()` in userspace. A timer is only as prompt as the CPU's
wake-up from idle. In a virtual machine an idle vCPU halts back to the hypervisor, and
waking it can take far longer than a timer tick. Measured on the development VM with
2000 sleeps of 1 ms each:

- CPUs idle: late by 88 µs at the median, 1.3 ms at p99, up to 8 ms.
- Every CPU kept busy: 17 µs at the median, 44 µs at p99.

Late timers lengthen delays and starve htb: on such a host, short paths read 20–30 %
over their RTT and TCP ran 13 % below its rate.

This module holds three remedies, and the measurement that decides the first:

- `CpuAwake` starts one spinner per CPU at SCHED_IDLE, the lowest scheduling class. Any
  runnable task preempts it at once, so the emulated hosts keep their CPU time, but the
  CPU never halts. This is the effect of the kernel's `idle=poll`, for one run only.
  `auto` (the default) keeps the CPUs awake in a virtual machine, and elsewhere where
  `wake_latency()` finds p99 above `AUTO_P99_US`. A sub-second measurement cannot decide
  it alone: here its p99 ranged from 0.11 to 2.7 ms from one second to the next. The
  spinners are recorded in the run's ledger and die with the process that started them
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

from cdnlab.capabilities import detect
from cdnlab.errors import CdnlabError

PR_SET_PDEATHSIG = 1
PR_SET_TIMERSLACK = 29
PR_GET_TIMERSLACK = 30
AUTO_P99_US = 250.0  # wake-up lateness at p99 above which `auto` keeps the CPUs awake
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
    samples: int

    def to_dict(self) -> dict[str, float]:
        return {"median_us": self.median_us, "p99_us": self.p99_us, "max_us": self.max_us,
                "samples": self.samples}


def wake_latency(samples: int = 400, sleep_s: float = 0.001) -> WakeLatency:
    """Sleep `samples` times for `sleep_s` and measure how late each wake-up is. Timer slack
    is 1 ns meanwhile, so the figure is the machine's, not the default slack's."""
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
    late.sort()
    return WakeLatency(round(late[len(late) // 2], 1), round(late[int(0.99 * len(late))], 1),
                       round(late[-1], 1), samples)


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
    `stop`. `mode` is `on`, `off` or `auto` (on where idle wake-ups are measured slow)."""

    def __init__(self, mode: str = "auto", ledger: Any = None) -> None:
        if mode not in MODES:
            raise CdnlabError(f"unknown --cpu-awake mode {mode!r}: use {', '.join(MODES)}")
        self.mode = mode
        self.ledger = ledger
        self.measured: WakeLatency | None = None  # idle wake-ups, measured by `auto`
        self.reason = "not started"
        self.spinners: list[subprocess.Popen[bytes]] = []

    @property
    def active(self) -> bool:
        return bool(self.spinners)

    def start(self) -> None:
        if self.mode == "off":
            self.reason = "off as asked"
            return
        if self.mode == "on":
            self.reason = "on as asked"
        else:
            self.measured = wake_latency()
            if detect().virtual_machine:
                self.reason = "virtual machine: an idle vCPU halts to the hypervisor"
            elif self.measured.p99_us > AUTO_P99_US:
                self.reason = f"idle wake-ups late by over {AUTO_P99_US:g} µs at p99"
            else:
                self.reason = "idle wake-ups prompt"
                return
        parent = os.getpid()
        for cpu in sorted(os.sched_getaffinity(0)):
            spinner = subprocess.Popen(
                [sys.executable, "-m", "cdnlab.net.wakeups", str(cpu), str(parent)],
                stdin=subprocess.DEVNULL)
            self.spinners.append(spinner)
            if self.ledger is not None:
                self.ledger.add_process(spinner.pid, f"CPU {cpu} kept awake")

    def stop(self) -> None:
        for spinner in self.spinners:
            if spinner.poll() is None:
                spinner.kill()
            spinner.wait()
        self.spinners.clear()

    def describe(self) -> dict[str, Any]:
        """For run.json and the fidelity report: the mode, the decision and the measure."""
        return {"mode": self.mode, "active": self.active, "reason": self.reason,
                "idle_wake_latency": self.measured.to_dict() if self.measured else None}


if __name__ == "__main__":
    spin(int(sys.argv[1]), int(sys.argv[2]))
