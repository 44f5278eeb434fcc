"""Persistent HTTP/1.1 for players: one keep-alive connection per server, reused across
segments; responses read by Content-Length or chunked encoding; 302/301/307 followed
(to another cluster or the origin) with the server that finally answered reported. The
timeout is for silence (no byte for that long), not for a whole download.

A player needs a segment's size and timing, not its bytes: a body not kept
(`keep_body=False`) is received into one reused buffer (`loop.sock_recv_into`) and only
counted, so a delivered megabit costs one kernel copy and no Python object.

A body is read in batches: while more than `BATCH` bytes of it are still to come, the
socket is not readable until `BATCH` of them are queued (`SO_RCVLOWAT`, socket(7); TCP's
poll honours it), so on a shaped link, where packets arrive one by one, the loop wakes
once per batch, not once per packet. The last read asks for exactly what is left, so a
body's last byte is seen when it comes. `BATCH` is at most half the initial receive buffer
(`tcp_rmem`'s default, 87380 or 131072 bytes), so setting it never grows the buffer or
clamps the window (tcp_set_rcvlowat in net/ipv4/tcp.c does both only above that). A
wait that times out with bytes queued, fewer than a batch, takes them and waits again, so
silence is still what ends a download, noticed at most twice the timeout after the last
byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

RECEIVE_BUFFER = 256 * 1024
HEAD_LIMIT = 64 * 1024
BATCH = 32 * 1024  # body bytes queued before a read wakes (SO_RCVLOWAT)


class HttpError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes  # empty when the body was not kept
    server: str  # address:port that answered
    seconds: float  # request sent → last byte
    redirects: list[str] = field(default_factory=list)
    size: int = 0  # bytes of the body received, kept or not


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = memoryview(bytearray(RECEIVE_BUFFER))
        self.pending = bytearray()  # received, not yet consumed (headers, chunk lines)
        self.low_water = 1  # the socket's SO_RCVLOWAT
        self.reads = 0  # reads from the socket (wake-ups of the loop for this connection)

    async def open(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        family, kind, proto, _name, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, address), timeout_s)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.pending.clear()
        self.low_water = 1

    @property
    def writer(self) -> socket.socket | None:
        """Open or not (the name the client's reuse check reads)."""
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.pending.clear()

    async def _receive(self, limit: int, idle_s: float, batch: int = 1) -> int:
        """Up to `limit` bytes into the buffer, waking when `batch` of them are queued (or
        the peer closed); 0 at the peer's close. TimeoutError after `idle_s` without a
        byte."""
        sock = self.sock  # kept: a close meanwhile ends the read, it does not crash it
        if sock is None:
            raise ConnectionResetError("connection closed")
        if batch != self.low_water:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, batch)
            self.low_water = batch
        self.reads += 1
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.sock_recv_into(sock, self.buffer[:limit]),
                                          idle_s)
        except TimeoutError:
            if batch == 1:
                raise
            try:  # fewer than a batch came: that is not silence, unless none did
                return sock.recv_into(self.buffer[:limit])
            except BlockingIOError:
                raise TimeoutError(f"no byte for {idle_s:g} s") from None

    async def _more(self, idle_s: float) -> None:
        got = await self._receive(RECEIVE_BUFFER, idle_s)
        if not got:
            raise asyncio.IncompleteReadError(bytes(self.pending), None)
        self.pending += self.buffer[:got]

    async def _until(self, mark: bytes, idle_s: float) -> bytes:
        while (at := self.pending.find(mark)) < 0:
            if len(self.pending) > HEAD_LIMIT:
                raise HttpError(f"no {mark!r} in {HEAD_LIMIT} bytes")
            await self._more(idle_s)
        line = bytes(self.pending[:at + len(mark)])
        del self.pending[:at + len(mark)]
        return line

    async def request(self, path: str, host_header: str, timeout_s: float,
                      keep_body: bool = True) -> tuple[int, dict[str, str], bytes, int]:
        if self.sock is None:
            await self.open(timeout_s)
        assert self.sock is not None
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(self.sock, (
            f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\n"
            "User-Agent: cdnlab-player\r\nConnection: keep-alive\r\n\r\n").encode())
        head = await self._until(b"\r\n\r\n", timeout_s)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise HttpError(f"bad status line {lines[0]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            key, sep, value = line.partition(":")
            if sep:
                headers[key.strip().lower()] = value.strip()
        kept: list[bytes] | None = [] if keep_body else None
        if "content-length" in headers:
            size = await self._exactly(int(headers["content-length"]), timeout_s, kept)
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            size = await self._chunked(timeout_s, kept)
        else:
            size = await self._to_close(timeout_s, kept)
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(parts[1]), headers, b"".join(kept) if kept else b"", size

    async def _exactly(self, length: int, idle_s: float, kept: list[bytes] | None) -> int:
        """Read `length` body bytes (kept in `kept` unless None); give up only when nothing
        arrives for `idle_s` (a slow link may take long for a large segment, a dead one
        stops sending)."""
        early = min(len(self.pending), length)
        if early:
            if kept is not None:
                kept.append(bytes(self.pending[:early]))
            del self.pending[:early]
        left = length - early
        while left:
            got = await self._receive(min(left, RECEIVE_BUFFER), idle_s, min(left, BATCH))
            if not got:
                raise asyncio.IncompleteReadError(b"", length)
            if kept is not None:
                kept.append(bytes(self.buffer[:got]))
            left -= got
        return length

    async def _chunked(self, idle_s: float, kept: list[bytes] | None) -> int:
        total = 0
        while True:
            line = await self._until(b"\r\n", idle_s)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await self._until(b"\r\n", idle_s)
                return total
            total += await self._exactly(size, idle_s, kept)
            await self._until(b"\r\n", idle_s)

    async def _to_close(self, idle_s: float, kept: list[bytes] | None) -> int:
        total = len(self.pending)
        if kept is not None:
            kept.append(bytes(self.pending))
        self.pending.clear()
        while got := await self._receive(RECEIVE_BUFFER, idle_s):
            if kept is not None:
                kept.append(bytes(self.buffer[:got]))
            total += got
        return total


class HttpClient:
    def __init__(self, timeout_s: float = 10.0, max_redirects: int = 5) -> None:
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self._connections: dict[tuple[str, int], Connection] = {}

    async def get(self, host: str, port: int, path: str, host_header: str,
                  keep_body: bool = True) -> Response:
        """GET `path`, following redirects; `keep_body=False` counts the body's bytes
        (`Response.size`) without keeping them."""
        started = time.monotonic()
        redirects: list[str] = []
        for _ in range(self.max_redirects + 1):
            status, headers, body, size = await self._once(host, port, path, host_header,
                                                            keep_body)
            if status in (301, 302, 303, 307, 308) and "location" in headers:
                target = urlsplit(headers["location"])
                redirects.append(headers["location"])
                if target.hostname:
                    host, port = target.hostname, target.port or 80
                    host_header = target.netloc
                path = target.path + (f"?{target.query}" if target.query else "")
                continue
            return Response(status, headers, body, f"{host}:{port}",
                            time.monotonic() - started, redirects, size)
        raise HttpError(f"more than {self.max_redirects} redirects from {path}")

    async def _once(self, host: str, port: int, path: str, host_header: str,
                    keep_body: bool) -> tuple[int, dict[str, str], bytes, int]:
        key = (host, port)
        connection = self._connections.get(key)
        reused = connection is not None and connection.writer is not None
        if connection is None:
            connection = self._connections[key] = Connection(host, port)
        try:
            return await connection.request(path, host_header, self.timeout_s, keep_body)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, HttpError):
            connection.close()
            if not reused:
                raise
        # a kept-alive connection the server had closed: once more on a new one
        return await connection.request(path, host_header, self.timeout_s, keep_body)

    def forget(self, host: str, port: int = 80) -> None:
        connection = self._connections.pop((host, port), None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        for connection in self._connections.values():
            with contextlib.suppress(Exception):
                connection.close()
        self._connections.clear()
