"""What each shaped link's kernel queue did, read over rtnetlink (engine, measurement): per
link direction, the htb qdisc's bytes sent, backlog, queue length, drops and overlimits,
and the rate its class is told (the leaf's drops added in: netem's or the FIFO's).

One NETLINK_ROUTE socket per network namespace, opened once inside it (`setns`, then back)
and kept: a socket stays bound to the namespace it was made in, so every sample is two
dumps per namespace (RTM_GETQDISC, RTM_GETTCLASS) and no process is started. The structures
are the kernel's uapi: `struct tcmsg` (linux/rtnetlink.h), TCA_STATS2 with
TCA_STATS_BASIC (`struct gnet_stats_basic`) and TCA_STATS_QUEUE (`struct
gnet_stats_queue`, linux/gen_stats.h), and the htb class's TCA_HTB_PARMS (`struct
tc_htb_opt`, linux/pkt_sched.h), whose rate is in bytes per second.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

RTM_NEWQDISC, RTM_GETQDISC, RTM_NEWTCLASS, RTM_GETTCLASS = 36, 38, 40, 42
NLMSG_DONE, NLMSG_ERROR = 3, 2
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
TCA_KIND, TCA_OPTIONS, TCA_STATS2 = 1, 2, 7
TCA_STATS_BASIC, TCA_STATS_QUEUE = 1, 3
TCA_HTB_PARMS = 1
CLONE_NEWNET = 0x40000000
_TCMSG = struct.Struct("=BxxxiIII")  # family, ifindex, handle, parent, info
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, pid


@dataclass(frozen=True)
class Target:
    """One link direction's egress interface, in the namespace of `pid` (None: this one)."""
    label: str  # "<link>:<direction>"
    pid: int | None
    intf: str


@dataclass(frozen=True)
class QueueStats:
    bytes: int
    packets: int
    drops: int
    overlimits: int
    qlen: int
    backlog: int  # bytes
    rate_bps: int | None  # what the htb class is told, bit/s (None: no htb class)


def _attributes(data: bytes, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    pos = start
    while pos + 4 <= end:
        length, kind = struct.unpack_from("=HH", data, pos)
        if length < 4:
            break
        yield kind & 0x3FFF, data[pos + 4: pos + length]
        pos += (length + 3) & ~3


def _messages(sock: socket.socket, kind: int, ifindex: int = 0) -> Iterator[tuple[int, bytes]]:
    """A dump request and its replies: (message type, payload)."""
    body = _TCMSG.pack(socket.AF_UNSPEC, ifindex, 0, 0, 0)
    sock.send(_HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
              + body)
    while True:
        data = sock.recv(1 << 20)
        pos = 0
        while pos + _HEADER.size <= len(data):
            length, msg_type, _flags, _seq, _pid = _HEADER.unpack_from(data, pos)
            if msg_type == NLMSG_DONE:
                return
            if msg_type == NLMSG_ERROR:
                error = struct.unpack_from("=i", data, pos + _HEADER.size)[0]
                if error:
                    raise OSError(-error, os.strerror(-error))
                return
            yield msg_type, data[pos + _HEADER.size: pos + length]
            pos += (length + 3) & ~3


def _parse(payload: bytes) -> tuple[int, int, int, str, dict[int, bytes]]:
    """(ifindex, handle, parent, kind, attributes) of a qdisc or class message."""
    _family, ifindex, handle, parent, _info = _TCMSG.unpack_from(payload, 0)
    attrs = dict(_attributes(payload, _TCMSG.size, len(payload)))
    kind = attrs.get(TCA_KIND, b"").rstrip(b"\0").decode()
    return ifindex, handle, parent, kind, attrs


def _stats(attrs: dict[int, bytes]) -> tuple[int, int, int, int, int, int]:
    """(bytes, packets, drops, overlimits, qlen, backlog) from TCA_STATS2."""
    nested = dict(_attributes(attrs.get(TCA_STATS2, b""), 0, len(attrs.get(TCA_STATS2, b""))))
    sent, packets = struct.unpack_from("=QI", nested[TCA_STATS_BASIC]) \
        if TCA_STATS_BASIC in nested else (0, 0)
    qlen, backlog, drops, _requeues, overlimits = struct.unpack_from(
        "=IIIII", nested[TCA_STATS_QUEUE]) if TCA_STATS_QUEUE in nested else (0, 0, 0, 0, 0)
    return sent, packets, drops, overlimits, qlen, backlog


def _htb_rate_bps(attrs: dict[int, bytes]) -> int | None:
    options = attrs.get(TCA_OPTIONS)
    if not options:
        return None
    parms = dict(_attributes(options, 0, len(options))).get(TCA_HTB_PARMS)
    if parms is None or len(parms) < 12:
        return None
    # struct tc_ratespec: cell_log u8, linklayer u8, overhead u16, cell_align s16, mpu u16,
    # rate u32 (bytes/s)
    return int(struct.unpack_from("=I", parms, 8)[0]) * 8


_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def _inside(pid: int | None) -> Iterator[None]:
    """This thread in the network namespace of `pid`, and back."""
    if pid is None:
        yield
        return
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    theirs = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if _libc.setns(theirs, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into the namespace of {pid}")
        try:
            yield
        finally:
            _libc.setns(own, CLONE_NEWNET)
    finally:
        os.close(theirs)
        os.close(own)


class QdiscReader:
    """Reads every target's queue, each namespace with its own kept socket."""

    def __init__(self, targets: list[Target]) -> None:
        self.sockets: dict[int | None, socket.socket] = {}
        self.where: dict[str, tuple[int | None, int]] = {}  # label → (pid, ifindex)
        for target in targets:
            with _inside(target.pid):
                if target.pid not in self.sockets:
                    self.sockets[target.pid] = socket.socket(
                        socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
                with contextlib.suppress(OSError):
                    self.where[target.label] = (target.pid, socket.if_nametoindex(target.intf))

    def read(self) -> dict[str, QueueStats]:
        """Each target's root qdisc and its htb class's rate."""
        found: dict[str, QueueStats] = {}
        for pid, sock in self.sockets.items():
            wanted = {index: label for label, (p, index) in self.where.items() if p == pid}
            roots: dict[int, tuple[int, int, int, int, int, int]] = {}
            rates: dict[int, int] = {}
            for _type, payload in _messages(sock, RTM_GETQDISC):
                ifindex, _handle, parent, _kind, attrs = _parse(payload)
                if ifindex in wanted and parent == 0xFFFFFFFF:  # TC_H_ROOT
                    roots[ifindex] = _stats(attrs)
            for ifindex in wanted:
                for _type, payload in _messages(sock, RTM_GETTCLASS, ifindex):
                    index, _handle, _parent, kind, attrs = _parse(payload)
                    if kind == "htb" and index == ifindex:
                        rate = _htb_rate_bps(attrs)
                        if rate is not None:
                            rates[ifindex] = rate
            for ifindex, label in wanted.items():
                if ifindex in roots:
                    sent, packets, drops, overlimits, qlen, backlog = roots[ifindex]
                    found[label] = QueueStats(sent, packets, drops, overlimits, qlen, backlog,
                                              rates.get(ifindex))
        return found

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
