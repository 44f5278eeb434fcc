"""Persistent HTTP/1.1 for players: one keep-alive connection per server, reused across
segments; responses read by Content-Length or chunked encoding; 302/301/307 followed
(to another cluster or the origin) with the server that finally answered reported. The
timeout is for silence (no byte for that long), not for a whole download."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


class HttpError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    server: str  # address:port that answered
    seconds: float  # request sent → last byte
    redirects: list[str] = field(default_factory=list)


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, timeout_s: float) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout_s)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, path: str, host_header: str, timeout_s: float
                      ) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            await self.open(timeout_s)
        assert self.reader is not None and self.writer is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\n"
                          "User-Agent: cdnlab-player\r\nConnection: keep-alive\r\n\r\n"
                          .encode())
        await self.writer.drain()
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout_s)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise HttpError(f"bad status line {lines[0]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            key, sep, value = line.partition(":")
            if sep:
                headers[key.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self._exactly(int(headers["content-length"]), timeout_s)
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await asyncio.wait_for(self._chunked(), timeout_s)
        else:
            body = await asyncio.wait_for(self.reader.read(), timeout_s)
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(parts[1]), headers, body

    async def _exactly(self, length: int, idle_s: float) -> bytes:
        """Read `length` bytes; give up only when nothing arrives for `idle_s` (a slow link
        may take long for a large segment, a dead one stops sending)."""
        reader = self.reader  # kept: a close meanwhile ends the read, it does not crash it
        assert reader is not None
        parts, left = [], length
        while left:
            part = await asyncio.wait_for(reader.read(min(left, 1 << 16)), idle_s)
            if not part:
                raise asyncio.IncompleteReadError(b"".join(parts), length)
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        chunks = []
        while True:
            size = int((await self.reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await self.reader.readline()
                return b"".join(chunks)
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readline()


class HttpClient:
    def __init__(self, timeout_s: float = 10.0, max_redirects: int = 5) -> None:
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self._connections: dict[tuple[str, int], Connection] = {}

    async def get(self, host: str, port: int, path: str, host_header: str) -> Response:
        started = time.monotonic()
        redirects: list[str] = []
        for _ in range(self.max_redirects + 1):
            status, headers, body = await self._once(host, port, path, host_header)
            if status in (301, 302, 303, 307, 308) and "location" in headers:
                target = urlsplit(headers["location"])
                redirects.append(headers["location"])
                if target.hostname:
                    host, port = target.hostname, target.port or 80
                    host_header = target.netloc
                path = target.path + (f"?{target.query}" if target.query else "")
                continue
            return Response(status, headers, body, f"{host}:{port}",
                            time.monotonic() - started, redirects)
        raise HttpError(f"more than {self.max_redirects} redirects from {path}")

    async def _once(self, host: str, port: int, path: str,
                    host_header: str) -> tuple[int, dict[str, str], bytes]:
        key = (host, port)
        connection = self._connections.get(key)
        reused = connection is not None and connection.writer is not None
        if connection is None:
            connection = self._connections[key] = Connection(host, port)
        try:
            return await connection.request(path, host_header, self.timeout_s)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, HttpError):
            connection.close()
            if not reused:
                raise
        # a kept-alive connection the server had closed: once more on a new one
        return await connection.request(path, host_header, self.timeout_s)

    def forget(self, host: str, port: int = 80) -> None:
        connection = self._connections.pop((host, port), None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        for connection in self._connections.values():
            with contextlib.suppress(Exception):
                connection.close()
        self._connections.clear()
