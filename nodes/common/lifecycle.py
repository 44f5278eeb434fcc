"""Process lifecycle for node programs: SIGTERM ends the program cleanly, and every child a
node program starts (nginx, ffmpeg) dies with it, even if the program itself is killed.

The engine records only the node program's PID; `PR_SET_PDEATHSIG` makes the kernel end the
children when that process goes, so nothing outlives a run by accident.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections.abc import Sequence
from types import FrameType
from typing import Any

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """In a child, between fork and exec: get `signum` (SIGKILL) when the parent thread
    exits."""
    _libc.prctl(_PR_SET_PDEATHSIG, signum)


def spawn_child(argv: Sequence[str], nice: int = 0, idle: bool = False,
                **popen: Any) -> subprocess.Popen[Any]:
    """A child that dies with this process; `nice` above 0 lowers its CPU priority, and
    `idle` puts it in SCHED_IDLE: it runs only on CPU time no other process wants, and any
    other process that wakes takes its CPU at once (niceness alone let a busy child keep
    a core for milliseconds: README, "Timers that fire on time")."""
    def prepare() -> None:
        die_with_parent()
        if nice:
            os.nice(nice)
        if idle:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))

    return subprocess.Popen(list(argv), preexec_fn=prepare, **popen)


class Terminated(Exception):
    """Raised in the main thread on SIGTERM, so `finally` blocks run."""


def _raise_terminated(_signum: int, _frame: FrameType | None) -> None:
    raise Terminated()


def exit_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, _raise_terminated)
