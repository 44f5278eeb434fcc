"""The node programs' batch work yields the CPU: a transcode's ffmpeg runs in SCHED_IDLE
(`nodes.common.conventions.TRANSCODE_IDLE`), so every timer, server and player that wakes
takes its CPU at once, and a child spawned without `idle` keeps the normal class."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from nodes.common.lifecycle import spawn_child
from nodes.origin.progress import Progress
from nodes.origin.transcode import run_ffmpeg

POLICY = [sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"]


def children() -> list[int]:
    return [int(pid) for task in Path("/proc/self/task").iterdir()
            for pid in (task / "children").read_text().split()]


def test_spawn_child_idle_and_not() -> None:
    for idle, policy in ((True, os.SCHED_IDLE), (False, os.SCHED_OTHER)):
        child = spawn_child(POLICY, idle=idle, stdout=subprocess.PIPE, text=True)
        out, _ = child.communicate(timeout=30)
        assert int(out) == policy, (idle, out)


class PolicyOnProgress(Progress):
    """Reads the scheduling policy of this process's children as ffmpeg reports progress."""

    def __init__(self) -> None:
        super().__init__("policy", tty=False)
        self.seen: set[int] = set()

    def update(self, fraction: float) -> None:
        for pid in children():
            with contextlib.suppress(OSError):  # gone since listed
                self.seen.add(os.sched_getscheduler(pid))


def test_a_transcodes_ffmpeg_runs_in_sched_idle() -> None:
    progress = PolicyOnProgress()
    run_ffmpeg(["ffmpeg", "-v", "error", "-progress", "pipe:1", "-re", "-f", "lavfi", "-i",
                "testsrc2=size=320x240:rate=25", "-t", "2", "-f", "null", "-"], 2.0, progress)
    assert progress.seen == {os.SCHED_IDLE}, progress.seen
