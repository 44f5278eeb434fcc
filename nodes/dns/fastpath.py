"""The common case straight from the wire: a plain query (one question, no other records,
or an EDNS OPT without options) for a service name's A record. The question is parsed
with a few slices, the policy decides as for any query, and the reply is the query's own
question behind a ready-made header and a cached answer section (per zone serial,
cluster and TTL), so no DNS library runs per query.

Everything else (the apex, static names, other types, options such as client subnet or
cookies, UPDATE, anything odd) returns None and goes to the dnslib resolver, which gives
the same answers for the queries handled here (tests compare the two byte for byte).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

from nodes.dns.policies import Decision
from nodes.dns.wire import OPT_PLAIN
from nodes.dns.zone import Zone

_HEADER = struct.Struct(">HHHHHH")


class FastPath:
    def __init__(self, services: dict[str, int], zone: Callable[[], Zone],
                 decide: Callable[[str, int], Decision]) -> None:
        # wire-form lower-case name → (absolute name, TTL)
        self.services = {_wire(name): (name, ttl) for name, ttl in services.items()}
        self.zone = zone
        self.decide = decide
        self._answers: dict[tuple[int, str, int], tuple[bytes, int]] = {}
        self._serial = -1
        self._clients: dict[str, int] = {}
        self._parsed: dict[tuple[bytes, int], tuple[str, int, bool] | bool] = {}

    def _answer_section(self, zone: Zone, cluster: str, ttl: int) -> tuple[bytes, int]:
        if zone.serial != self._serial:
            self._answers.clear()
            self._serial = zone.serial
        key = (zone.serial, cluster, ttl)
        cached = self._answers.get(key)
        if cached is None:
            addresses = zone.view.clusters[cluster].addresses
            body = b"".join(b"\xc0\x0c\x00\x01\x00\x01" + struct.pack(">IH", ttl, 4)
                            + socket.inet_aton(ip) for ip in addresses)
            cached = self._answers[key] = (body, len(addresses))
        return cached

    def client_int(self, address: str) -> int:
        value = self._clients.get(address)
        if value is None:
            if len(self._clients) > 65536:
                self._clients.clear()
            value = self._clients[address] = struct.unpack(">I", socket.inet_aton(address))[0]
        return value

    def answer(self, data: bytes, client: str) -> tuple[bytes, Decision, str] | None:
        """(reply, decision, service) for a query this path handles; None otherwise."""
        if len(data) < 17:
            return None
        ident, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
        if flags & 0xF800 or qd != 1 or an or ns or ar > 1:  # QR or opcode set, odd counts
            return None
        body = bytes(data[12:])
        parsed = self._parsed.get((body, ar))
        if parsed is None:
            if len(self._parsed) > 16384:
                self._parsed.clear()
            parsed = self._parsed[(body, ar)] = self._parse(data, ar)
        if parsed is False:
            return None
        service, ttl, edns = parsed  # type: ignore[misc]
        decision = self.decide(service, self.client_int(client))
        if decision.cluster is None:
            return None
        zone = self.zone()
        answers, count = self._answer_section(zone, decision.cluster, ttl)
        reply_flags = 0x8400 | (flags & 0x0100)  # QR, AA, and the query's RD
        header = _HEADER.pack(ident, reply_flags, 1, count, 0, 1 if edns else 0)
        question_end = len(body) - (11 if edns else 0)
        reply = header + body[:question_end] + answers
        if edns:
            reply += OPT_PLAIN
        return reply, decision, service

    def _parse(self, data: bytes, ar: int) -> tuple[str, int, bool] | bool:
        """(service, TTL, EDNS) for a question this path answers, False otherwise."""
        end = 12
        while True:
            length = data[end] if end < len(data) else 0xFF
            if length == 0:
                break
            if length > 63:
                return False  # compression or garbage: the full parser decides
            end += length + 1
        qname_end = end + 1
        if len(data) < qname_end + 4 or data[qname_end: qname_end + 4] != b"\x00\x01\x00\x01":
            return False
        found = self.services.get(bytes(data[12:qname_end]).lower())
        if found is None:
            return False
        rest = data[qname_end + 4:]
        if ar:
            if len(rest) != 11 or rest[0] != 0 or rest[1:3] != b"\x00\x29" or \
                    rest[5:11] != b"\x00\x00\x00\x00\x00\x00":
                return False  # options (ECS, cookies), DO bit, EDNS version: full parser
        elif rest:
            return False
        return found[0], found[1], bool(ar)


def _wire(name: str) -> bytes:
    labels = [label for label in name.rstrip(".").lower().split(".") if label]
    return b"".join(bytes([len(label)]) + label.encode() for label in labels) + b"\x00"
