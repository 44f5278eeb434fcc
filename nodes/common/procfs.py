"""What /proc says of a process, read the one way every program here reads it: its CPU time
in clock ticks and its start time (so a reused PID is seen as a new process); and of the
machine, the time its hypervisor took from it. Used by the engine's run monitor, the CPU
keep-awake decision and the browser viewers' usage sampler."""

from __future__ import annotations

import os
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")  # the unit of /proc/stat and /proc/PID/stat


def process_times(pid: int) -> tuple[int, int] | None:
    """(utime + stime, start time) of a process, both in clock ticks (fields 14, 15 and 22
    of /proc/PID/stat); None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def process_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks; 0 once it is gone."""
    times = process_times(pid)
    return times[0] if times else 0


def steal_ticks() -> tuple[int, int]:
    """(steal, total) clock ticks of all cores since boot, from /proc/stat's `cpu` line:
    steal is the time a virtual CPU wanted to run and its hypervisor ran something else
    (another guest, or nothing: a host that caps the guest's CPU throttles it); 0 on
    bare metal."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return (values[7] if len(values) > 7 else 0), sum(values[:8])


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of all cores' time the hypervisor took between two `steal_ticks`."""
    return round(max(after[0] - before[0], 0) / max(after[1] - before[1], 1), 4)
