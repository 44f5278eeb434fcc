"""The signed UPDATE that keeps a cluster's records in step with measurements: one message
replacing every RTT record of the cluster (and its load), so the redirector applies a
round of measurements atomically. Sent over UDP with dnspython and TSIG; the reply's RCODE
and signature are checked."""

from __future__ import annotations

import dns.message
import dns.query
import dns.rcode
import dns.tsig
import dns.update

from nodes.common.records import record_name


def build_update(zone: str, cluster: str, rtts: dict[str, float], load: float | None,
                 key: dns.tsig.Key, ttl: int = 0) -> dns.update.UpdateMessage:
    update = dns.update.UpdateMessage(zone, keyring=key)
    for network, rtt in sorted(rtts.items()):
        update.replace(record_name("rtt", zone, cluster, network), ttl, "TXT", f'"{rtt:.3f}"')
    if load is not None:
        update.replace(record_name("load", zone, cluster), ttl, "TXT", f'"{load:.4f}"')
    return update


def send_update(update: dns.update.UpdateMessage, server: str, port: int,
                timeout_s: float = 2.0) -> str:
    """The RCODE name of the redirector's answer (the reply's TSIG is verified)."""
    reply: dns.message.Message = dns.query.udp(update, server, port=port, timeout=timeout_s)
    return str(dns.rcode.to_text(reply.rcode()))
