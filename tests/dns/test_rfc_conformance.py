"""The redirector against the RFCs' letter, with raw packets (crafted here byte by byte or
with dnspython) and Knot's kdig, against the real server process on loopback."""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import dns.edns
import dns.message
import dns.rcode
import pytest

from tests.dns.conftest import RunningRedirector, start_redirector

SERVICE = "video.cdn.lab."
# the subnet a resolver may send, and the querier's own network (loopback), both measured
RTTS = ['update add 10-0-4-0-24.edge_a.rtt.cdn.lab. 0 TXT "6.0"',
        'update add 10-0-4-0-24.edge_x.rtt.cdn.lab. 0 TXT "13.0"',
        'update add 127-0-0-0-8.edge_a.rtt.cdn.lab. 0 TXT "9.0"',
        'update add 127-0-0-0-8.edge_x.rtt.cdn.lab. 0 TXT "4.0"']


def ask(redirector: RunningRedirector, wire: bytes, timeout_s: float = 2.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(timeout_s)
        udp.sendto(wire, ("127.0.0.1", redirector.port))
        return udp.recvfrom(65535)[0]


def opt_rr(payload: int = 1232, ttl: int = 0, options: bytes = b"") -> bytes:
    return struct.pack(">BHHIH", 0, 41, payload, ttl, len(options)) + options


def query(name: str = SERVICE, additional: list[bytes] | None = None, qtype: int = 1,
          ident: int = 77) -> bytes:
    """A query built byte by byte (dnspython would refuse some of these)."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".") if p)
    extra = additional or []
    return (struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, len(extra)) + labels + b"\0"
            + struct.pack(">HH", qtype, 1) + b"".join(extra))


def rcode_of(reply: bytes) -> int:
    message = dns.message.from_wire(reply)
    return int(message.rcode())


def test_two_opt_records_get_formerr(redirector: RunningRedirector) -> None:
    """RFC 6891 §6.1.1: more than one OPT RR → FORMERR."""
    reply = ask(redirector, query(additional=[opt_rr(), opt_rr()]))
    assert struct.unpack_from(">H", reply)[0] == 77
    assert reply[3] & 0x0F == dns.rcode.FORMERR


def test_an_edns_version_above_zero_gets_badvers(redirector: RunningRedirector) -> None:
    """RFC 6891 §6.1.3: unsupported version → BADVERS (16), our OPT at version 0."""
    message = dns.message.from_wire(ask(redirector, query(additional=[opt_rr(ttl=1 << 16)])))
    assert message.rcode() == dns.rcode.BADVERS
    assert message.edns == 0 and not message.answer
    kdig = subprocess.run(["kdig", "@127.0.0.1", "-p", str(redirector.port), "+edns=1",
                           SERVICE, "A"], capture_output=True, text=True, check=False)
    assert "status: BADVERS" in kdig.stdout, kdig.stdout + kdig.stderr


def test_a_name_over_255_octets_gets_formerr(redirector: RunningRedirector) -> None:
    """RFC 1035 §2.3.4: names are at most 255 octets; a longer one is a format error, and
    is answered (before, the reply failed to pack and nothing came back)."""
    long_name = ".".join(["a" * 63] * 4) + ".cdn.lab."
    reply = ask(redirector, query(long_name))
    assert reply[3] & 0x0F == dns.rcode.FORMERR


def test_a_truncated_reply_keeps_the_question_and_opt(redirector: RunningRedirector) -> None:
    """RFC 6891 §7 and RFC 1035: a reply over the client's size goes out with TC set,
    carrying the question (and our OPT for an EDNS query), so the client retries on TCP."""
    many = [f"update add big.cdn.lab. 30 TXT \"{'x' * 200}-{n}\"" for n in range(12)]
    assert redirector.nsupdate(many).returncode == 0
    for extra, has_opt in (([], False), ([opt_rr(payload=600)], True)):
        reply = ask(redirector, query("big.cdn.lab.", extra, qtype=16))
        message = dns.message.from_wire(reply)
        assert message.flags & 0x0200, "TC"
        assert [str(q.name) for q in message.question] == ["big.cdn.lab."]
        assert (message.edns == 0) == has_opt
        assert len(reply) <= 512
    dig_tcp = redirector.dig("+tcp", "big.cdn.lab.", "TXT")
    assert dig_tcp.count("\tIN\tTXT\t") == 12


def test_udp_replies_are_capped_at_what_we_advertise(redirector: RunningRedirector) -> None:
    """A client advertising 4096 bytes still gets at most our 1232 over UDP."""
    many = [f"update add huge.cdn.lab. 30 TXT \"{'y' * 250}-{n}\"" for n in range(12)]
    assert redirector.nsupdate(many).returncode == 0
    reply = ask(redirector, query("huge.cdn.lab.", [opt_rr(payload=4096)], qtype=16))
    assert len(reply) <= 1232
    assert dns.message.from_wire(reply).flags & 0x0200


@pytest.mark.parametrize("option", ["source0", "ipv6"])
def test_a_subnet_that_cannot_decide_gets_scope_zero(redirector: RunningRedirector,
                                                     option: str) -> None:
    """RFC 7871 §7.2.1: an answer not tailored to the subnet carries scope 0. With source
    prefix 0, or an IPv6 subnet (the policy knows IPv4 networks), the querier's address
    decides, so the answer must not claim to hold for the subnet."""
    assert redirector.nsupdate(RTTS).returncode == 0
    if option == "source0":
        ecs = dns.edns.ECSOption("0.0.0.0", 0)
    else:
        ecs = dns.edns.ECSOption("2001:db8::", 56)
    message = dns.message.make_query(SERVICE, "A", use_edns=0, options=[ecs])
    reply = dns.message.from_wire(ask(redirector, message.to_wire()))
    echoed = [o for o in reply.options if isinstance(o, dns.edns.ECSOption)]
    assert reply.rcode() == dns.rcode.NOERROR
    assert [str(rr) for rr in reply.answer[0]] == ["10.9.1.2"], "the querier's network decided"
    assert len(echoed) == 1 and echoed[0].scopelen == 0
    tailored = dns.message.make_query(SERVICE, "A", use_edns=0,
                                      options=[dns.edns.ECSOption("10.0.4.0", 24)])
    reply = dns.message.from_wire(ask(redirector, tailored.to_wire()))
    assert [o.scopelen for o in reply.options if isinstance(o, dns.edns.ECSOption)] == [24]


def test_an_all_stale_redirector_still_answers(tmp_path: Path) -> None:
    """Probes lost (every RTT record older than stale_after_s): the real server answers from
    the last known ranking, and says so in its decision log, instead of SERVFAIL."""
    running = start_redirector(tmp_path, {"stale_after_s": 1})
    try:
        assert running.nsupdate(RTTS).returncode == 0
        time.sleep(1.5)
        assert running.short(SERVICE, "+subnet=10.0.4.0/24") == ["10.9.0.2", "10.9.0.3"]
        running.process.send_signal(signal.SIGTERM)
        running.process.wait(10)
        answers = running.events("decisions.jsonl")
        assert answers[-1]["reason"] == "stale_ranking"
        assert all(not c["usable"] for c in answers[-1]["candidates"])
    finally:
        if running.process.poll() is None:
            running.process.terminate()
            running.process.wait(10)
