"""The player's HTTP client counts a segment's bytes without keeping them, for every way a
server may frame a body (Content-Length, chunked, until close), and keeps them when asked
(the MPD)."""

from __future__ import annotations

import asyncio

import pytest

from nodes.client.http import HttpClient

BODY = bytes(range(256)) * 4096  # 1 MiB


def framed(kind: str) -> bytes:
    if kind == "length":
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY
    if kind == "chunked":
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(BODY[i:i + 70000]), BODY[i:i + 70000])
                          for i in range(0, len(BODY), 70000))
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + BODY


async def fetch_twice(kind: str, keep: bool) -> list[tuple[int, int, bytes]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not reader.at_eof():
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            writer.write(framed(kind))
            await writer.drain()
            if kind == "close":
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    http = HttpClient(timeout_s=5)
    try:
        results = []
        for _ in range(2):  # the second on the kept-alive connection (or a new one)
            response = await http.get("127.0.0.1", port, "/seg.m4s", "cdn", keep_body=keep)
            results.append((response.status, response.size, response.body))
        return results
    finally:
        http.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("kind", ["length", "chunked", "close"])
def test_a_discarded_body_is_counted_not_kept(kind: str) -> None:
    for status, size, body in asyncio.run(fetch_twice(kind, keep=False)):
        assert (status, size, body) == (200, len(BODY), b"")


@pytest.mark.parametrize("kind", ["length", "chunked", "close"])
def test_a_kept_body_is_whole(kind: str) -> None:
    for status, size, body in asyncio.run(fetch_twice(kind, keep=True)):
        assert (status, size) == (200, len(BODY)) and body == BODY
