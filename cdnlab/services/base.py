"""`NodeProgram`: one node program running in an emulated host's namespace.

The engine starts it with the venv's Python through Mininet's `popen` (mnexec), records its
PID and start time in the run's ledger before anything else, writes its stderr to
`<run>/logs/<name>.stderr`, and registers it with the emulation so teardown stops it before
the network goes (SIGTERM, then SIGKILL after a grace period; the ledger catches the rest).
Health is checked from inside the host's namespace with `nodes.common.wait_http`.

What ends a program is told apart here, for the run's program watch
(`cdnlab.scenario.watch`): `stop()` marks an exit the engine asked for, `injected` one the
scenario's timeline caused, and a program that `serves` (until stopped) or exits with a code
outside `ok_exit_codes` has failed otherwise. `restart()` starts the same command again (a
timeline `restart_program`, or the watch under `supervise`, as systemd's Restart= does).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from cdnlab.errors import CdnlabError
from cdnlab.net.shaping.base import node_argv, run_in


class ServiceError(CdnlabError):
    """A node program did not start or did not become healthy; the message has its stderr."""


class NodeProgram:
    part = "engine"  # where its CPU is accounted (cdnlab.net.cgroup.PARTS); set by each kind
    serves = True  # runs until stopped; False: ends by itself when its work is done
    ok_exit_codes: frozenset[int] = frozenset({0})  # how a program that ends by itself ends

    def __init__(self, emu: Any, host: str, module: str, args: list[str], name: str) -> None:
        self.emu = emu
        self.host = host
        self.module = module
        self.args = args
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self.logs = Path(emu.run_dir) / "logs"
        self.events = Path(emu.run_dir) / "events"
        self.stop_requested = False  # the engine asked it to stop (not a fault)
        self.injected: str | None = None  # the timeline event that is ending or pausing it
        self.restarts = 0

    @property
    def stderr_path(self) -> Path:
        return self.logs / f"{self.name}.stderr"

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.events.mkdir(parents=True, exist_ok=True)
        node = self.emu.node(self.host)
        argv = [sys.executable, "-m", self.module, *self.args]
        # a restart appends: the stderr of the life before it stays
        with self.stderr_path.open("ab" if self.restarts else "wb") as errors:
            self.process = node.popen(argv, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=errors)
        self.emu.ledger.add_process(self.process.pid, f"{self.name} on {self.host}")
        if self.part != "engine":
            self.emu.ledger.join_part(self.process.pid, self.part)
        if self not in self.emu.services:
            self.emu.add_service(self)

    def restart(self) -> None:
        """The same command started again (after it exited), and checked as at its start."""
        if self.running:
            raise ServiceError(f"{self.name} on {self.host} still runs: stop it first")
        self.process = None
        self.stop_requested = False
        self.injected = None
        self.restarts += 1
        self.start()

    def stderr_tail(self, chars: int = 600) -> str:
        try:
            return self.stderr_path.read_text(errors="replace").strip()[-chars:]
        except OSError:
            return ""

    def wait_http(self, url: str, timeout_s: float = 15.0) -> None:
        """Wait until `url` answers from inside the host (any status below 500)."""
        if self.process is not None and self.process.poll() is not None:
            raise ServiceError(f"{self.name} on {self.host} exited "
                               f"({self.process.returncode}): {self.stderr_tail()}")
        try:
            run_in(self.emu.node(self.host), f"{sys.executable} -m nodes.common.wait_http "
                                             f"{url} --timeout {timeout_s:g}")
        except RuntimeError as err:
            raise ServiceError(f"{self.name} on {self.host} is not healthy at {url}: "
                               f"{self.stderr_tail() or err}") from err

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(self, number: int, injected: str) -> None:
        """Send a signal on behalf of a timeline fault event (`injected`: its kind)."""
        if not self.running:
            raise ServiceError(f"{self.name} on {self.host} is not running")
        assert self.process is not None
        self.injected = injected
        self.process.send_signal(number)

    def resume(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGCONT)

    def stop(self, grace_s: float = 5.0) -> int | None:
        """Stop the program; its exit status (None if it was never started)."""
        if self.process is None:
            return None
        self.stop_requested = True
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.resume()  # a paused program cannot end
                self.process.terminate()
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def run_program(emu: Any, host: str, module: str, args: list[str], what: str,
                timeout_s: float = 600.0) -> str:
    """Run node program `module` on `host` to completion (recorded in the ledger while it
    runs); its standard output. A non-zero exit raises, with the end of its stderr."""
    program = subprocess.Popen(
        node_argv(emu.node(host), [sys.executable, "-m", module, *args]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    emu.ledger.add_process(program.pid, f"{what} on {host}")
    try:
        out, errors = program.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        program.kill()
        program.communicate()
        raise ServiceError(f"{what} on {host} took over {timeout_s:g} s") from None
    if program.returncode:
        raise ServiceError(f"{what} on {host} failed: {errors.strip()[-300:]}")
    return out
