"""The ledger: what a run created on this machine, written down as it is created.

Every process (with its kernel start time, so a reused PID is never touched), Open vSwitch
bridge, Linux bridge, root-namespace interface and temporary directory a run makes is
recorded in /run/cdnlab/<run id>.json before or right after it exists. Teardown removes
exactly these and deletes the ledger; `cdnlab clean` does the same for ledgers whose owning
process died. Nothing is ever removed by name pattern.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

LEDGER_DIR = Path(os.environ.get("CDNLAB_LEDGER_DIR", "/run/cdnlab"))


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` in clock ticks, or None if it is gone (a zombie
    counts as gone: it holds no namespace or socket any more)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _wait_gone(pid: int, start: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while process_start_time(pid) == start and time.monotonic() < deadline:
        time.sleep(0.01)


@dataclass
class LedgerRecord:
    run_id: str
    owner_pid: int
    owner_start: int | None
    created: float
    processes: list[dict[str, object]] = field(default_factory=list)
    ovs_bridges: list[str] = field(default_factory=list)
    linux_bridges: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)


class Ledger:
    def __init__(self, run_id: str, directory: Path = LEDGER_DIR) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{run_id}.json"
        pid = os.getpid()
        self.record = LedgerRecord(run_id, pid, process_start_time(pid), time.time())
        self.save()

    @classmethod
    def load(cls, path: Path) -> Ledger:
        ledger = cls.__new__(cls)
        ledger.path = path
        ledger.record = LedgerRecord(**json.loads(path.read_text()))
        return ledger

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.record), indent=1))
        tmp.replace(self.path)

    def add_process(self, pid: int, what: str) -> None:
        self.record.processes.append({"pid": pid, "start": process_start_time(pid),
                                      "what": what})
        self.save()

    def add_ovs_bridge(self, name: str) -> None:
        self.record.ovs_bridges.append(name)
        self.save()

    def add_linux_bridge(self, name: str) -> None:
        self.record.linux_bridges.append(name)
        self.save()

    def add_interfaces(self, names: list[str]) -> None:
        self.record.interfaces.extend(names)
        self.save()

    def add_directory(self, path: Path) -> None:
        self.record.directories.append(str(path))
        self.save()

    @property
    def owner_alive(self) -> bool:
        start = process_start_time(self.record.owner_pid)
        return start is not None and start == self.record.owner_start

    def undo(self) -> list[str]:
        """Remove whatever recorded thing still exists; what was removed, as lines."""
        removed: list[str] = []
        killed: list[tuple[int, object]] = []
        for entry in reversed(self.record.processes):
            pid, start = int(str(entry["pid"])), entry["start"]
            if start is not None and process_start_time(pid) == start:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append((pid, start))
                    removed.append(f"process {pid} ({entry['what']})")
        for pid, start in killed:
            _wait_gone(pid, start)
        for name in self.record.ovs_bridges:
            if _run(["ovs-vsctl", "--timeout=5", "br-exists", name]):
                _run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", name])
                removed.append(f"ovs bridge {name}")
        for name in self.record.linux_bridges + self.record.interfaces:
            if Path(f"/sys/class/net/{name}").exists():
                _run(["ip", "link", "del", name])
                removed.append(f"interface {name}")
        for directory in self.record.directories:
            if Path(directory).exists():
                shutil.rmtree(directory, ignore_errors=True)
                removed.append(f"directory {directory}")
        return removed

    def close(self) -> list[str]:
        removed = self.undo()
        self.path.unlink(missing_ok=True)
        return removed


def _run(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, check=False,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def clean_stale(directory: Path = LEDGER_DIR) -> list[str]:
    """Undo every ledger whose owner is gone (an interrupted run); what was removed."""
    removed: list[str] = []
    if not directory.is_dir():
        return removed
    for path in sorted(directory.glob("*.json")):
        try:
            ledger = Ledger.load(path)
        except (OSError, ValueError, TypeError):
            removed.append(f"unreadable ledger {path} left in place")
            continue
        if ledger.owner_alive:
            continue
        removed += [f"{ledger.record.run_id}: {line}" for line in ledger.close()]
    return removed
