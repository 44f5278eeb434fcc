"""Byte counters read on another machine: the one command a sample sends there, run here
by a local shell standing in for ssh, reads the same kernel counters as direct reads."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from cdnlab.measure.counters import _proc_net_dev, _remote_counts


class HereShell:
    """`MachineShell.run`'s signature, running the command on this machine."""

    def run(self, argv: list[str], stdin: str | None = None,
            timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False,
                              timeout=timeout_s)


def test_one_command_reads_namespaces_and_root_ports() -> None:
    pid = os.getpid()
    reads: list[Any] = [("l1", "core", "lo", pid, True), ("l2", "core", "lo", None, False)]
    root_rx = Path("/sys/class/net/lo/statistics/rx_bytes")
    before, root_before = _proc_net_dev(pid)["lo"], int(root_rx.read_text())
    found = _remote_counts(HereShell(), reads)
    after, root_after = _proc_net_dev(pid)["lo"], int(root_rx.read_text())
    assert before[0] <= found[(pid, "lo")][0] <= after[0]
    assert before[1] <= found[(pid, "lo")][1] <= after[1]
    assert root_before <= found[(None, "lo")][0] <= root_after
    assert _remote_counts(HereShell(), [("l3", "core", "nope0", 999999999, True)]) == {}
