"""Sockets inside an emulated host's network namespace, made from the engine's own process.

Mininet's hosts are network namespaces held open by a shell process; `mnexec -a PID` starts
a program inside one. For a short call from the engine to a service on a host (the scenario
runner polling the DNS redirector's REST API), starting a program per call costs a Python
start-up. A socket, though, stays in the namespace it was created in for its whole life.
So the calling thread enters the host's namespace (setns(2) moves only that thread),
creates the socket, and goes back at once; the socket then connects from the host's side.
"""

from __future__ import annotations

import ctypes
import http.client
import os
import socket

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _enter(namespace_fd: int) -> None:
    if _libc.setns(namespace_fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns(CLONE_NEWNET): {os.strerror(error)}")


def socket_in(pid: int, family: int = socket.AF_INET,
              kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A new socket in the network namespace of process `pid` (a Mininet host's shell)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            _enter(target)
            try:
                return socket.socket(family, kind)
            finally:
                _enter(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


class HostHTTPConnection(http.client.HTTPConnection):
    """HTTP to `host:port` as seen from inside the namespace of process `pid`."""

    def __init__(self, pid: int, host: str, port: int, timeout: float = 10.0) -> None:
        super().__init__(host, port, timeout=timeout)
        self.namespace_pid = pid

    def connect(self) -> None:
        sock = socket_in(self.namespace_pid)
        try:
            sock.settimeout(self.timeout)
            sock.connect((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.sock = sock
