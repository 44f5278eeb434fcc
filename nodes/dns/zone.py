"""The CDN zone as an immutable snapshot, changed only by whole batches of operations.

`Zone.apply(ops)` checks every operation first and returns a new zone with the serial one
higher (or the same zone if nothing changed), or raises `ZoneError` with the RCODE to
answer and changes nothing; the server swaps the snapshot in one assignment. Queries
therefore see the old zone or the new one, never half an update. RDATA is normalised by
dnspython's parser, so `0.92`, `"0.92"` and the TXT an UPDATE carries compare equal.

SOA and NS at the apex and the service names belong to the configuration: they cannot be
written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from nodes.common.records import SchemeError, check_value, meaning

if TYPE_CHECKING:
    from nodes.dns.view import View

WRITABLE_TYPES = ("A", "AAAA", "TXT", "CNAME", "MX", "SRV", "PTR", "NS")
ACTIONS = ("add", "replace", "delete_rrset", "delete_rr", "delete_name")


class ZoneError(ValueError):
    """An operation refused; `rcode` is the DNS RCODE name to answer with."""

    def __init__(self, rcode: str, message: str) -> None:
        super().__init__(message)
        self.rcode = rcode
        self.message = message


@dataclass(frozen=True)
class RRset:
    ttl: int
    rdatas: tuple[str, ...]
    updated: float  # time.time() of the last change


@dataclass(frozen=True)
class Op:
    action: str
    name: str
    rtype: str = "ANY"
    ttl: int = 0
    rdata: tuple[str, ...] = ()


def absolute(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def normalise(rtype: str, text: str, origin: str) -> str:
    try:
        rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), text,
                                 origin=dns.name.from_text(origin), relativize=False)
    except (dns.exception.DNSException, ValueError) as err:
        raise ZoneError("FORMERR", f"{rtype} {text!r} is not valid RDATA: {err}") from err
    return str(rd.to_text())


@dataclass(frozen=True)
class Zone:
    origin: str
    services: frozenset[str]
    serial: int = 1
    rrsets: dict[tuple[str, str], RRset] = field(default_factory=dict)

    # -- reading ---------------------------------------------------------------------------
    def rrset(self, name: str, rtype: str) -> RRset | None:
        return self.rrsets.get((absolute(name), rtype.upper()))

    def has_name(self, name: str) -> bool:
        name = absolute(name)
        return name in self.services or name == self.origin or any(
            n == name for n, _t in self.rrsets)

    def in_zone(self, name: str) -> bool:
        name = absolute(name)
        return name == self.origin or name.endswith("." + self.origin)

    @cached_property
    def view(self) -> View:
        from nodes.dns.view import build_view

        return build_view(self)

    # -- changing --------------------------------------------------------------------------
    def check(self, op: Op) -> Op:
        """The op with name and RDATA normalised, or ZoneError naming what is wrong."""
        if op.action not in ACTIONS:
            raise ZoneError("FORMERR", f"unknown operation {op.action!r}")
        name = absolute(op.name)
        if not self.in_zone(name):
            raise ZoneError("NOTZONE", f"{name} is outside the zone {self.origin}")
        if name == self.origin:
            raise ZoneError("REFUSED", f"the apex {name} (SOA, NS) comes from the configuration")
        if name in self.services:
            raise ZoneError("REFUSED", f"{name} is a service name answered by policy")
        rtype = op.rtype.upper()
        if op.action in ("add", "replace", "delete_rr", "delete_rrset") and \
                rtype not in WRITABLE_TYPES:
            raise ZoneError("REFUSED", f"type {rtype} is not served here "
                                       f"(writable: {', '.join(WRITABLE_TYPES)})")
        rdata = tuple(normalise(rtype, r, self.origin) for r in op.rdata)
        if op.action in ("add", "replace") and not rdata:
            raise ZoneError("FORMERR", f"{op.action} {name} {rtype} needs RDATA")
        try:
            kind = meaning(name, self.origin).kind
            for text in rdata:
                check_value(kind, rtype, text)
        except SchemeError as err:
            raise ZoneError("REFUSED", f"{name}: {err}") from err
        if op.ttl < 0 or op.ttl > 86400:
            raise ZoneError("FORMERR", f"TTL {op.ttl} is outside 0–86400")
        return Op(op.action, name, rtype, op.ttl, rdata)

    def apply(self, ops: list[Op], now: float | None = None) -> Zone:
        checked = [self.check(op) for op in ops]
        now = time.time() if now is None else now
        rrsets = dict(self.rrsets)
        changed = False
        for op in checked:
            key = (op.name, op.rtype)
            current = rrsets.get(key)
            if op.action == "add":
                if op.rtype == "CNAME" and any(n == op.name and t != "CNAME" for n, t in rrsets):
                    continue  # RFC 2136 §3.4.2.2: a CNAME cannot join other data
                if op.rtype != "CNAME" and (op.name, "CNAME") in rrsets:
                    continue
                merged = (current.rdatas if current else ()) + tuple(
                    r for r in op.rdata if not current or r not in current.rdatas)
                if op.rtype == "CNAME":
                    merged = op.rdata[-1:]
                rrsets[key] = RRset(op.ttl, merged, now)
                changed = True  # even an unchanged value is a fresh measurement
            elif op.action == "replace":
                rrsets[key] = RRset(op.ttl, op.rdata, now)
                changed = True
            elif op.action == "delete_rrset":
                if op.rtype == "ANY":
                    raise ZoneError("FORMERR", "delete_rrset needs a type; use delete_name")
                changed |= rrsets.pop(key, None) is not None
            elif op.action == "delete_rr" and current is not None:
                kept = tuple(r for r in current.rdatas if r not in op.rdata)
                if kept != current.rdatas:
                    changed = True
                    if kept:
                        rrsets[key] = replace(current, rdatas=kept, updated=now)
                    else:
                        del rrsets[key]
            elif op.action == "delete_name":
                for other in [k for k in rrsets if k[0] == op.name]:
                    del rrsets[other]
                    changed = True
        if not changed:
            return self
        return Zone(self.origin, self.services, self.serial + 1, rrsets)
