"""The DNS redirector service on the topology's `dns` host, configured from the topology:
one cluster per edge cluster (its servers' addresses), one service name, a TSIG key and a
REST token made fresh for the run (kept in the run directory, never on a command line)."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import yaml

from cdnlab.net.netns import HostHTTPConnection
from cdnlab.net.shaping.base import run_in
from cdnlab.services.base import NodeProgram, ServiceError
from nodes.common.conventions import (
    DNS_POLICY,
    DNS_REST_PORT,
    DNS_TTL_S,
    SERVICE_LABEL,
    STALE_AFTER_S,
    TSIG_KEY_NAME,
    ZONE,
)
from nodes.common.records import record_name

REST_PORT = DNS_REST_PORT


def client_networks(emu: Any) -> dict[str, str]:
    """Each network the redirector hears from — the clients', and the recursive
    resolvers' that ask on their behalf — (CIDR) → the address probes measure it at: its
    gateway (the router's interface in that network) where it has one, else its first
    host. The gateway sits before the clients' own access links, whose queues fill while
    they stream; their delay is the same from every cluster, so the ranking is
    unchanged."""
    from cdnlab.topology.spec import ROUTER

    found: dict[str, str] = {}
    for client in emu.topology.by_role("client", "resolver"):
        for iface in emu.plan.of_node(client):
            if iface.address is None:
                continue
            network = str(iface.address.network)
            if network in found:
                continue
            members = emu.plan.segments[iface.segment].members
            gateways = [emu.plan.interface(node, link).address for node, link in members
                        if emu.topology.kind(node) == ROUTER]
            found[network] = str(gateways[0].ip) if gateways and gateways[0] else \
                str(iface.address.ip)
    return found


START_LIMIT_S = 60.0


class DnsService(NodeProgram):
    part = "dns"

    def __init__(self, emu: Any, host: str = "dns", service: str = SERVICE_LABEL,
                 policy: str = DNS_POLICY, ttl: int = DNS_TTL_S,
                 stale_after_s: float = STALE_AFTER_S,
                 extra: dict[str, Any] | None = None) -> None:
        self.address = emu.ip(host)
        self.work = Path(emu.run_dir) / "work" / host
        self.work.mkdir(parents=True, exist_ok=True)
        self.secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.token = secrets.token_hex(16)
        self.service_name = f"{service}.{ZONE}"
        clusters = {name: {"addresses": [emu.ip(s) for s in servers]}
                    for name, servers in emu.topology.clusters().items()}
        config = {
            "zone": ZONE, "listen": {"address": self.address, "port": 53},
            "nameserver": {"name": "ns1", "address": self.address},
            "services": {service: {"policy": policy, "ttl": ttl}},
            "clusters": clusters, "stale_after_s": stale_after_s, "seed": emu.seed,
            "tsig": {"name": TSIG_KEY_NAME, "algorithm": "hmac-sha256", "secret": self.secret},
            "rest": {"address": self.address, "port": REST_PORT, "token": self.token},
        } | (extra or {})
        self.config_path = self.work / "dns.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        os.chmod(self.config_path, 0o600)
        self.key_file = self.work / "tsig.key"
        self.key_file.write_text(self.secret + "\n")
        os.chmod(self.key_file, 0o600)
        events = Path(emu.run_dir) / "events"
        super().__init__(emu, host, "nodes.dns", [
            "--config", str(self.config_path), "--events", str(events / f"{host}.jsonl"),
            "--decisions", str(events / f"{host}.decisions.jsonl"), "--node", host,
            "--epoch", f"{emu.t0:.6f}"], host)

    @property
    def rest_url(self) -> str:
        return f"http://{self.address}:{REST_PORT}"

    @property
    def decisions_path(self) -> Path:
        return self.events / f"{self.host}.decisions.jsonl"

    def start(self) -> None:
        super().start()
        # a bound, not a pause: here it answers within a second; a QEMU guest's emulated
        # CPU, saturated by a split run, took over 15 s once
        deadline = time.monotonic() + START_LIMIT_S
        node = self.emu.node(self.host)
        while True:
            if not self.running:
                raise ServiceError(f"dns on {self.host} exited: {self.stderr_tail()}")
            try:
                out = run_in(node, f"dig +short +time=1 +tries=1 @{self.address} {ZONE} SOA")
                if out.strip():
                    return
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                raise ServiceError(f"dns on {self.host} does not answer: {self.stderr_tail()}")
            time.sleep(0.1)

    def rest(self, method: str, path: str, body: dict[str, Any] | None = None
             ) -> tuple[int, dict[str, Any]]:
        """Call the REST API from the DNS host's own network (in a split run with the DNS
        host on another machine, from a host on this one); (status, JSON answer)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection = HostHTTPConnection(self.emu.namespace_pid(self.host), self.address,
                                        REST_PORT)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            text = response.read()
        finally:
            connection.close()
        return response.status, dict(json.loads(text or b"{}"))

    def set_rtts(self, rtts: dict[tuple[str, str], float]) -> int:
        """Write (cluster, network) → RTT ms records in one atomic batch; the new serial."""
        ops = [{"action": "replace", "name": record_name("rtt", ZONE, cluster, net), "type": "TXT",
                "ttl": 0, "rdata": [f"{rtt:.3f}"]} for (cluster, net), rtt in rtts.items()]
        status, answer = self.rest("POST", "/batch", {"ops": ops})
        if status != 200:
            raise ServiceError(f"dns REST /batch: {status} {answer}")
        return int(answer["serial"])

    def resolve(self, client: str, name: str | None = None) -> list[str]:
        """What `dig` on host `client` gets for the service name (A records)."""
        out = run_in(self.emu.node(client), f"dig +short +time=2 +tries=1 @{self.address} "
                                            f"{name or self.service_name} A")
        return [line for line in out.split() if _is_ip(line)]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True
