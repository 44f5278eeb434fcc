"""The nfnetlink_queue codec against the kernel's wire layout
(linux/netfilter/nfnetlink_queue.h)."""

from __future__ import annotations

import socket
import struct

import pytest

from cdnlab.net.shaping import nfnetlink as nfq


def header(message: bytes) -> tuple[int, int, int, int]:
    length, kind, flags, _seq, _pid = struct.unpack_from("=IHHII", message)
    family, _version, res_id = struct.unpack_from("=BBH", message, 16)
    assert family == socket.AF_UNSPEC
    return length, kind, flags, socket.ntohs(res_id)


def test_bind_message_layout() -> None:
    message = nfq.bind_queue(7)
    length, kind, flags, queue = header(message)
    assert length == len(message) == 16 + 4 + 8
    assert kind == (3 << 8) | nfq.NFQNL_MSG_CONFIG
    assert flags == nfq.NLM_F_REQUEST | nfq.NLM_F_ACK and queue == 7
    attr_len, attr_type, command = struct.unpack_from("=HHB", message, 20)
    assert (attr_len, attr_type, command) == (8, nfq.NFQA_CFG_CMD, nfq.NFQNL_CFG_CMD_BIND)


def test_configure_asks_for_metadata_only_and_gso() -> None:
    message = nfq.configure_queue(1, 65536)
    assert header(message)[3] == 1
    # NFQA_CFG_PARAMS: copy_range 0 (be32), mode COPY_META, padded to 12 bytes
    assert struct.unpack_from(">IB", message, 24) == (0, nfq.NFQNL_COPY_META)
    assert struct.pack(">I", 65536) in message
    assert struct.pack(">I", nfq.NFQA_CFG_F_GSO) in message


def test_verdicts_carry_queue_verdict_and_id() -> None:
    drop = nfq.verdict(1, 99, accept=False)
    assert header(drop)[1] == (3 << 8) | nfq.NFQNL_MSG_VERDICT and header(drop)[3] == 1
    assert struct.unpack_from(">II", drop, 24) == (nfq.NF_DROP, 99)
    batch = nfq.batch_accept(0, 1234)
    assert header(batch)[1] == (3 << 8) | nfq.NFQNL_MSG_VERDICT_BATCH
    assert struct.unpack_from(">II", batch, 24) == (nfq.NF_ACCEPT, 1234)


def packet_message(queue: int, packet_id: int, stamp: tuple[int, int] | None) -> bytes:
    attrs = struct.pack("=HH", 4 + 7, nfq.NFQA_PACKET_HDR) + struct.pack(">IHB", packet_id,
                                                                           0x0800, 2) + b"\0"
    if stamp:
        attrs += struct.pack("=HH", 20, nfq.NFQA_TIMESTAMP) + struct.pack(">QQ", *stamp)
    body = struct.pack("=BBH", socket.AF_INET, 0, socket.htons(queue)) + attrs
    return struct.pack("=IHHII", 16 + len(body), (3 << 8) | nfq.NFQNL_MSG_PACKET, 0, 0, 0) + body


def test_parse_reads_ids_queues_and_timestamps_from_a_batch() -> None:
    datagram = packet_message(0, 5, (1700000000, 250000)) + packet_message(1, 6, None)
    packets = list(nfq.parse(datagram))
    assert packets == [nfq.Queued(0, 5, 1700000000.25), nfq.Queued(1, 6, None)]


def test_parse_stops_at_truncation_and_raises_on_kernel_errors() -> None:
    whole = packet_message(0, 5, None)
    assert list(nfq.parse(whole[:-3])) == []
    error = struct.pack("=IHHII", 36, nfq.NLMSG_ERROR, 0, 0, 0) + struct.pack("=i", -1) + \
        b"\0" * 16
    with pytest.raises(nfq.NetlinkError):
        list(nfq.parse(error))
    ack = struct.pack("=IHHII", 36, nfq.NLMSG_ERROR, 0, 0, 0) + struct.pack("=i", 0) + b"\0" * 16
    assert list(nfq.parse(ack)) == []
