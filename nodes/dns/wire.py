"""DNS messages as bytes, where the server needs them before or without a parser: the
EDNS payload size a query advertises, the size a UDP reply may take, and a truncated
reply (RFC 1035 §4.2.1, RFC 6891 §7)."""

from __future__ import annotations

import struct

EDNS_PAYLOAD = 1232  # what we advertise and the most we send over UDP (DNS flag day 2020)
UDP_PLAIN_LIMIT = 512  # a query without EDNS
OPT_TYPE = 41
# our OPT: root name, type 41, payload size, extended RCODE/version/flags 0, no options
OPT_PLAIN = struct.pack(">BHHIH", 0, OPT_TYPE, EDNS_PAYLOAD, 0, 0)


def skip_name(message: bytes, offset: int) -> int:
    """The offset just past the (possibly compressed) name at `offset`."""
    while True:
        length = message[offset]
        if length >= 0xC0:
            return offset + 2
        if length > 63:
            raise ValueError("bad label length")
        offset += length + 1
        if length == 0:
            return offset


def question_end(message: bytes) -> int:
    """The offset just past the question section."""
    offset = 12
    for _ in range(struct.unpack_from(">H", message, 4)[0]):
        offset = skip_name(message, offset) + 4
    return offset


def advertised_size(query: bytes) -> int | None:
    """The UDP payload size the query's OPT record advertises; None without one (or for a
    message too malformed to walk)."""
    try:
        _ident, _flags, _qd, an, ns, ar = struct.unpack_from(">HHHHHH", query)
        offset = question_end(query)
        for index in range(an + ns + ar):
            offset = skip_name(query, offset)
            rtype, rclass, _ttl, length = struct.unpack_from(">HHIH", query, offset)
            if index >= an + ns and rtype == OPT_TYPE:
                return int(rclass)
            offset += 10 + length
    except (struct.error, IndexError, ValueError):
        return None
    return None


def udp_limit(query: bytes) -> int:
    """How large a UDP reply to `query` may be: 512 without EDNS, else what the client
    advertises (at least 512), and never more than we advertise ourselves."""
    size = advertised_size(query)
    if size is None:
        return UDP_PLAIN_LIMIT
    return min(max(UDP_PLAIN_LIMIT, size), EDNS_PAYLOAD)


def truncated(query: bytes, reply: bytes) -> bytes:
    """`reply` cut to its header (TC set), its question and, if the query had EDNS, our OPT
    record, so the client sees what was asked and retries over TCP."""
    flags = struct.unpack_from(">H", reply, 2)[0] | 0x0200
    try:
        end = question_end(reply)
        questions = struct.unpack_from(">H", reply, 4)[0]
    except (struct.error, IndexError, ValueError):
        end, questions = 12, 0
    edns = advertised_size(query) is not None
    header = reply[:2] + struct.pack(">HHHHH", flags, questions, 0, 0, 1 if edns else 0)
    return header + reply[12:end] + (OPT_PLAIN if edns else b"")
