"""RFC 2136 dynamic UPDATE, authenticated with TSIG (RFC 8945), parsed and signed by
dnspython; the zone change itself is `Zone.apply`, all or nothing.

Refusals, as BIND answers them (see the notes): unsigned → REFUSED; unknown key →
NOTAUTH (BADKEY); wrong MAC or time → NOTAUTH (BADSIG/BADTIME); zone section not our zone
→ NOTAUTH; a name outside the zone → NOTZONE; a failed prerequisite → its RCODE (NXRRSET,
YXRRSET, NXDOMAIN, YXDOMAIN); a malformed message → FORMERR. Replies to signed updates are
signed with the same key, since nsupdate verifies them.

TSIG, RFC 8945: the key is checked, then the MAC, then the time (§5.2), each refusal
carrying a TSIG record with its error so a client can tell them apart (§5.3.2): BADKEY
and BADSIG unsigned, BADTIME signed with the server's time in Other Data. The time window
is the message's fudge but at most FUDGE_CAP_S (300 s, the fudge RFC 8945 §10 recommends),
whatever fudge the sender claims. A message whose MAC was already accepted within that
window is a replay and is REFUSED: an UPDATE applies once.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

from nodes.dns.config import TsigKey
from nodes.dns.wire import question_end, skip_name
from nodes.dns.zone import Op, Zone, ZoneError

FUDGE_CAP_S = 300
TSIG_TYPE = 250


@dataclass
class UpdateOutcome:
    reply: bytes
    rcode: str
    reason: str
    ops: list[Op]
    key: str | None = None


def _bare_reply(wire: bytes, rcode: int) -> bytes:
    """A header-only reply (for messages dnspython cannot or must not parse)."""
    if len(wire) < 12:
        return b""
    ident, flags = struct.unpack_from(">HH", wire)
    flags = (flags & 0x7800) | 0x8000 | rcode  # keep the opcode, set QR and the RCODE
    return struct.pack(">HHHHHH", ident, flags, 0, 0, 0, 0)


def read_tsig(wire: bytes) -> tuple[dns.name.Name, dns.rdtypes.ANY.TSIG.TSIG] | None:
    """The TSIG record ending the message (its owner is the key name), or None."""
    try:
        counts = struct.unpack_from(">HHHH", wire, 4)
        offset = question_end(wire)
        last = None
        for _ in range(sum(counts[1:])):
            start = offset
            offset = skip_name(wire, offset)
            rtype, _class, _ttl, length = struct.unpack_from(">HHIH", wire, offset)
            last = (start, rtype, offset + 10, length)
            offset += 10 + length
    except (struct.error, IndexError, ValueError):
        return None
    if last is None or last[1] != TSIG_TYPE:
        return None
    start, _type, rdata_at, length = last
    try:
        owner, _ = dns.name.from_wire(wire, start)
        rdata = dns.rdata.from_wire("ANY", "TSIG", wire, rdata_at, length)
    except dns.exception.DNSException:
        return None
    return owner, rdata  # type: ignore[return-value]


class UpdateHandler:
    def __init__(self, zone_origin: str, key: TsigKey | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.origin = dns.name.from_text(zone_origin)
        self.keyring = {dns.name.from_text(key.name): dns.tsig.Key(
            key.name, key.secret, key.algorithm)} if key else {}
        self.clock = clock
        self.accepted: dict[bytes, float] = {}  # MACs accepted → until when they could replay

    def handle(self, wire: bytes, zone: Callable[[], Zone],
               commit: Callable[[list[Op]], Zone]) -> UpdateOutcome:
        signed = read_tsig(wire)
        if signed is not None and signed[0] not in self.keyring:
            return self._tsig_refusal(wire, signed, dns.rcode.BADKEY,
                                      f"unknown TSIG key {signed[0]} (BADKEY)")
        try:
            message = dns.message.from_wire(wire, keyring=self.keyring)
        except dns.message.UnknownTSIGKey as err:
            return UpdateOutcome(_bare_reply(wire, dns.rcode.NOTAUTH), "NOTAUTH",
                                 f"unknown TSIG key (BADKEY): {err}", [])
        except dns.tsig.BadTime:
            assert signed is not None
            return self._tsig_refusal(wire, signed, dns.rcode.BADTIME,
                                      "TSIG time outside the sender's fudge (BADTIME)")
        except (dns.tsig.BadKey, dns.tsig.BadAlgorithm) as err:
            assert signed is not None
            return self._tsig_refusal(wire, signed, dns.rcode.BADKEY,
                                      f"TSIG key or algorithm not ours ({err}) (BADKEY)")
        except dns.tsig.BadSignature as err:
            if signed is None:
                return UpdateOutcome(_bare_reply(wire, dns.rcode.NOTAUTH), "NOTAUTH",
                                     f"TSIG check failed: {err}", [])
            return self._tsig_refusal(wire, signed, dns.rcode.BADSIG,
                                      f"TSIG check failed ({type(err).__name__}) (BADSIG)")
        except (dns.exception.DNSException, ValueError, struct.error) as err:
            return UpdateOutcome(_bare_reply(wire, dns.rcode.FORMERR), "FORMERR",
                                 f"malformed update: {err}", [])
        if signed is not None:
            refused = self._check_time_and_replay(wire, signed)
            if refused is not None:
                return refused
        response = dns.message.make_response(message)
        key = str(message.keyname) if message.had_tsig else None
        rcode, reason, ops = self._process(message, zone, commit)
        response.set_rcode(dns.rcode.from_text(rcode))
        return UpdateOutcome(response.to_wire(), rcode, reason, ops, key)

    def _check_time_and_replay(self, wire: bytes, signed: tuple[dns.name.Name, Any]
                               ) -> UpdateOutcome | None:
        """BADTIME beyond the capped fudge; REFUSED for a MAC accepted before."""
        _owner, rdata = signed
        now = self.clock()
        window = min(int(rdata.fudge), FUDGE_CAP_S)
        if abs(now - int(rdata.time_signed)) > window:
            return self._tsig_refusal(wire, signed, dns.rcode.BADTIME,
                                      f"TSIG time {int(now - rdata.time_signed)} s off the "
                                      f"server's clock, over {window} s (BADTIME)")
        for mac, until in list(self.accepted.items()):
            if until < now:
                del self.accepted[mac]
        if bytes(rdata.mac) in self.accepted:
            return UpdateOutcome(_bare_reply(wire, dns.rcode.REFUSED), "REFUSED",
                                 "replayed: this signed message was already applied", [],
                                 str(signed[0]))
        self.accepted[bytes(rdata.mac)] = int(rdata.time_signed) + window
        return None

    def _tsig_refusal(self, wire: bytes, signed: tuple[dns.name.Name, Any], error: int,
                      reason: str) -> UpdateOutcome:
        """NOTAUTH with a TSIG record holding `error` (RFC 8945 §5.3.2): unsigned for BADKEY
        and BADSIG, signed for BADTIME with the server's time in Other Data."""
        owner, request = signed
        reply = _bare_reply(wire, dns.rcode.NOTAUTH)
        if not reply:
            return UpdateOutcome(b"", "NOTAUTH", reason, [])
        now = int(self.clock())
        other = struct.pack(">HI", now >> 32, now & 0xFFFFFFFF) \
            if error == dns.rcode.BADTIME else b""
        template = dns.rdtypes.ANY.TSIG.TSIG(
            dns.rdataclass.ANY, dns.rdatatype.TSIG, request.algorithm, request.time_signed,
            request.fudge, b"", request.original_id, error, other)
        key = self.keyring.get(owner)
        if error == dns.rcode.BADTIME and key is not None:
            template, _ctx = dns.tsig.sign(reply, key, template, int(request.time_signed),
                                           request.mac)
        record = owner.to_wire() + struct.pack(">HHIH", TSIG_TYPE, dns.rdataclass.ANY, 0, 0)
        data = template.to_wire()
        record = record[:-2] + struct.pack(">H", len(data)) + data
        reply = reply[:10] + struct.pack(">H", 1) + reply[12:] + record
        return UpdateOutcome(reply, "NOTAUTH", reason, [], str(owner))

    def _process(self, message: dns.message.Message, zone: Callable[[], Zone],
                 commit: Callable[[list[Op]], Zone]) -> tuple[str, str, list[Op]]:
        if not message.had_tsig:
            return "REFUSED", "unsigned update (TSIG is required)", []
        sections = message.sections
        if len(sections[0]) != 1 or sections[0][0].rdtype != dns.rdatatype.SOA:
            return "FORMERR", "the zone section must hold exactly one SOA question", []
        if sections[0][0].name != self.origin:
            return "NOTAUTH", f"not authoritative for {sections[0][0].name}", []
        current = zone()
        try:
            self._check_prerequisites(sections[1], current)
            ops = [self._op(rrset, rd) for rrset in sections[2]
                   for rd in (list(rrset) or [None])]
            new = commit(ops)
        except ZoneError as err:
            return err.rcode, err.message, []
        return "NOERROR", "applied" if new is not current else "no change", ops

    def _op(self, rrset: object, rd: object) -> Op:
        name = str(rrset.name)  # type: ignore[attr-defined]
        rtype = dns.rdatatype.to_text(rrset.rdtype)  # type: ignore[attr-defined]
        rdclass = rrset.rdclass  # type: ignore[attr-defined]
        deleting = rrset.deleting  # type: ignore[attr-defined]
        text = rd.to_text() if rd is not None else None  # type: ignore[attr-defined]
        if deleting is None and rdclass == dns.rdataclass.IN and text is not None:
            return Op("add", name, rtype, rrset.ttl, (text,))  # type: ignore[attr-defined]
        if deleting == dns.rdataclass.ANY:
            if rtype == "ANY":
                return Op("delete_name", name)
            return Op("delete_rrset", name, rtype)
        if deleting == dns.rdataclass.NONE and text is not None:
            return Op("delete_rr", name, rtype, 0, (text,))
        raise ZoneError("FORMERR", f"update record {name} {rtype} has an invalid class")

    def _check_prerequisites(self, prereqs: list[object], zone: Zone) -> None:
        for rrset in prereqs:
            name = str(rrset.name).lower()  # type: ignore[attr-defined]
            rtype = dns.rdatatype.to_text(rrset.rdtype)  # type: ignore[attr-defined]
            deleting = rrset.deleting  # type: ignore[attr-defined]
            if not zone.in_zone(name):
                raise ZoneError("NOTZONE", f"prerequisite {name} is outside the zone")
            exists = zone.rrset(name, rtype) is not None if rtype != "ANY" \
                else zone.has_name(name)
            if deleting == dns.rdataclass.ANY and not exists:
                raise ZoneError("NXDOMAIN" if rtype == "ANY" else "NXRRSET",
                                f"prerequisite: {name} {rtype} does not exist")
            if deleting == dns.rdataclass.NONE and exists:
                raise ZoneError("YXDOMAIN" if rtype == "ANY" else "YXRRSET",
                                f"prerequisite: {name} {rtype} exists")
            if deleting is None and rtype != "ANY":
                held = zone.rrset(name, rtype)
                wanted = sorted(rd.to_text() for rd in rrset)  # type: ignore[attr-defined]
                if held is None or sorted(held.rdatas) != wanted:
                    raise ZoneError("NXRRSET", f"prerequisite: {name} {rtype} differs")

