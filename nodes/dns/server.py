"""The redirector's own asyncio loops: UDP and TCP (RFC 1035 two-byte length framing) on
the configured address, both handing messages to `Redirector.handle`. UDP replies larger
than the client can take (512 bytes, or its EDNS payload size, at most ours) go out
truncated (TC, with the question and OPT) so the client retries over TCP."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import struct

from nodes.dns.redirector import Redirector
from nodes.dns.wire import UDP_PLAIN_LIMIT, truncated, udp_limit

TCP_IDLE_S = 30.0


class UdpFront(asyncio.DatagramProtocol):
    def __init__(self, redirector: Redirector) -> None:
        self.redirector = redirector
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = self.redirector.handle(data, addr[0])
        except Exception as err:  # a bug must not stop the server: log it, answer nothing
            self.redirector.log.emit("error", client=addr[0], error=repr(err))
            return
        if reply is not None and self.transport is not None:
            if len(reply) > UDP_PLAIN_LIMIT and len(reply) > udp_limit(data):
                reply = truncated(data, reply)
            self.transport.sendto(reply, addr)


async def _tcp_client(redirector: Redirector, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("peername")[0]
    try:
        while True:
            head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_S)
            data = await asyncio.wait_for(reader.readexactly(struct.unpack(">H", head)[0]),
                                          TCP_IDLE_S)
            try:
                reply = redirector.handle(data, peer)
            except Exception as err:
                redirector.log.emit("error", client=peer, error=repr(err))
                break
            if reply is None:
                break
            writer.write(struct.pack(">H", len(reply)) + reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def serve(redirector: Redirector, ready: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    config = redirector.config
    transport, _ = await loop.create_datagram_endpoint(
        lambda: UdpFront(redirector), local_addr=(config.address, config.port))
    tcp = await asyncio.start_server(lambda r, w: _tcp_client(redirector, r, w),
                                     config.address, config.port, reuse_address=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async def flush_decisions() -> None:
        while True:
            await asyncio.sleep(0.5)
            redirector.decisions.flush()

    flusher = asyncio.create_task(flush_decisions())
    redirector.log.emit("ready", address=config.address, port=config.port, zone=config.zone,
                        serial=redirector.zone.serial)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        flusher.cancel()
        transport.close()
        tcp.close()
        await tcp.wait_closed()
