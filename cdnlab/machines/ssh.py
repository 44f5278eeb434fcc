"""ssh from the head to another machine of a split run: one shared connection per machine
(ControlMaster), a remote command as one quoted string, sudo there unless the login is
root. Used by the node classes (`remote`), the precheck (`session`) and the ledger's undo,
so it imports nothing of Mininet."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess

SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
               "-o", "StrictHostKeyChecking=accept-new", "-o", "ServerAliveInterval=5",
               "-o", "ServerAliveCountMax=6"]


def local_user() -> str:
    """Who runs ssh here: the user who ran sudo (their keys), else root (Mininet's
    `findUser` without its `who am i` guess)."""
    return os.environ.get("SUDO_USER") or "root"


class MachineShell:
    """ssh to one machine of the run, sharing one connection (ControlMaster)."""

    def __init__(self, server: str, user: str, control_dir: str) -> None:
        self.server = server
        self.user = user
        self.control = f"{control_dir}/%C"

    def ssh(self, tty: bool = False) -> list[str]:
        """The local argv up to the remote command (which is one string)."""
        argv = ["ssh", *SSH_OPTIONS, "-o", f"ControlPath={self.control}",
                "-o", "ControlMaster=auto", "-o", "ControlPersist=30"]
        if tty:
            argv.append("-tt")
        argv.append(f"{self.user}@{self.server}")
        if local_user() != "root":
            argv = ["sudo", "-E", "-u", local_user(), *argv]
        return argv

    def remote(self, argv: list[str], sudo: bool = True) -> str:
        """The remote command line: in the head's working directory (the same tree is at
        the same path there, and `python -m` finds the project's packages from it, as
        node programs on the head do), as root."""
        words = (["sudo", "-E"] if sudo and self.user != "root" else []) + argv
        return f"cd {shlex.quote(os.getcwd())} && exec {shlex.join(words)}"

    def argv(self, argv: list[str], tty: bool = False) -> list[str]:
        return [*self.ssh(tty), self.remote(argv)]

    def run(self, argv: list[str], stdin: str | None = None,
            timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(argv), input=stdin, capture_output=True, text=True,
                              check=False, timeout=timeout_s)

    def close(self) -> None:
        """End the shared connection."""
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run([*self.ssh()[:-1], "-O", "exit", f"{self.user}@{self.server}"],
                           capture_output=True, check=False, timeout=10)
