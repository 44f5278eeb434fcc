"""`Resolver.resolve(request, client) → (reply, decision)`: every query answered with dnslib.

Authoritative for one zone: SOA and NS (with glue) at the apex; service names answered
with the addresses of the cluster the service's policy chooses (A; AAAA only for clusters
given IPv6 addresses, else NODATA); static records as written; NXDOMAIN for names that do
not exist, NODATA (with the SOA for negative caching) for types that do not; REFUSED
outside the zone;
NOTIMP for other opcodes; FORMERR for a bad question, a name over 255 octets (RFC 1035
§2.3.4), more than one OPT record (RFC 6891 §6.1.1) or a malformed client subnet; BADVERS
for an EDNS version above 0 (RFC 6891 §6.1.3: extended RCODE 16, our OPT at version 0).
A client subnet option decides who the client is and is echoed with the policy's scope;
where the subnet cannot decide (source prefix 0, or IPv6 while the policy knows IPv4
networks) the querier's own address decides and the scope is 0 (RFC 7871 §7.2.1), so no
cache keeps the answer for that subnet only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from dnslib import (
    AAAA,
    EDNS0,
    NS,
    OPCODE,
    QTYPE,
    RCODE,
    RR,
    SOA,
    A,
    DNSHeader,
    DNSLabel,
    DNSRecord,
    EDNSOption,
)

from nodes.dns.config import RedirectorConfig
from nodes.dns.ecs import OPTION_CODE, ClientSubnet, EcsError, parse_ecs
from nodes.dns.policies import Decision
from nodes.dns.wire import EDNS_PAYLOAD
from nodes.dns.zone import Zone

MAX_NAME_OCTETS = 255
BADVERS = 16  # extended RCODE: 1 in the OPT's upper 8 bits, 0 in the header


@dataclass
class Answered:
    reply: DNSRecord
    decision: Decision | None = None
    service: str | None = None
    subnet: str | None = None


class Resolver:
    def __init__(self, config: RedirectorConfig, zone: Callable[[], Zone],
                 decide: Callable[[str, int], Decision]) -> None:
        self.config = config
        self.zone = zone
        self.decide = decide

    def soa(self, zone: Zone) -> RR:
        return RR(self.config.zone, QTYPE.SOA, ttl=self.config.soa_ttl, rdata=SOA(
            self.config.ns_name, f"hostmaster.{self.config.zone}",
            (zone.serial, 60, 30, 3600, self.config.negative_ttl)))

    def resolve(self, request: DNSRecord, client: str) -> Answered:
        header = DNSHeader(id=request.header.id, qr=1, aa=1, ra=0, rd=request.header.rd,
                           opcode=request.header.opcode)
        opts = [r for r in request.ar if r.rtype == QTYPE.OPT]
        if len(opts) > 1 or any(_octets(q.qname) > MAX_NAME_OCTETS for q in request.questions):
            header.rcode = RCODE.FORMERR  # and no question: a name over 255 octets cannot go
            header.aa = 0                 # back on the wire
            return Answered(DNSRecord(header))
        reply = DNSRecord(header, q=request.q if request.questions else None)
        answered = Answered(reply)
        opt = opts[0] if opts else None
        subnet: ClientSubnet | None = None
        if opt is not None and (opt.ttl >> 16) & 0xFF:
            header.aa = 0
            reply.add_ar(EDNS0(udp_len=EDNS_PAYLOAD, ext_rcode=BADVERS >> 4))
            return answered
        if opt is not None:
            for option in opt.rdata or []:
                if isinstance(option, EDNSOption) and option.code == OPTION_CODE:
                    try:
                        subnet = parse_ecs(option.data)
                    except EcsError:
                        header.rcode = RCODE.FORMERR
                        header.aa = 0
                        return answered
        if request.header.opcode != OPCODE.QUERY:
            header.rcode = RCODE.NOTIMP
            header.aa = 0
        elif len(request.questions) != 1:
            header.rcode = RCODE.FORMERR
            header.aa = 0
        else:
            self._answer(request, reply, client, subnet, answered)
        if opt is not None:
            options = []
            if subnet is not None:
                decision = answered.decision if answered.subnet is not None else None
                scope = decision.scope if decision is not None else 0
                options.append(EDNSOption(OPTION_CODE, subnet.reply(scope)))
            reply.add_ar(EDNS0(udp_len=EDNS_PAYLOAD, opts=options))
        return answered

    def _answer(self, request: DNSRecord, reply: DNSRecord, client: str,
                subnet: ClientSubnet | None, answered: Answered) -> None:
        zone = self.zone()
        question = request.q
        qname = str(question.qname).lower()
        qtype = question.qtype
        if not zone.in_zone(qname):
            reply.header.rcode = RCODE.REFUSED
            reply.header.aa = 0
            return
        if qname == zone.origin:
            if qtype in (QTYPE.SOA, QTYPE.ANY):
                reply.add_answer(self.soa(zone))
            if qtype in (QTYPE.NS, QTYPE.ANY):
                reply.add_answer(RR(zone.origin, QTYPE.NS, ttl=self.config.soa_ttl,
                                    rdata=NS(self.config.ns_name)))
                reply.add_ar(RR(self.config.ns_name, QTYPE.A, ttl=self.config.soa_ttl,
                                rdata=A(self.config.ns_address)))
            if not reply.rr:
                reply.add_auth(self._negative_soa(zone))
            return
        service = self.config.services.get(qname)
        if service is not None:
            answered.service = qname
            if qtype in (QTYPE.A, QTYPE.AAAA, QTYPE.ANY):
                who = subnet.network if subnet is not None and subnet.source else None
                answered.subnet = str(who) if who else None
                address = int(who.network_address) if who else int(
                    ipaddress.IPv4Address(client))
                decision = self.decide(qname, address)
                answered.decision = decision
                if decision.cluster is None:
                    reply.header.rcode = RCODE.SERVFAIL
                    return
                chosen = zone.view.clusters[decision.cluster]
                if qtype != QTYPE.AAAA:
                    for ip in chosen.addresses:
                        reply.add_answer(RR(question.qname, QTYPE.A, ttl=service.ttl,
                                            rdata=A(ip)))
                if qtype in (QTYPE.AAAA, QTYPE.ANY):
                    for ip in chosen.addresses6:
                        reply.add_answer(RR(question.qname, QTYPE.AAAA, ttl=service.ttl,
                                            rdata=AAAA(ip)))
                if not reply.rr:
                    reply.add_auth(self._negative_soa(zone))
            else:
                reply.add_auth(self._negative_soa(zone))
            return
        self._static(zone, question.qname, qname, qtype, reply)

    def _static(self, zone: Zone, asked: object, qname: str, qtype: int,
                reply: DNSRecord) -> None:
        names = {n for n, _t in zone.rrsets}
        if qname not in names and not any(n.endswith("." + qname) for n in names):
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(self._negative_soa(zone))
            return
        wanted = [t for n, t in zone.rrsets if n == qname and (
            qtype == QTYPE.ANY or t == QTYPE.get(qtype) or t == "CNAME")]
        for rtype in wanted:
            rrset = zone.rrsets[(qname, rtype)]
            for text in rrset.rdatas:
                for rr in RR.fromZone(f"{qname} {rrset.ttl} IN {rtype} {text}"):
                    rr.rname = asked
                    reply.add_answer(rr)
        if not reply.rr:
            reply.add_auth(self._negative_soa(zone))

    def _negative_soa(self, zone: Zone) -> RR:
        soa = self.soa(zone)
        soa.ttl = min(self.config.soa_ttl, self.config.negative_ttl)
        return soa


def _octets(name: DNSLabel) -> int:
    """A name's length on the wire: each label and its length byte, and the root's."""
    return sum(len(label) + 1 for label in name.label) + 1
