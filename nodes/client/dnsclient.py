"""A stub resolver for players: a real DNS query over UDP (retried once on timeout) to the
configured server, returning the A records and the TTL it gave, so the player knows when to
ask again. A answers for a cluster fit a UDP message, so there is no TCP fallback."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from dnslib import QTYPE, RCODE, DNSRecord


class ResolveError(Exception):
    pass


@dataclass(frozen=True)
class Resolution:
    addresses: tuple[str, ...]
    ttl: int
    server: str


class _OneQuery(asyncio.DatagramProtocol):
    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 2 and int.from_bytes(data[:2], "big") == self.ident and \
                not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def resolve_a(name: str, server: str, port: int = 53, timeout_s: float = 2.0,
                    tries: int = 2) -> Resolution:
    loop = asyncio.get_running_loop()
    last: Exception | None = None
    for _ in range(tries):
        query = DNSRecord.question(name, "A")
        query.header.rd = 0
        ident = random.randrange(1 << 16)
        query.header.id = ident
        transport, protocol = await loop.create_datagram_endpoint(
            lambda ident=ident: _OneQuery(ident), remote_addr=(server, port))
        try:
            transport.sendto(bytes(query.pack()))
            data = await asyncio.wait_for(protocol.answer, timeout_s)
        except (TimeoutError, OSError) as err:
            last = err
            continue
        finally:
            transport.close()
        reply = DNSRecord.parse(data)
        if reply.header.rcode != RCODE.NOERROR:
            raise ResolveError(f"{name}: {RCODE.get(reply.header.rcode)} from {server}")
        records = [rr for rr in reply.rr if rr.rtype == QTYPE.A]
        if not records:
            raise ResolveError(f"{name}: no A records from {server}")
        return Resolution(tuple(str(rr.rdata) for rr in records),
                          min(rr.ttl for rr in records), server)
    raise ResolveError(f"{name}: no answer from {server}:{port} ({last})")
