"""What one browser viewer costs the machine: CPU time and memory of its whole process tree
(the driver, Chromium and every Chromium child), sampled from /proc.

    cpu_s            user + system time of every process seen in the tree (each process's
                     last reading, so a child that exited keeps what it used until then)
    cpu_cores_mean   cpu_s over the session's wall time
    pss_peak_mb      the largest sum of the tree's proportional set sizes (smaps_rollup):
                     shared pages split among their sharers, so N viewers' PSS adds up to
                     what they take together, which summing RSS would overstate
    rss_peak_mb      the largest sum of resident sets, for comparison
    processes_peak   the most processes at once
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from nodes.common.procfs import TICKS_PER_S, process_times


def tree(root: int) -> list[int]:
    """`root` and its descendants, from /proc/<pid>/task/<tid>/children."""
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        found.append(pid)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    frontier += [int(c) for c in (task / "children").read_text().split()]
    return found


def _memory_kb(pid: int) -> tuple[int, int] | None:
    """(PSS, RSS) in kB from smaps_rollup."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("Pss", "Rss"):
                values[name] = int(rest.split()[0])
    except (OSError, ValueError):
        return None
    return values.get("Pss", 0), values.get("Rss", 0)


class TreeUsage:
    """Samples one process tree; `figures()` at the end."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.started = time.monotonic()
        self.ticks: dict[tuple[int, int], int] = {}  # (pid, start time) → last ticks
        self.pss_peak_kb = 0
        self.rss_peak_kb = 0
        self.processes_peak = 0

    def sample(self) -> None:
        pids = tree(self.root)
        pss = rss = 0
        for pid in pids:
            times = process_times(pid)
            if times is not None:
                ticks, started = times
                self.ticks[(pid, started)] = ticks
            memory = _memory_kb(pid)
            if memory is not None:
                pss += memory[0]
                rss += memory[1]
        self.pss_peak_kb = max(self.pss_peak_kb, pss)
        self.rss_peak_kb = max(self.rss_peak_kb, rss)
        self.processes_peak = max(self.processes_peak, len(pids))

    def figures(self) -> dict[str, float | int]:
        wall = time.monotonic() - self.started
        cpu_s = sum(self.ticks.values()) / TICKS_PER_S
        return {"cpu_s": round(cpu_s, 2),
                "cpu_cores_mean": round(cpu_s / wall, 3) if wall > 0 else 0.0,
                "pss_peak_mb": round(self.pss_peak_kb / 1024, 1),
                "rss_peak_mb": round(self.rss_peak_kb / 1024, 1),
                "processes_peak": self.processes_peak}

