"""What /proc says of a process, read the one way every program here reads it: its CPU time
in clock ticks and its start time (so a reused PID is seen as a new process). Used by the
engine's run monitor and by the browser viewers' usage sampler."""

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
