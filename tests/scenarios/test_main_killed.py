"""The worst exit: only the main process of `cdnlab run` killed (SIGKILL, as the OOM killer
or an outer timeout does), at three moments of a run. The kernel ends its direct children
(PR_SET_PDEATHSIG); `cdnlab clean` ends the rest through the run's cgroup (nginx workers
and cache managers included) and removes what is left in the network."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cdnlab.net.ledger import Ledger
from tests.net.conftest import machine_state
from tests.scenarios.conftest import ledger_of

pytestmark = pytest.mark.root

ROOT_NETNS = os.stat("/proc/self/ns/net").st_ino  # the tests run in the root namespace


def _processes() -> dict[int, tuple[str, int]]:
    """Every process: PID → (its start time and parent as text, its netns inode)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            found[int(entry.name)] = (f"{stat[19]}:{stat[1]}", os.stat(entry / "ns/net").st_ino)
        except (OSError, IndexError):
            continue
    return found


def _left_of_the_run(before: dict[int, tuple[str, int]], tester: int) -> list[str]:
    """Processes started since `before` that are not this test's own and that either sit in
    an emulated host's namespace or were orphaned (re-parented to init)."""
    left = []
    for pid, (start_parent, netns) in _processes().items():
        if pid in before and before[pid][0] == start_parent:
            continue
        parent = int(start_parent.split(":")[1])
        if pid == tester or parent == tester:
            continue
        if netns != ROOT_NETNS or parent == 1:
            try:
                command = (Path(f"/proc/{pid}/cmdline").read_bytes()
                           .replace(b"\0", b" ").decode(errors="replace").strip())
            except OSError:
                continue
            left.append(f"{pid} {command[:80]}")
    return left


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"the run never reached {what}")
        time.sleep(0.1)


def _nginx_workers_in(ledger: Ledger) -> int:
    """Members of the run's cgroup that no ledger line names (forked by daemons)."""
    named = {int(str(p["pid"])) for p in ledger.record.processes}
    members = ledger.cgroup.members() if ledger.cgroup else []
    return sum(1 for pid in members if pid not in named)


@pytest.mark.parametrize("moment", ["bring-up", "streaming", "teardown"])
def test_only_the_main_process_killed_then_clean_leaves_nothing(
        moment: str, tmp_path: Path) -> None:
    before_state, before_processes = machine_state(), _processes()
    bundle = tmp_path / "bundle"
    run = subprocess.Popen([sys.executable, "-m", "cdnlab.cli", "run", "quick_pull", "--out",
                            str(bundle)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        if moment == "bring-up":
            def up() -> bool:
                ledger = ledger_of(run)
                return ledger is not None and bool(ledger.record.processes)

            _wait_for(up, 60, "bring-up")
        elif moment == "streaming":
            _wait_for(lambda: any((bundle / "run" / "events").glob("*.players.jsonl")), 180,
                      "streaming")
            ledger = ledger_of(run)
            assert ledger is not None and ledger.cgroup is not None
            assert _nginx_workers_in(ledger) > 0, "nginx's workers are in the run's cgroup"
        else:
            _wait_for(lambda: (bundle / "run" / "events" / "fidelity.json").exists(), 300,
                      "teardown")
        os.kill(run.pid, signal.SIGKILL)  # the main process alone, not its group
        run.wait(30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    clean = subprocess.run([sys.executable, "-m", "cdnlab.cli", "clean"], capture_output=True,
                           text=True, check=False)
    assert clean.returncode == 0, clean.stderr
    left = _left_of_the_run(before_processes, os.getpid())
    assert left == [], f"processes of the run left after clean ({moment}): {left}"
    assert machine_state() == before_state, f"left in the network after clean ({moment})"
