"""Wire format of the kernel's nfnetlink_queue protocol, encoded and decoded by hand.

Part of the `nfqueue` shaping backend: `delayd` uses these messages to bind queues, receive
packet ids and hand back verdicts. Only what a delay/loss emulator needs is here: bind and
configure a queue, read the id of each queued packet, and give single or batch verdicts.
Pure functions over bytes, so they are unit-tested without root or sockets.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 0x2
NLMSG_DONE = 0x3

NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3

NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_TIMESTAMP = 4

NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5

NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2

NFQNL_COPY_META = 1
NFQA_CFG_F_GSO = 0x4

NF_DROP = 0
NF_ACCEPT = 1

_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("=BBH")
_NLATTR = struct.Struct("=HH")
_HEADERS = _NLMSGHDR.size + _NFGENMSG.size


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, payload: bytes) -> bytes:
    length = _NLATTR.size + len(payload)
    return _NLATTR.pack(length, kind) + payload + b"\0" * (_align(length) - length)


def _message(msg_type: int, queue: int, attrs: bytes, seq: int, flags: int) -> bytes:
    body = _NFGENMSG.pack(socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
    length = _NLMSGHDR.size + len(body)
    header = _NLMSGHDR.pack(length, (NFNL_SUBSYS_QUEUE << 8) | msg_type, flags, seq, 0)
    return header + body


def bind_queue(queue: int, seq: int = 0) -> bytes:
    """CONFIG message binding this socket to queue number `queue` (asks for an ack)."""
    cmd = struct.pack("=BxH", NFQNL_CFG_CMD_BIND, socket.htons(socket.AF_UNSPEC))
    return _message(NFQNL_MSG_CONFIG, queue, _attr(NFQA_CFG_CMD, cmd), seq,
                    NLM_F_REQUEST | NLM_F_ACK)


def unbind_queue(queue: int, seq: int = 0) -> bytes:
    cmd = struct.pack("=BxH", NFQNL_CFG_CMD_UNBIND, socket.htons(socket.AF_UNSPEC))
    return _message(NFQNL_MSG_CONFIG, queue, _attr(NFQA_CFG_CMD, cmd), seq,
                    NLM_F_REQUEST | NLM_F_ACK)


def configure_queue(queue: int, maxlen: int, gso: bool = True, seq: int = 0) -> bytes:
    """CONFIG message: metadata-only copies, queue length `maxlen`, GSO packets kept whole."""
    attrs = _attr(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META))
    attrs += _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", maxlen))
    if gso:
        flag = struct.pack(">I", NFQA_CFG_F_GSO)
        attrs += _attr(NFQA_CFG_FLAGS, flag) + _attr(NFQA_CFG_MASK, flag)
    return _message(NFQNL_MSG_CONFIG, queue, attrs, seq, NLM_F_REQUEST | NLM_F_ACK)


def verdict(queue: int, packet_id: int, accept: bool) -> bytes:
    """Verdict on one packet."""
    hdr = struct.pack(">II", NF_ACCEPT if accept else NF_DROP, packet_id)
    return _message(NFQNL_MSG_VERDICT, queue, _attr(NFQA_VERDICT_HDR, hdr), 0, NLM_F_REQUEST)


def batch_accept(queue: int, up_to_id: int) -> bytes:
    """One verdict accepting every packet still queued with an id up to `up_to_id`."""
    hdr = struct.pack(">II", NF_ACCEPT, up_to_id)
    return _message(NFQNL_MSG_VERDICT_BATCH, queue, _attr(NFQA_VERDICT_HDR, hdr), 0,
                    NLM_F_REQUEST)


@dataclass(frozen=True)
class Queued:
    """A packet the kernel queued: which queue, the id a verdict must name, and when it
    arrived (wall-clock seconds) if the kernel timestamped it."""

    queue: int
    packet_id: int
    arrived: float | None = None


class NetlinkError(OSError):
    """The kernel refused a request (an NLMSG_ERROR carrying a negative errno)."""


def parse(buffer: bytes) -> Iterator[Queued]:
    """Yield the queued packets in one datagram from the kernel; raise on error replies.

    Acks (errno 0) are skipped. A truncated or malformed message ends the parse.
    """
    offset = 0
    end = len(buffer)
    while offset + _NLMSGHDR.size <= end:
        length, msg_type, _flags, _seq, _pid = _NLMSGHDR.unpack_from(buffer, offset)
        if length < _NLMSGHDR.size or offset + length > end:
            return
        if msg_type == NLMSG_ERROR:
            (errno,) = struct.unpack_from("=i", buffer, offset + _NLMSGHDR.size)
            if errno:
                raise NetlinkError(-errno, f"nfnetlink_queue request refused (errno {-errno})")
        elif msg_type == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET and length >= _HEADERS:
            _family, _version, res_id = _NFGENMSG.unpack_from(buffer, offset + _NLMSGHDR.size)
            packet_id, arrived = _packet_attrs(buffer, offset + _HEADERS, offset + length)
            if packet_id is not None:
                yield Queued(socket.ntohs(res_id), packet_id, arrived)
        offset += _align(length)


def _packet_attrs(buffer: bytes, start: int, end: int) -> tuple[int | None, float | None]:
    """The packet id and, when present, the kernel's receive timestamp."""
    pos = start
    packet_id: int | None = None
    arrived: float | None = None
    while pos + _NLATTR.size <= end:
        length, kind = _NLATTR.unpack_from(buffer, pos)
        if length < _NLATTR.size or pos + length > end:
            break
        kind &= 0x3FFF
        if kind == NFQA_PACKET_HDR and length >= _NLATTR.size + 4:
            (packet_id,) = struct.unpack_from(">I", buffer, pos + _NLATTR.size)
        elif kind == NFQA_TIMESTAMP and length >= _NLATTR.size + 16:
            seconds, micros = struct.unpack_from(">QQ", buffer, pos + _NLATTR.size)
            arrived = seconds + micros / 1e6
        pos += _align(length)
    return packet_id, arrived
