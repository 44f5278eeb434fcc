"""The player's HTTP client counts a segment's bytes without keeping them, for every way a
server may frame a body (Content-Length, chunked, until close), and keeps them when asked
(the MPD). A body trickling in packet by packet is read in batches (`BATCH`), yet its last
byte ends the download when it comes, a trickle slower than a batch per timeout is not
silence, and silence still ends a download."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

import pytest

from nodes.client.http import BATCH, HttpClient

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


Send = Callable[[asyncio.StreamWriter], Awaitable[None]]


async def one_response(send: Send, timeout_s: float) -> tuple[int, int, int, float]:
    """GET from a server whose reply `send` writes; (status, size, reads, seconds)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await reader.readuntil(b"\r\n\r\n")
        await send(writer)
        await asyncio.sleep(3 * timeout_s)  # the connection stays open: no close ends a read
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    http = HttpClient(timeout_s=timeout_s)
    try:
        started = time.monotonic()
        response = await http.get("127.0.0.1", port, "/seg.m4s", "cdn", keep_body=False)
        connection, = http._connections.values()
        return response.status, response.size, connection.reads, time.monotonic() - started
    finally:
        http.close()
        server.close()
        await server.wait_closed()


def head(length: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length


def test_a_trickling_body_is_read_in_batches_not_packet_by_packet() -> None:
    piece, pieces = 1400, 200  # 280 kB as 200 segments, 2 ms apart: a shaped link's pace

    async def send(writer: asyncio.StreamWriter) -> None:
        writer.write(head(piece * pieces))
        for _ in range(pieces):
            writer.write(bytes(piece))
            await writer.drain()
            await asyncio.sleep(0.002)

    status, size, reads, _ = asyncio.run(one_response(send, timeout_s=5))
    assert (status, size) == (200, piece * pieces)
    # a batch's worth per wake-up (and a read of what came meanwhile), not one per packet
    assert reads <= 2 * (piece * pieces) // BATCH + 4, reads


def test_the_last_byte_ends_the_download_when_it_comes() -> None:
    length = BATCH + 1000  # the last read asks for the 1000 bytes left, not a batch

    async def send(writer: asyncio.StreamWriter) -> None:
        writer.write(head(length) + bytes(BATCH))
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.write(bytes(1000))
        await writer.drain()

    status, size, _, seconds = asyncio.run(one_response(send, timeout_s=5))
    assert (status, size) == (200, length) and seconds < 2, seconds


def test_a_trickle_slower_than_a_batch_per_timeout_is_not_silence() -> None:
    async def send(writer: asyncio.StreamWriter) -> None:  # 1 kB per 0.3 s, timeout 1 s
        writer.write(head(12 * 1024))
        for _ in range(12):
            writer.write(bytes(1024))
            await writer.drain()
            await asyncio.sleep(0.3)

    assert asyncio.run(one_response(send, timeout_s=1))[:2] == (200, 12 * 1024)


def test_silence_still_ends_a_download() -> None:
    async def send(writer: asyncio.StreamWriter) -> None:  # 2 kB of 100 kB, then nothing
        writer.write(head(100 * 1024) + bytes(2048))
        await writer.drain()

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(one_response(send, timeout_s=0.5))
    assert time.monotonic() - started < 2.5  # twice the timeout after the last byte, at most
