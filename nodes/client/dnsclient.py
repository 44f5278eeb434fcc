"""A stub resolver for players: real DNS queries over UDP (recursion desired) to the
configured nameservers, returning the A records and the TTL they gave, so the player knows
when to ask again. A answers for a cluster fit a UDP message, so there is no TCP fallback.

Nameservers are tried as glibc's stub resolver tries them (resolv.conf(5)): up to three
`nameserver` lines in order, each given `options timeout:N` seconds, the whole list
`attempts:N` times (defaults 5 and 2); a timeout, SERVFAIL or REFUSED moves on to the next
server, any other answer is final. Each server that failed is reported to the caller."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

from dnslib import QTYPE, RCODE, DNSRecord


class ResolveError(Exception):
    pass


class ServerFailed(ResolveError):
    """No usable answer from this server (timeout, SERVFAIL, REFUSED): try the next."""


MAXNS = 3  # glibc's limit on nameserver lines
GLIBC_TIMEOUT_S, GLIBC_ATTEMPTS = 5.0, 2


@dataclass(frozen=True)
class StubConfig:
    servers: tuple[tuple[str, int], ...]
    timeout_s: float = GLIBC_TIMEOUT_S
    attempts: int = GLIBC_ATTEMPTS


def read_resolv_conf(text: str) -> StubConfig:
    """The nameservers and the timeout and attempts options of a resolv.conf."""
    servers: list[tuple[str, int]] = []
    timeout_s, attempts = GLIBC_TIMEOUT_S, GLIBC_ATTEMPTS
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver" and len(servers) < MAXNS:
            servers.append((words[1], 53))
        elif words and words[0] == "options":
            for option in words[1:]:
                name, _, value = option.partition(":")
                if name == "timeout" and value.isdigit():
                    timeout_s = float(max(1, int(value)))
                elif name == "attempts" and value.isdigit():
                    attempts = max(1, int(value))
    if not servers:
        raise ValueError("the resolver configuration lists no nameserver")
    return StubConfig(tuple(servers), timeout_s, attempts)


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


async def resolve(name: str, stub: StubConfig,
                  failed: Callable[[str, str], None] | None = None) -> Resolution:
    """Ask the nameservers in turn, as glibc does; `failed(server, why)` for each that
    gave no usable answer."""
    last: ResolveError | None = None
    for _ in range(stub.attempts):
        for server, port in stub.servers:
            try:
                return await resolve_a(name, server, port, stub.timeout_s, tries=1)
            except ServerFailed as err:
                last = err
                if failed is not None:
                    failed(server, str(err))
    raise last or ResolveError(f"{name}: no nameserver")


async def resolve_a(name: str, server: str, port: int = 53, timeout_s: float = 2.0,
                    tries: int = 2) -> Resolution:
    loop = asyncio.get_running_loop()
    last: Exception | None = None
    for _ in range(tries):
        query = DNSRecord.question(name, "A")  # recursion desired, as stub resolvers ask
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
        if reply.header.rcode in (RCODE.SERVFAIL, RCODE.REFUSED):
            raise ServerFailed(f"{name}: {RCODE.get(reply.header.rcode)} from {server}")
        if reply.header.rcode != RCODE.NOERROR:
            raise ResolveError(f"{name}: {RCODE.get(reply.header.rcode)} from {server}")
        records = [rr for rr in reply.rr if rr.rtype == QTYPE.A]
        if not records:
            raise ResolveError(f"{name}: no A records from {server}")
        return Resolution(tuple(str(rr.rdata) for rr in records),
                          min(rr.ttl for rr in records), server)
    raise ServerFailed(f"{name}: no answer from {server}:{port} ({last or 'timeout'})")
