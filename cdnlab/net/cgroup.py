"""A run's processes held in one cgroup (v2), so every one of them can be ended at once,
including those that daemons fork long after the engine started them (nginx workers and
cache managers) and that no ledger line names.

The engine process itself joins `<cgroup2 mount>/cdnlab/<run id>` when a network comes
up, so everything it starts from then on (Mininet's shells, the node programs and all
their descendants) is born inside. At teardown the engine ends every other member and
goes back to the cgroup it came from. If the engine was killed, `cdnlab clean` writes
`cgroup.kill` (Linux ≥ 5.14), which ends the whole tree in one step. Nothing is found by
name: membership is the kernel's record of who descends from the run.

Each kind of process also has a child cgroup of its own, a *part* (`PARTS`): a node
program is moved into its part right after it starts, before it forks anything, so its
children (nginx workers, ffmpeg) are born there too. No controller is enabled, so the
parts only account: each has its `cpu.stat`, which the run monitor reads to say where the
CPU went. What stays in the run's own cgroup (the engine, Mininet's shells, the CPU-awake
spinners) is the `engine` part.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

PARENT = "cdnlab"
# the parts of a run, in the order reports list them: child cgroup name → words
PARTS = {"delay": "delay path", "probes": "probes", "players": "players",
         "browsers": "browsers", "edges": "edges", "origin": "origin", "fill": "fill",
         "dns": "DNS", "resolvers": "resolvers", "monitor": "monitor",
         "controller": "controller", "routing": "routing daemons", "engine": "engine"}
ENGINE = "engine"  # not a child cgroup: the run cgroup's own processes


def cgroup2_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or `.../unified` on a
    hybrid host), or None."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in mounts:
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


def own_cgroup(pid: int | str = "self") -> str | None:
    """The process's cgroup v2 path (`0::/…` in /proc/PID/cgroup), or None."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return line[3:]
    return None


class RunCgroup:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.came_from: str | None = None  # our cgroup before `enter`

    @classmethod
    def create(cls, run_id: str) -> RunCgroup | None:
        """The run's cgroup, made; None where there is no writable cgroup v2."""
        mount = cgroup2_mount()
        if mount is None:
            return None
        path = mount / PARENT / run_id
        try:
            path.mkdir(parents=True)
        except OSError:
            return None
        return cls(path)

    def enter(self) -> None:
        """Move this process (all its threads) into the run's cgroup."""
        self.came_from = own_cgroup()
        (self.path / "cgroup.procs").write_text(f"{os.getpid()}\n")

    def leave(self) -> None:
        """Move this process back where it came from (the hierarchy's root if unknown)."""
        mount = self.path.parents[1]
        back = mount / (self.came_from or "/").lstrip("/")
        with contextlib.suppress(OSError):
            (back / "cgroup.procs").write_text(f"{os.getpid()}\n")

    def join(self, pid: int, part: str) -> bool:
        """Move process `pid` into the run's child cgroup `part` (made if need be); False
        if it could not be moved (it exited already, or no such cgroup can be made)."""
        if part not in PARTS or part == ENGINE:
            raise ValueError(f"unknown part {part!r}: one of {', '.join(PARTS)}")
        try:
            (self.path / part).mkdir(exist_ok=True)
            (self.path / part / "cgroup.procs").write_text(f"{pid}\n")
        except OSError:
            return False
        return True

    def parts(self) -> list[Path]:
        """The child cgroups made so far."""
        try:
            return sorted(p for p in self.path.iterdir() if p.is_dir())
        except OSError:
            return []

    def members(self) -> list[int]:
        """Every process of the run: in its cgroup and in its parts."""
        found: list[int] = []
        for group in (self.path, *self.parts()):
            try:
                found += [int(line) for line in (group / "cgroup.procs").read_text().split()]
            except OSError:
                continue
        return found

    def end_all(self, timeout_s: float = 10.0) -> list[int]:
        """SIGKILL every member (this process must have left); their PIDs. `cgroup.kill`
        ends the tree at once, forks under way included; without it (Linux < 5.14) the
        members are killed one by one until none is left."""
        ended = self.members()
        if os.getpid() in ended:
            raise RuntimeError("end_all from inside the cgroup: leave() first")
        kill = self.path / "cgroup.kill"
        deadline = time.monotonic() + timeout_s
        while self.members() and time.monotonic() < deadline:
            if kill.exists():
                with contextlib.suppress(OSError):
                    kill.write_text("1\n")
            else:
                for pid in self.members():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        return ended

    def remove(self) -> list[int]:
        """Leave if this process is a member, end every other member, remove the cgroup;
        the PIDs that were ended."""
        if os.getpid() in self.members():
            self.leave()
        ended = self.end_all()
        for part in self.parts():
            with contextlib.suppress(OSError):
                part.rmdir()
        with contextlib.suppress(OSError):
            self.path.rmdir()
        return ended
