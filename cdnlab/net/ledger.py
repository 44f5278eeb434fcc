"""The ledger: what a run created on this machine, written down as it is created.

Every process (with its kernel start time, so a reused PID is never touched), Open vSwitch
bridge, Linux bridge, root-namespace interface, filesystem mount and temporary directory a
run makes is
recorded in /var/lib/cdnlab/ledgers/<run id>.json before or right after it exists, with
the run's cgroup (`cdnlab.net.cgroup`), which holds every process the run's processes
fork later. Teardown removes exactly these and deletes the ledger; `cdnlab clean` does the
same for ledgers whose owning process died. Nothing is ever removed by name pattern.

The ledger is on persistent storage because OVS bridges (kept in OVS's database) and
directories outlive a reboot. Each ledger records the boot it was written in: after a
reboot its processes and cgroup are gone with the old kernel, and their PIDs mean nothing,
so only what persists is undone. Concurrent undoers (the run's own teardown, `cdnlab
clean`) take an exclusive lock on the ledger file first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cdnlab.net import autogroups
from cdnlab.net.cgroup import RunCgroup

LEDGER_DIR = Path(os.environ.get("CDNLAB_LEDGER_DIR", "/var/lib/cdnlab/ledgers"))


def boot_id() -> str:
    """This boot's identity (the kernel makes a new one at every boot)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


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
    mounts: list[str] = field(default_factory=list)  # mount points (a tmpfs edge cache)
    boot: str = ""  # boot_id() when written; "" in ledgers of older versions
    cgroup: str | None = None  # the run's cgroup directory, if it has one
    # the other machines of a split run (cdnlab.machines): per machine its ssh user and
    # connection directory, the run's cgroup there, and its bridges and interfaces
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the run relies on cdnlab having switched the kernel's autogroups off
    # (cdnlab.net.autogroups): the last such run's undo switches them back
    autogroups_off: bool = False

    @property
    def this_boot(self) -> bool:
        return self.boot in ("", boot_id())


class Ledger:
    def __init__(self, run_id: str, directory: Path = LEDGER_DIR) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{run_id}.json"
        pid = os.getpid()
        self.record = LedgerRecord(run_id, pid, process_start_time(pid), time.time(),
                                   boot=boot_id())
        self.cgroup: RunCgroup | None = None
        self.save()

    @classmethod
    def load(cls, path: Path) -> Ledger:
        ledger = cls.__new__(cls)
        ledger.path = path
        ledger.record = LedgerRecord(**json.loads(path.read_text()))
        ledger.cgroup = RunCgroup(Path(ledger.record.cgroup)) if ledger.record.cgroup else None
        return ledger

    def contain(self) -> bool:
        """Make the run's cgroup, record it and move this process into it, so every
        process started from now on is a member; False where cgroup v2 is not writable
        (then only the processes recorded one by one are ended)."""
        self.cgroup = RunCgroup.create(self.record.run_id)
        if self.cgroup is None:
            return False
        self.record.cgroup = str(self.cgroup.path)
        self.save()
        try:
            self.cgroup.enter()
        except OSError:
            self.cgroup.remove()
            self.cgroup = self.record.cgroup = None
            self.save()
            return False
        return True

    def switch_autogroups_off(self) -> bool:
        """The kernel's per-session CPU groups off for this run (`cdnlab.net.autogroups`),
        recorded so the undo of the last run relying on it switches them back; whether
        they are off now because of cdnlab."""
        self.record.autogroups_off = autogroups.switch_off(self.path.parent)
        self.save()
        return self.record.autogroups_off

    def join_part(self, pid: int, part: str) -> None:
        """Account process `pid` (started a moment ago, before it forked) to `part` of
        the run's CPU (`cdnlab.net.cgroup.PARTS`); nothing where the run has no cgroup."""
        if self.cgroup is not None:
            self.cgroup.join(pid, part)

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.record), indent=1))
        tmp.replace(self.path)

    def add_process(self, pid: int, what: str) -> None:
        self.record.processes.append({"pid": pid, "start": process_start_time(pid),
                                      "what": what})
        self.save()

    def add_ovs_bridge(self, name: str, machine: str | None = None) -> None:
        self._list("ovs_bridges", machine).append(name)
        self.save()

    def add_linux_bridge(self, name: str, machine: str | None = None) -> None:
        self._list("linux_bridges", machine).append(name)
        self.save()

    def add_interfaces(self, names: list[str], machine: str | None = None) -> None:
        self._list("interfaces", machine).extend(names)
        self.save()

    def _list(self, kind: str, machine: str | None) -> list[str]:
        if machine is None:
            return getattr(self.record, kind)  # type: ignore[no-any-return]
        return self.record.machines[machine].setdefault(kind, [])  # type: ignore[no-any-return]

    def add_machine(self, server: str, user: str, control_dir: str) -> None:
        """Another machine of the run, before anything is made there."""
        self.record.machines[server] = {"user": user, "control_dir": control_dir,
                                        "cgroup": None}
        self.save()

    def set_machine_cgroup(self, server: str, cgroup: str | None) -> None:
        self.record.machines[server]["cgroup"] = cgroup
        self.save()

    def add_mount(self, path: Path, machine: str | None = None) -> None:
        """A filesystem about to be mounted on `path` (recorded first: a mount that
        happened is never missed)."""
        self._list("mounts", machine).append(str(path))
        self.save()

    def add_directory(self, path: Path) -> None:
        self.record.directories.append(str(path))
        self.save()

    @property
    def owner_alive(self) -> bool:
        if not self.record.this_boot:
            return False
        start = process_start_time(self.record.owner_pid)
        return start is not None and start == self.record.owner_start

    def undo(self) -> list[str]:
        """Remove whatever recorded thing still exists; what was removed, as lines."""
        try:
            lock = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return []  # undone and deleted by another cleaner
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            removed = self._end_processes() if self.record.this_boot else []
            if self.record.autogroups_off:
                back = autogroups.switch_back(self.path.parent, self._others_rely)
                removed += [back] if back else []
            return removed + self._undo_machines() + self._remove_network_and_files()
        finally:
            os.close(lock)

    def _others_rely(self) -> bool:
        """Whether another live run on this machine relies on autogroups being off."""
        return any(other.path != self.path for other in relying_runs(self.path.parent))

    def _end_processes(self) -> list[str]:
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
        if self.cgroup is not None:
            existed = self.cgroup.path.is_dir()
            removed += [f"process {pid} (forked inside the run)" for pid in self.cgroup.remove()]
            if existed and not self.cgroup.path.is_dir():
                removed.append(f"cgroup {self.cgroup.path}")
        return removed

    def _undo_machines(self) -> list[str]:
        """Each other machine's share, undone there by the agent over ssh (after this
        machine's processes, whose ssh sessions ending already stops the programs there)."""
        if not self.record.machines:
            return []
        from cdnlab.machines.ssh import MachineShell

        removed: list[str] = []
        for server, entry in self.record.machines.items():
            shell = MachineShell(server, entry["user"], entry["control_dir"])
            record = {"run_id": self.record.run_id, **entry}
            try:
                done = shell.run([sys.executable, "-m", "cdnlab.machines.agent", "undo"],
                                 json.dumps(record), timeout_s=60)
            except (OSError, subprocess.TimeoutExpired) as err:
                done = subprocess.CompletedProcess([], 255, "", str(err))
            if done.returncode != 0:
                self.unfinished = True
                removed.append(f"machine {server}: NOT undone ({done.stderr.strip()[-200:]});"
                               " the ledger stays for `cdnlab clean` to retry")
                continue
            removed += [f"{server}: {line}" for line in done.stdout.splitlines() if line]
            shell.close()
        return removed

    def _remove_network_and_files(self) -> list[str]:
        removed: list[str] = []
        for path in reversed(self.record.mounts):  # before the directories holding them
            while is_mount_point(path):
                if not (_run(["umount", path]) or _run(["umount", "-l", path])):
                    break
                removed.append(f"mount {path}")
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
        """Undo, and delete the ledger unless another machine could not be reached."""
        self.unfinished = False
        removed = self.undo()
        if not self.unfinished:
            self.path.unlink(missing_ok=True)
        return removed


def is_mount_point(path: str) -> bool:
    """Whether something is mounted on `path` in this mount namespace."""
    try:
        table = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return False
    target = os.path.realpath(path) if os.path.exists(path) else path
    return any(line.split()[4] == target for line in table.splitlines())


def _run(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, check=False,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def stale_ledgers(directory: Path = LEDGER_DIR) -> tuple[list[Ledger], list[Path]]:
    """Ledgers whose owner is gone (interrupted runs, this boot or an earlier one), and
    the files that could not be read."""
    stale: list[Ledger] = []
    unreadable: list[Path] = []
    if not directory.is_dir():
        return stale, unreadable
    for path in sorted(directory.glob("*.json")):
        try:
            ledger = Ledger.load(path)
        except (OSError, ValueError, TypeError):
            unreadable.append(path)
            continue
        if not ledger.owner_alive:
            stale.append(ledger)
    return stale, unreadable


def relying_runs(directory: Path) -> list[Ledger]:
    """The live runs whose ledgers say they rely on autogroups being off."""
    found = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        with contextlib.suppress(OSError, ValueError, TypeError):
            ledger = Ledger.load(path)
            if ledger.record.autogroups_off and ledger.owner_alive:
                found.append(ledger)
    return found


def clean_stale(directory: Path = LEDGER_DIR) -> list[str]:
    """Undo every ledger whose owner is gone (an interrupted run); what was removed. The
    autogroups come back too when no live run relies on them being off, also when the run
    that switched them off died before its ledger said so."""
    stale, unreadable = stale_ledgers(directory)
    removed = [f"unreadable ledger {path} left in place" for path in unreadable]
    for ledger in stale:
        if not ledger.path.exists():  # undone meanwhile by another cleaner
            continue
        removed += [f"{ledger.record.run_id}: {line}" for line in ledger.close()]
    back = autogroups.switch_back(directory, lambda: bool(relying_runs(directory)))
    return removed + ([back] if back else [])
