"""The ledger removes exactly what it recorded, and only for runs whose owner died."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cdnlab.net.ledger import Ledger, clean_stale, process_start_time


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_clean_stale_undoes_a_dead_owners_ledger_only(tmp_path: Path) -> None:
    ledgers = tmp_path / "ledgers"
    leftover_dir = tmp_path / "run-dir"
    leftover_dir.mkdir()
    sleeper = subprocess.Popen(["sleep", "60"])
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        orphan = Ledger("orphan", ledgers)
        orphan.add_process(sleeper.pid, "a node shell")
        orphan.add_directory(leftover_dir)
        orphan.record.owner_pid = dead_pid()
        orphan.save()
        alive = Ledger("alive", ledgers)  # owned by this test process
        alive.add_process(bystander.pid, "someone else's")

        removed = clean_stale(ledgers)

        assert any("process" in line and str(sleeper.pid) in line for line in removed)
        assert any("directory" in line for line in removed)
        assert sleeper.wait(timeout=5) != 0
        assert not leftover_dir.exists()
        assert not (ledgers / "orphan.json").exists()
        assert bystander.poll() is None and (ledgers / "alive.json").exists()
    finally:
        for process in (sleeper, bystander):
            process.kill()
            process.wait()


def test_a_reused_pid_is_not_killed(tmp_path: Path) -> None:
    survivor = subprocess.Popen(["sleep", "60"])
    try:
        ledger = Ledger("reuse", tmp_path)
        ledger.add_process(survivor.pid, "pretend")
        ledger.record.processes[0]["start"] = (process_start_time(survivor.pid) or 0) + 1
        assert ledger.close() == []
        assert survivor.poll() is None
    finally:
        survivor.kill()
        survivor.wait()
