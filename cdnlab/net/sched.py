"""Scheduling primitives for prompt timers (engine, network layer): timer slack, real-time
priority for the delay processes, and the SCHED_IDLE spinner that keeps a CPU awake.
Why they matter, with the measurements, is in the README ("Timers that fire on time")."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
PR_SET_TIMERSLACK = 29
PR_GET_TIMERSLACK = 30
DELAY_PRIORITY = 10  # SCHED_FIFO priority of the delay processes (1–99; threaded IRQs: 50)


def prctl(option: int, value: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0))


def precise_timers() -> None:
    """Timer slack 1 ns for the calling thread (and threads it starts later)."""
    prctl(PR_SET_TIMERSLACK, 1)


def realtime(priority: int = DELAY_PRIORITY) -> str:
    """SCHED_FIFO at `priority` for the calling process; the policy in force, by name.
    A container or cgroup may refuse real-time scheduling: the process then stays in the
    normal class, which works, only with later wake-ups under load."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError:
        return "normal"
    return f"fifo:{priority}"


def spin(cpu: int, parent: int) -> None:
    """The spinner: pinned to `cpu`, lowest priority, gone when `parent` goes."""
    os.sched_setaffinity(0, {cpu})
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        return
    while True:
        pass



if __name__ == "__main__":
    spin(int(sys.argv[1]), int(sys.argv[2]))
