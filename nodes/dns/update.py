"""RFC 2136 dynamic UPDATE, authenticated with TSIG (RFC 8945), parsed and signed by
dnspython; the zone change itself is `Zone.apply`, all or nothing.

Refusals, as BIND answers them (see the notes): unsigned → REFUSED; unknown key →
NOTAUTH (BADKEY); wrong MAC or time → NOTAUTH (BADSIG/BADTIME); zone section not our zone
→ NOTAUTH; a name outside the zone → NOTZONE; a failed prerequisite → its RCODE (NXRRSET,
YXRRSET, NXDOMAIN, YXDOMAIN); a malformed message → FORMERR. Replies to signed updates are
signed with the same key, since nsupdate verifies them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsig

from nodes.dns.config import TsigKey
from nodes.dns.zone import Op, Zone, ZoneError


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


class UpdateHandler:
    def __init__(self, zone_origin: str, key: TsigKey | None) -> None:
        self.origin = dns.name.from_text(zone_origin)
        self.keyring = {dns.name.from_text(key.name): dns.tsig.Key(
            key.name, key.secret, key.algorithm)} if key else {}

    def handle(self, wire: bytes, zone: Callable[[], Zone],
               commit: Callable[[list[Op]], Zone]) -> UpdateOutcome:
        try:
            message = dns.message.from_wire(wire, keyring=self.keyring)
        except dns.message.UnknownTSIGKey as err:
            return UpdateOutcome(_bare_reply(wire, dns.rcode.NOTAUTH), "NOTAUTH",
                                 f"unknown TSIG key (BADKEY): {err}", [])
        except (dns.tsig.BadSignature, dns.tsig.BadTime, dns.tsig.PeerError) as err:
            return UpdateOutcome(_bare_reply(wire, dns.rcode.NOTAUTH), "NOTAUTH",
                                 f"TSIG check failed ({type(err).__name__}): {err}", [])
        except (dns.exception.DNSException, ValueError, struct.error) as err:
            return UpdateOutcome(_bare_reply(wire, dns.rcode.FORMERR), "FORMERR",
                                 f"malformed update: {err}", [])
        response = dns.message.make_response(message)
        key = str(message.keyname) if message.had_tsig else None
        rcode, reason, ops = self._process(message, zone, commit)
        response.set_rcode(dns.rcode.from_text(rcode))
        return UpdateOutcome(response.to_wire(), rcode, reason, ops, key)

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

