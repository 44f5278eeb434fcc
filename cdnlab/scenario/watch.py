"""The program watch: every long-lived program of a run is watched from its start to the
results, and each exit is recorded the moment it happens, with who caused it.

Watched: the node programs the engine started (`cdnlab.services`: origin, edges, the DNS
redirector, probes, resolvers, the fill agent, players and browsers), each machine's delay
server and the switches' controller. An edge's nginx is its node program's child: the edge
program ends when its nginx does (`nodes.edge`), so the watch sees that exit too. Each
program's process is waited on through a pidfd (pidfd_open(2)), so an exit is timed within
the poll's wake-up, not a polling interval.

Each exit is one `program_exit` event in `events/programs.jsonl`: the program, its host and
part, its PID, its exit code or signal, the last lines of its stderr and its `cause`:

    stopped   the engine asked it to stop (teardown, a cluster_down)
    injected  a timeline fault event ended it (`kill_program`, `stop_program`)
    done      a program that ends by itself ended as it should (players, the fill agent)
    fault     none of these: nobody asked for it; the run's summary lists it in `faults`

A program under `supervise` that exits for any cause but `stopped` (and `stop_program`) is
started again with the same command, as systemd's `Restart=always` would: a
`program_restart` event says when it was healthy again (or `restart_failed`, why not).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nodes.common.events import EventLog

POLL_MS = 200  # how often the set of watched programs is refreshed (exits wake at once)
STDERR_LINES = 5


@dataclass
class Watched:
    """One process the watch follows, and how to tell why it ended."""
    name: str
    host: str
    part: str
    process: subprocess.Popen[bytes]
    stderr: Callable[[], str]
    planned: Callable[[], bool]
    injected: Callable[[], str | None] = lambda: None
    serves: bool = True
    ok_exit_codes: frozenset[int] = frozenset({0})
    program: Any = None  # the NodeProgram, for a restart under supervise
    pid: int = field(init=False)

    def __post_init__(self) -> None:
        self.pid = self.process.pid


def exit_status(returncode: int | None) -> dict[str, Any]:
    """`code` for an exit, `signal` (its name) for a death by signal."""
    if returncode is None:
        return {"code": None, "signal": None}
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return {"code": None, "signal": name}
    return {"code": returncode, "signal": None}


def last_lines(text: str, lines: int = STDERR_LINES) -> list[str]:
    kept = [line.rstrip()[:300] for line in text.splitlines() if line.strip()]
    return kept[-lines:]


def cause_of(watched: Watched, returncode: int | None) -> str:
    if watched.planned():
        return "stopped"
    if watched.injected():
        return "injected"
    if not watched.serves and returncode in watched.ok_exit_codes:
        return "done"
    return "fault"


def node_programs(emu: Any) -> list[Watched]:
    """The node programs the engine started (a restarted one under its new PID)."""
    found = []
    for program in list(emu.services):
        if program.process is None:
            continue
        found.append(Watched(
            program.name, program.host, program.part, program.process,
            program.stderr_tail, lambda p=program: bool(p.stop_requested),
            lambda p=program: p.injected, program.serves, program.ok_exit_codes, program))
    return found


def _pipe_tail(process: subprocess.Popen[bytes]) -> str:
    stream = process.stderr
    if stream is None or process.poll() is None:
        return ""
    try:
        return stream.read().decode(errors="replace")
    except (OSError, ValueError):
        return ""


def infrastructure(emu: Any) -> list[Watched]:
    """Each machine's delay server and the switches' controller."""
    found = []
    servers = {id(s): s for link in emu.links.values()
               if (s := getattr(link, "server", None)) is not None}
    for server in servers.values():
        if server.process is None:
            continue
        where = server.machine or "this machine"
        found.append(Watched(f"delay server ({where})", where, "delay", server.process,
                             lambda p=server.process: _pipe_tail(p),
                             lambda s=server: not s.active))
    controller = emu.controller
    if controller is not None and controller.process is not None:
        found.append(Watched("controller", "this machine", "engine", controller.process,
                             lambda: "", lambda c=controller: bool(c.stop_requested),
                             lambda c=controller: c.injected))
    return found


class ProgramWatch(threading.Thread):
    """Records every exit of a watched program as it happens; restarts supervised ones."""

    def __init__(self, emu: Any, log: EventLog,
                 supervise: frozenset[str] = frozenset(),
                 sources: tuple[Callable[[Any], list[Watched]], ...] = (node_programs,
                                                                        infrastructure)
                 ) -> None:
        super().__init__(name="program-watch", daemon=True)
        self.emu = emu
        self.log = log
        self.supervise = supervise  # program names
        self.sources = sources
        self.stopping = threading.Event()
        self.exits: list[dict[str, Any]] = []
        self._seen: set[int] = set()
        self._restarts: list[threading.Thread] = []

    def run(self) -> None:
        poller = select.poll()
        open_fds: dict[int, Watched] = {}
        try:
            while not self.stopping.is_set():
                for watched in self._new():
                    try:
                        fd = os.pidfd_open(watched.pid)
                    except ProcessLookupError:
                        self._exited(watched)
                        continue
                    open_fds[fd] = watched
                    poller.register(fd, select.POLLIN)
                for fd, _ in poller.poll(POLL_MS):
                    watched = open_fds.pop(fd)
                    poller.unregister(fd)
                    os.close(fd)
                    self._exited(watched)
        finally:
            for fd in open_fds:
                os.close(fd)

    def stop(self) -> None:
        """Stop watching (before the engine stops what is left); waits for restarts under
        way."""
        self.stopping.set()
        if self.is_alive():
            self.join(5)
        for restart in self._restarts:
            restart.join(30)

    def _new(self) -> list[Watched]:
        found = []
        for source in self.sources:
            for watched in source(self.emu):
                if watched.pid not in self._seen:
                    self._seen.add(watched.pid)
                    found.append(watched)
        return found

    def _exited(self, watched: Watched) -> None:
        ended = time.time()
        try:
            returncode = watched.process.wait(5)
        except subprocess.TimeoutExpired:
            returncode = None
        cause = cause_of(watched, returncode)
        record = self.log.emit_at(
            ended, "program_exit", program=watched.name, host=watched.host,
            part=watched.part, pid=watched.pid, **exit_status(returncode), cause=cause,
            injected=watched.injected(), stderr=last_lines(watched.stderr()))
        self.exits.append(record)
        program = watched.program
        if (program is not None and watched.name in self.supervise and watched.serves
                and cause in ("fault", "injected") and watched.injected() != "stop_program"
                and not self.stopping.is_set()):
            restart = threading.Thread(target=self._restart, args=(program, ended),
                                       name=f"restart-{watched.name}", daemon=True)
            self._restarts.append(restart)
            restart.start()

    def _restart(self, program: Any, ended: float) -> None:
        try:
            program.restart()
        except Exception as err:  # the restart's failure is the record, the run goes on
            self.log.emit("restart_failed", program=program.name, error=str(err)[-300:])
            return
        self.log.emit("program_restart", program=program.name, pid=program.process.pid,
                      after_s=round(time.time() - ended, 3), why="supervise")
