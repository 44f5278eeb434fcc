"""Node classes of a split run: Mininet Cluster Edition's remote nodes, with cdnlab's own
node behaviour and three changes to how a remote command is sent.

`mininet.examples.cluster.RemoteMixin` runs a node's shell, and every `popen` and `rcmd`,
on the node's machine through `ssh … sudo -E <argv>`; its tunnels between machines are
`RemoteGRELink`s (gretap interfaces at both ends, moved into the nodes' namespaces, MTU
1450 on every link of the run). cdnlab keeps all of that and changes, in `_popen`:

1. quoting: the remote argv is one `shlex.join`ed string, so arguments with spaces or JSON
   reach the program intact (ssh joins separate words with spaces);
2. the run's cgroup on that machine: every remote command joins it first
   (`agent.join_prefix`), so `cdnlab clean` and teardown end all of it there;
3. signals and lifetime: a program started with `popen` runs under `agent tether`; the
   local `Popen`'s `terminate()`, `kill()` and `send_signal()` write the signal's name to
   the session's stdin and the tether passes it on, so the program stops gracefully (or
   reloads on SIGHUP) and `wait()` returns when it has; if the ssh session dies, the
   tether ends the program (and teardown ends the run's cgroup there in any case).

Nodes on the head machine (`server='localhost'`) are `RemoteMixin` nodes too, as in
`MininetCluster`, but start their processes exactly as on one machine.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from mininet.examples.cluster import RemoteGRELink, RemoteMixin, RemoteOVSSwitch

from cdnlab.machines.agent import join_prefix
from cdnlab.machines.spec import HEAD
from cdnlab.machines.ssh import MachineShell
from cdnlab.net.node_classes import EmulatedHost, IpBridge, LinkBox, Router
from nodes.common.lifecycle import die_with_parent


def _signal_through_stdin(popen: subprocess.Popen[Any], signum: int) -> None:
    """`send_signal` of a tethered program: its name to the tether; if stdin is closed
    (`communicate()` closes it), end the ssh session, which the tether takes as SIGTERM."""
    if popen.poll() is not None:
        return
    try:
        assert popen.stdin is not None
        line = f"{signal.Signals(signum).name[3:]}\n"
        popen.stdin.write(line if isinstance(popen.stdin, io.TextIOBase) else line.encode())
        popen.stdin.flush()
    except (OSError, ValueError, AssertionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(popen.pid, signal.SIGTERM)


KILL_GRACE_S = 2.0


def _kill(popen: subprocess.Popen[Any]) -> None:
    """`kill` of a tethered program: SIGKILL through the tether, and the session itself
    if it is still there after `KILL_GRACE_S` (a machine that stopped answering must not
    hold the caller's `wait()`; the run's cgroup there is ended at teardown in any case)."""
    _signal_through_stdin(popen, signal.SIGKILL)

    def end_session() -> None:
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(popen.pid, signal.SIGKILL)
    timer = threading.Timer(KILL_GRACE_S, end_session)
    timer.daemon = True
    timer.start()


def tethered(popen: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
    """The local `Popen` of a remote program, with its signals sent through the tether."""
    popen.send_signal = lambda signum: _signal_through_stdin(popen, signum)  # type: ignore[method-assign]
    popen.terminate = lambda: _signal_through_stdin(popen, signal.SIGTERM)  # type: ignore[method-assign]
    popen.kill = lambda: _kill(popen)  # type: ignore[method-assign]
    return popen


def _detached_child() -> None:
    """The ssh session of a remote command: out of the terminal's process group (Ctrl-C
    reaches the engine, which tears down; not the sessions teardown still needs), and
    killed by the kernel if the engine dies (the far end then ends by `agent tether` or
    its shell's hangup)."""
    os.setpgrp()
    die_with_parent()


def _session_preexec() -> Any:
    """What an ssh session's child runs before exec: the parent-death signal follows the
    forking thread, so only sessions started from the main thread get it."""
    return _detached_child if threading.current_thread() is threading.main_thread() \
        else os.setpgrp


class Machines:
    """The run's machines as its nodes reach them: a shell and the run's cgroup on each
    machine other than the head."""

    def __init__(self, shells: dict[str, MachineShell]) -> None:
        self.shells = shells
        self.cgroups: dict[str, str] = {}

    def popen(self, server: str, argv: list[str], **params: Any) -> subprocess.Popen[Any]:
        """`argv` on machine `server` (its root namespace), under the tether, in the
        run's cgroup there; signals through the session (see `tethered`)."""
        tether = [sys.executable, "-m", "cdnlab.machines.agent", "tether",
                  self.cgroups.get(server, ""), "--", *argv]
        params["stdin"] = subprocess.PIPE
        params.setdefault("preexec_fn", _session_preexec())
        return tethered(subprocess.Popen(self.shells[server].argv(tether), **params))


class ClusterMixin(RemoteMixin):
    """A node on any machine of a split run (`machines=`, `server=` as node params)."""

    def __init__(self, name: str, server: str = HEAD, machines: Machines | None = None,
                 **params: Any) -> None:
        self.machines = machines or Machines({})
        shell = self.machines.shells.get(server)
        super().__init__(name, server=server, user=shell.user if shell else None,
                         serverIP=server if shell else None, **params)

    @property
    def machine(self) -> MachineShell:
        return self.machines.shells[self.server]

    @property
    def cgroup(self) -> str:
        return self.machines.cgroups.get(self.server, "")

    def remote_argv(self, argv: list[str], tty: bool = False) -> list[str]:
        """The local argv that runs `argv` on this node's machine, in the run's cgroup."""
        return self.machine.argv(join_prefix(self.cgroup) + argv, tty)

    def _popen(self, cmd: Any, sudo: bool = True, tt: bool = True, **params: Any) -> Any:
        if isinstance(cmd, str):
            cmd = cmd.split()
        if not self.isRemote:
            return super(RemoteMixin, self)._popen(cmd, **params)
        params["preexec_fn"] = _session_preexec()
        if tt:  # a shell or a short command (rcmd): Mininet's -tt session
            return super(RemoteMixin, self)._popen(self.remote_argv(cmd, tty=True), **params)
        params.pop("preexec_fn")
        # a program (popen): under the tether, its signals through the session's stdin
        return self.machines.popen(self.server, cmd, **params)


class ClusterHost(ClusterMixin, EmulatedHost):
    pass


class ClusterRouter(ClusterMixin, Router):
    pass


class ClusterLinkBox(ClusterMixin, LinkBox):
    pass


class ClusterBridge(ClusterMixin, IpBridge):
    pass


class ClusterOVSSwitch(ClusterMixin, RemoteOVSSwitch):
    pass


LINK_CLASS = RemoteGRELink
