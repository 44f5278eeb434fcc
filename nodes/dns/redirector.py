"""`Redirector`: the state every front end (UDP, TCP, REST) shares, and the one place the
zone changes. Queries read `self.zone` (an immutable snapshot); changes are applied under a
lock and swapped in with one assignment, bumping the serial, so the next query sees them.
Policy randomness comes from one generator seeded by the configuration: a run repeats.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from pathlib import Path

from dnslib import DNSError, DNSRecord

from nodes.common.events import EventLog
from nodes.common.records import record_name
from nodes.dns.config import RedirectorConfig
from nodes.dns.decisions import DecisionLog
from nodes.dns.fastpath import FastPath
from nodes.dns.policies import POLICIES, Decision, PolicyInput
from nodes.dns.resolver import Resolver
from nodes.dns.spill import SpillController
from nodes.dns.update import UpdateHandler
from nodes.dns.zone import Op, Zone

OPCODE_UPDATE = 5


def initial_zone(config: RedirectorConfig) -> Zone:
    zone = Zone(config.zone, frozenset(config.services), serial=1)
    ops = []
    for name, spec in config.clusters.items():
        ops.append(Op("replace", record_name("cluster", config.zone, name), "A", 60,
                      tuple(spec["addresses"])))
        ops.append(Op("replace", record_name("threshold", config.zone, name), "TXT", 60,
                      (str(spec["threshold"]),)))
    ops += [Op("add", name, rtype, ttl, (rdata,)) for name, ttl, rtype, rdata in config.records]
    return zone.apply(ops) if ops else zone


class Redirector:
    def __init__(self, config: RedirectorConfig, events: Path | None = None,
                 decisions: Path | None = None, node: str = "dns",
                 epoch: float | None = None) -> None:
        self.config = config
        self.epoch = time.time() if epoch is None else epoch
        self.zone = initial_zone(config)
        self._lock = threading.Lock()
        self._rng = random.Random(config.seed)
        self._turns = itertools.count()
        self._deciding = threading.Lock()  # DNS's loop and the steering server's threads
        self.spill = SpillController(config.settings.spill_gain, config.settings.spill_max_share,
                                     max((s.ttl for s in config.services.values()), default=0))
        self.log = EventLog(events, node, self.epoch)
        self.decisions = DecisionLog(decisions if config.decision_log else None, node,
                                     self.epoch)
        self.resolver = Resolver(config, lambda: self.zone, self.decide)
        self.fast = FastPath({n: s.ttl for n, s in config.services.items()},
                             lambda: self.zone, self.decide)
        self.updates = UpdateHandler(config.zone, config.tsig)
        self.counts = {"queries": 0, "fast": 0, "formerr": 0, "updates": 0, "refused": 0}

    # -- state -----------------------------------------------------------------------------
    def commit(self, ops: list[Op], source: str = "update") -> Zone:
        with self._lock:
            before = self.zone
            after = before.apply(ops)
            self.zone = after
        if after is not before:
            self.log.emit("zone_change", source=source, serial=after.serial,
                          ops=[[o.action, o.name, o.rtype, *o.rdata] for o in ops])
        return after

    def decide(self, service: str, client: int) -> Decision:
        policy = POLICIES[self.config.services[service].policy]
        zone = self.zone
        with self._deciding:
            return policy(PolicyInput(client, zone.view, time.time(), self.config.settings,
                                      self._rng.random, self._turns.__next__, self.spill))

    # -- messages --------------------------------------------------------------------------
    def handle(self, data: bytes, client: str) -> bytes | None:
        """The reply to one message from `client`, or None to stay silent."""
        self.counts["queries"] += 1
        fast = self.fast.answer(data, client)
        if fast is not None:
            reply, decision, service = fast
            self.counts["fast"] += 1
            self.decisions.answer(client, None, service, decision)
            return reply
        if len(data) >= 3 and (data[2] >> 3) & 0x0F == OPCODE_UPDATE and not data[2] & 0x80:
            return self._update(data, client)
        try:
            request = DNSRecord.parse(data)
        except (DNSError, ValueError, IndexError, KeyError, UnicodeError) as err:
            self.counts["formerr"] += 1
            return _formerr(data, str(err))
        if request.header.qr:
            return None  # never answer a response
        answered = self.resolver.resolve(request, client)
        if answered.decision is not None and answered.service is not None:
            self.decisions.answer(client, answered.subnet, answered.service, answered.decision)
        return bytes(answered.reply.pack())

    def _update(self, data: bytes, client: str) -> bytes | None:
        self.counts["updates"] += 1
        outcome = self.updates.handle(data, lambda: self.zone,
                                      lambda ops: self.commit(ops, f"dns-update {client}"))
        if outcome.rcode != "NOERROR":
            self.counts["refused"] += 1
        self.log.emit("update", client=client, rcode=outcome.rcode, reason=outcome.reason,
                      key=outcome.key, changes=len(outcome.ops), serial=self.zone.serial)
        return outcome.reply or None

    def close(self) -> None:
        self.decisions.close()
        self.log.emit("stopped", **self.counts)
        self.log.close()


def _formerr(data: bytes, _why: str) -> bytes | None:
    """FORMERR with the query's ID and opcode, no sections; nothing for fewer than 12
    bytes (there is no ID to answer) or for something that claims to be a response."""
    if len(data) < 12 or data[2] & 0x80:
        return None
    flags = ((data[2] & 0x78) << 8) | 0x8000 | 1
    return data[:2] + flags.to_bytes(2, "big") + bytes(8)
