"""One round of RTT probes: `count` ICMP echo requests (or TCP SYNs to a port; a SYN-ACK or
RST answers) to every target, in waves a little over a host stall apart. A target's round
result is its smallest RTT, which filters queueing noise and a stall out of propagation
RTT.

A probe runs on edge hosts that carry video, so it reads nothing but its own replies: its
receive socket is a raw socket with a classic BPF filter attached (SO_ATTACH_FILTER), which
the kernel runs before queueing a packet, so the video never reaches this process. ICMP
replies are matched on the echo identifier of this round, TCP answers on the destination
port range of this round's SYNs. The RTT runs from just before the request is sent to the
kernel's receive timestamp of the reply (SO_TIMESTAMPNS). ICMP packets are built here; TCP
SYNs are crafted with scapy (checksums over the pseudo-header), sent through an IP_HDRINCL
socket.
"""

from __future__ import annotations

import os
import random
import select
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass

SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY = 8, 0
TCP_PORTS = 256  # source ports one TCP round may use, from a random base
# between a round's waves: longer than the 100 ms a CPU-capped host stops a vCPU for
# (README, "A spinner is idle only to the guest"), so one stall delays at most one probe
# of a target
PROBE_SPACING_S = 0.12


@dataclass(frozen=True)
class Target:
    network: str  # the client network, CIDR
    address: str  # the host probed in it


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(identifier: int, sequence: int) -> bytes:
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, identifier, sequence)
    payload = b"cdnlab-probe"
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, checksum(header + payload), identifier,
                       sequence) + payload


Program = list[tuple[int, int, int, int]]  # classic BPF: (code, jt, jf, k)

# classic BPF opcodes (linux/filter.h); a raw socket's packet starts at the IP header
LDXB_MSH, LDB_IND, LDH_IND = 0xB1, 0x50, 0x48
JEQ_K, JGE_K, JGT_K, RET_K = 0x15, 0x35, 0x25, 0x06


def icmp_filter(identifier: int) -> Program:
    """Accept echo replies carrying `identifier`, nothing else."""
    return [
        (LDXB_MSH, 0, 0, 0),            # X = IP header length
        (LDB_IND, 0, 0, 0),             # A = byte [X + 0]: ICMP type
        (JEQ_K, 0, 3, ICMP_ECHO_REPLY),
        (LDH_IND, 0, 0, 4),             # A = half [X + 4]: identifier
        (JEQ_K, 0, 1, identifier),
        (RET_K, 0, 0, 0xFFFF),
        (RET_K, 0, 0, 0)]


def tcp_filter(first_port: int, ports: int) -> Program:
    """Accept TCP segments to destination ports [first_port, first_port + ports)."""
    return [
        (LDXB_MSH, 0, 0, 0),
        (LDH_IND, 0, 0, 2),             # A = destination port
        (JGE_K, 0, 2, first_port),
        (JGT_K, 1, 0, first_port + ports - 1),
        (RET_K, 0, 0, 0xFFFF),
        (RET_K, 0, 0, 0)]


def attach_filter(sock: socket.socket, program: Program) -> None:
    """SO_ATTACH_FILTER with a `struct sock_fprog` (the kernel copies the instructions)."""
    import ctypes

    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in program))
    fprog = struct.pack("HL", len(program), ctypes.addressof(code))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _receiver(protocol: int, program: Program) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, protocol)
    attach_filter(sock, program)
    # whatever arrived between socket() and the filter: drop it unread
    sock.setblocking(False)
    while True:
        try:
            sock.recv(65536)
        except BlockingIOError:
            break
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return sock


def _kernel_time(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= 16:
            seconds, nanos = struct.unpack("qq", data[:16])
            return seconds + nanos / 1e9
    return None


def _source_for(address: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect((address, 9))
        return str(udp.getsockname()[0])


def probe_round(targets: Iterable[Target], method: str = "icmp", count: int = 3,
                port: int = 80, timeout_s: float = 1.0,
                spacing_s: float = PROBE_SPACING_S) -> dict[str, float | None]:
    """network → best RTT in ms this round (None if nothing answered). The `count` probes
    of a target go in waves `spacing_s` apart (one probe to every target per wave), so a
    stall shorter than the spacing (the host's or the delay path's) delays at most one of
    them and the smallest RTT passes it over; replies are awaited until `timeout_s` after
    the last wave."""
    targets = list(targets)
    if method not in ("icmp", "tcp"):
        raise ValueError(f"unknown probe method {method!r}: use icmp or tcp")
    best: dict[str, float | None] = {t.network: None for t in targets}
    network_of = {t.address: t.network for t in targets}
    sent_at: dict[tuple[str, int], float] = {}
    waves: list[list[tuple[tuple[str, int], tuple[str, int], bytes]]] = [
        [] for _ in range(count)]
    if method == "icmp":
        identifier = (os.getpid() ^ random.randrange(1 << 16)) & 0xFFFF
        receiver = _receiver(socket.IPPROTO_ICMP, icmp_filter(identifier))
        sender = receiver
        for n in range(count):
            waves[n] = [((t.address, 0), (t.address, n), echo_request(identifier, n))
                        for t in targets]
    else:
        from scapy.layers.inet import IP, TCP  # crafting only: checksums, options

        first = random.randrange(20000, 60000 - TCP_PORTS)
        receiver = _receiver(socket.IPPROTO_TCP, tcp_filter(first, TCP_PORTS))
        sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        for i, target in enumerate(t for _ in range(count) for t in targets):
            sport = first + i % TCP_PORTS
            segment = IP(src=_source_for(target.address), dst=target.address) / TCP(
                sport=sport, dport=port, flags="S", seq=random.randrange(1 << 32))
            waves[i // len(targets)].append(
                ((target.address, 0), (target.address, sport), bytes(segment)))

    def receive_until(deadline: float) -> None:
        """Take this round's replies until `deadline` (monotonic), or until every probe
        sent so far is answered."""
        while len(done) < len(sent_at):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([receiver], [], [], left)[0]:
                return
            while True:
                try:
                    data, ancillary, _flags, source = receiver.recvmsg(256, 64)
                except BlockingIOError:
                    break
                arrived = _kernel_time(ancillary) or time.time()
                header = (data[0] & 0x0F) * 4
                offset = header + 6 if method == "icmp" else header + 2
                key = (source[0], struct.unpack_from("!H", data, offset)[0])
                if key not in sent_at or key in done:
                    continue
                done.add(key)
                rtt_ms = (arrived - sent_at[key]) * 1000.0
                network = network_of.get(source[0])
                if network is not None and rtt_ms >= 0 and (
                        best[network] is None or rtt_ms < best[network]):  # type: ignore[operator]
                    best[network] = rtt_ms

    done: set[tuple[str, int]] = set()
    try:
        began = time.monotonic()
        for n, wave in enumerate(waves):
            for destination, key, payload in wave:
                sent_at[key] = time.time()
                try:
                    sender.sendto(payload, destination)
                except OSError:
                    sent_at.pop(key)  # unreachable now: counts as unanswered
            if n == len(waves) - 1:
                receive_until(time.monotonic() + timeout_s)
            else:
                next_wave = began + (n + 1) * spacing_s
                receive_until(next_wave)
                time.sleep(max(0.0, next_wave - time.monotonic()))
    finally:
        receiver.close()
        if sender is not receiver:
            sender.close()
    return best
