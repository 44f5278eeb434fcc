"""The ledger removes exactly what it recorded, and only for runs whose owner died."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cdnlab.net.ledger import Ledger, clean_stale, is_mount_point, process_start_time


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


def test_a_recorded_mount_is_unmounted_before_its_directory_goes(tmp_path: Path) -> None:
    """An edge cache's tmpfs (a fill_cache fault's) left by a dead run: `cdnlab clean`
    unmounts it, then removes the run directory holding it; a mount it did not record
    stays."""
    run_dir, theirs = tmp_path / "run", tmp_path / "theirs"
    cache = run_dir / "work" / "edge_1" / "cache"
    cache.mkdir(parents=True)
    theirs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "t", str(theirs)], check=True)
    try:
        orphan = Ledger("orphan", tmp_path / "ledgers")
        orphan.add_directory(run_dir)
        orphan.add_mount(cache)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "t", str(cache)], check=True)
        (cache / "filler").write_bytes(b"x" * 1000)
        orphan.record.owner_pid = dead_pid()
        orphan.save()
        assert is_mount_point(str(cache))

        removed = clean_stale(tmp_path / "ledgers")

        assert f"mount {cache}" in [line.partition(": ")[2] for line in removed], removed
        assert not is_mount_point(str(cache)) and not run_dir.exists()
        assert is_mount_point(str(theirs)), "an unrecorded mount is not touched"
    finally:
        for path in (cache, theirs):
            while is_mount_point(str(path)):
                subprocess.run(["umount", str(path)], check=True)
