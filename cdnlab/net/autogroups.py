"""The kernel's per-session CPU groups (autogroups), switched off while a run is up.

With `kernel.sched_autogroup_enabled` on (sched(7), "The autogroup feature"; Debian's
default), every session (setsid) is a task group of its own, and the CPU is shared fairly
among *groups* before it is shared among their tasks. Mininet starts every host's shell
and every program it runs in a new session, so in a run each program is such a group: a
SCHED_IDLE transcode, a Chromium at nice 10 or a CPU-awake spinner then competes with the
players, servers and the monitor as a whole group at full weight, and its niceness or idle
policy counts only against its own session (kernel/sched/fair.c: wakeup preemption of an
idle task is judged between the entities of a common group). A run turns autogroups off
before it starts any process, so the run's processes share one group and the priorities
the emulator gives them hold; README, "Timers that fire on time".

Machine-wide state, undone exactly: the first run that switches autogroups off writes the
value it found to `autogroups.was` beside the ledgers, and each run's ledger says it
relies on it (`LedgerRecord.autogroups_off`). The value comes back when the last run that
relies on it is undone (its teardown or `cdnlab clean`), and not before; a machine where
they were off already is left as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

SYSCTL = Path("/proc/sys/kernel/sched_autogroup_enabled")
WAS = "autogroups.was"  # in the ledger directory: the value before cdnlab switched them off


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One switcher at a time on this machine (runs starting and ending together)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def enabled(sysctl: Path = SYSCTL) -> bool | None:
    """Whether the kernel groups tasks by session; None on a kernel without autogroups."""
    try:
        return sysctl.read_text().strip() != "0"
    except OSError:
        return None


def switch_off(directory: Path, sysctl: Path = SYSCTL) -> bool:
    """Autogroups off for a run; whether this run relies on cdnlab having switched them off
    (so its undo may switch them back). False where they were off before any run, or the
    kernel has none, or the knob is not writable (then the run goes on with them)."""
    with _locked(directory):
        was = directory / WAS
        if enabled(sysctl) is not True:
            return was.exists()  # off by another run (which wrote down the value), or not ours
        try:
            was.write_text(sysctl.read_text())
            sysctl.write_text("0\n")
        except OSError:
            was.unlink(missing_ok=True)
            return False
        return True


def describe(switched_off: bool, sysctl: Path = SYSCTL) -> str | None:
    """For a run's record: `off for the run`, `off` (before any run), `on` (could not be
    switched off) or None (a kernel without autogroups)."""
    state = enabled(sysctl)
    if state is None:
        return None
    return "on" if state else "off for the run" if switched_off else "off"


def switch_back(directory: Path, others_rely: Callable[[], bool],
                sysctl: Path = SYSCTL) -> str | None:
    """The value from before cdnlab switched autogroups off, restored unless another live
    run relies on it (`others_rely`, asked under the lock); the line to report, or None."""
    if not (directory / WAS).exists():
        return None
    with _locked(directory):
        was = directory / WAS
        if not was.exists() or others_rely():
            return None
        value = was.read_text().strip()
        try:
            sysctl.write_text(value + "\n")
        except OSError:
            return None
        was.unlink()
        return f"kernel.sched_autogroup_enabled back to {value}"
