"""TSIG (RFC 8945) on the redirector's UPDATEs: refusals a client can tell apart (a TSIG
record with BADKEY, BADSIG or BADTIME), the fudge capped at 300 s against the server's
clock, and a replayed signed UPDATE refused. Crafted with dnspython, and with nsupdate."""

from __future__ import annotations

import base64
import socket
import time
from unittest import mock

import dns.message
import dns.name
import dns.rcode
import dns.tsig
import dns.update
import pytest

from nodes.dns.update import read_tsig
from tests.dns.conftest import RunningRedirector


def key_of(redirector: RunningRedirector, name: str = "cdnlab-key.",
           secret: str | None = None) -> dns.tsig.Key:
    return dns.tsig.Key(name, base64.b64decode(secret or redirector.secret), "hmac-sha256")


def signed_update(key: dns.tsig.Key, host: str, fudge: int = 300,
                  signed_at: float | None = None) -> dns.update.UpdateMessage:
    update = dns.update.UpdateMessage("cdn.lab.")
    update.add(host, 30, "A", "10.1.1.1")
    update.use_tsig(key, fudge=fudge)
    if signed_at is not None:
        with mock.patch("time.time", return_value=signed_at):
            update.to_wire()  # dnspython signs with time.time() at rendering
    return update


def send(redirector: RunningRedirector, wire: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(3)
        udp.sendto(wire, ("127.0.0.1", redirector.port))
        return udp.recvfrom(65535)[0]


def wire_at(update: dns.update.UpdateMessage, signed_at: float | None) -> bytes:
    if signed_at is None:
        return update.to_wire()
    with mock.patch("time.time", return_value=signed_at):
        return update.to_wire()


@pytest.mark.parametrize(("case", "error", "peer_error"), [
    ("unknown key", dns.rcode.BADKEY, dns.tsig.PeerBadKey),
    ("wrong secret", dns.rcode.BADSIG, dns.tsig.PeerBadSignature),
    ("signed 16.7 h ago, fudge 65535", dns.rcode.BADTIME, dns.tsig.PeerBadTime),
    ("signed 400 s ago, fudge 300", dns.rcode.BADTIME, dns.tsig.PeerBadTime),
])
def test_each_tsig_refusal_carries_its_error(redirector: RunningRedirector, case: str,
                                             error: int, peer_error: type) -> None:
    serial = redirector.serial()
    if case == "unknown key":
        key = key_of(redirector, name="someone-else.")
    elif case == "wrong secret":
        key = key_of(redirector, secret=base64.b64encode(b"w" * 32).decode())
    else:
        key = key_of(redirector)
    ago = {"signed 16.7 h ago, fudge 65535": 60_000, "signed 400 s ago, fudge 300": 400}
    fudge = 65535 if "65535" in case else 300
    signed_at = time.time() - ago[case] if case in ago else None
    request = signed_update(key, "evil", fudge)
    reply_wire = send(redirector, wire_at(request, signed_at))
    assert reply_wire[3] & 0x0F == dns.rcode.NOTAUTH
    owner, tsig = read_tsig(reply_wire)  # type: ignore[misc]
    assert owner == key.name and tsig.error == error
    with pytest.raises(peer_error):  # what a client library makes of it
        dns.message.from_wire(reply_wire, keyring={key.name: key}, request_mac=request.mac)
    if error == dns.rcode.BADTIME:
        server_time = int.from_bytes(tsig.other, "big")
        assert abs(server_time - time.time()) < 5 and tsig.mac, "signed, with our clock"
    else:
        assert tsig.mac == b"", "BADKEY and BADSIG replies are unsigned"
    assert redirector.serial() == serial and redirector.short("evil.cdn.lab.") == []


def test_a_replayed_update_is_refused(redirector: RunningRedirector) -> None:
    serial = redirector.serial()
    wire = signed_update(key_of(redirector), "once").to_wire()
    first, again = send(redirector, wire), send(redirector, wire)
    assert first[3] & 0x0F == dns.rcode.NOERROR
    assert again[3] & 0x0F == dns.rcode.REFUSED
    assert redirector.serial() == serial + 1
    reasons = [e["reason"] for e in redirector.events() if e["event"] == "update"]
    assert reasons[-1].startswith("replayed")


def test_nsupdate_sees_badsig_and_still_updates_with_the_right_key(
        redirector: RunningRedirector) -> None:
    wrong = redirector.nsupdate(["update add evil.cdn.lab. 30 A 6.6.6.6"],
                                secret=base64.b64encode(b"x" * 32).decode())
    assert wrong.returncode != 0 and "NOTAUTH" in wrong.stdout + wrong.stderr
    right = redirector.nsupdate(["update add good.cdn.lab. 30 A 10.2.2.2"])
    assert right.returncode == 0, right.stderr
    assert redirector.short("good.cdn.lab.") == ["10.2.2.2"]
