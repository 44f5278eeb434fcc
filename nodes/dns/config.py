"""The redirector's configuration (YAML), checked field by field:

    zone: cdn.lab.
    listen: {address: 10.0.1.5, port: 53}
    nameserver: {name: ns1, address: 10.0.1.5}      # NS and glue at the apex
    soa: {ttl: 60, minimum: 5}                       # minimum = negative-answer TTL
    services: {video: {policy: min_rtt_spill, ttl: 5}}
    clusters: {edge_a: {addresses: [10.0.4.2], threshold: 0.8}, …}  # initial records
    coverage_zones: {10.0.1.0/24: edge_a}
    stale_after_s: 10
    spill: {gain: 1.0, max_share: 0.9}
    tsig: {name: cdnlab-key, algorithm: hmac-sha256, secret: <base64>}
    rest: {address: 10.0.1.5, port: 8053, token: <text>}
    steering: {port: 8054, ttl: 10, services: [video], stick_ms: 2, rate_per_s: 500,
               pathways: [edge_a, edge_x], demote_below_bps: 1000000}   # nodes/steering
    seed: 1
    decision_log: true
    records: ["www 30 A 10.0.1.9", "10-0-4-0-24.edge_a.rtt 0 TXT 6.1"]  # initial, relative

Every error names the file and the field.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nodes.common.conventions import (
    DNS_POLICY,
    DNS_TTL_S,
    LOAD_THRESHOLD,
    SPILL_GAIN,
    SPILL_MAX_SHARE,
    STALE_AFTER_S,
)
from nodes.dns.policies import POLICIES, PolicySettings
from nodes.dns.zone import absolute
from nodes.steering.manifest import SteeringSettings


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Service:
    name: str  # absolute
    policy: str
    ttl: int


@dataclass(frozen=True)
class TsigKey:
    name: str
    algorithm: str
    secret: bytes


@dataclass(frozen=True)
class RedirectorConfig:
    zone: str
    address: str
    port: int
    ns_name: str
    ns_address: str
    soa_ttl: int
    negative_ttl: int
    services: dict[str, Service]
    clusters: dict[str, dict[str, Any]]
    settings: PolicySettings
    tsig: TsigKey | None
    rest_address: str | None = None
    rest_port: int | None = None
    rest_token: str | None = None
    seed: int = 1
    decision_log: bool = True
    records: tuple[tuple[str, int, str, str], ...] = ()  # (absolute name, ttl, type, rdata)
    steering: SteeringSettings | None = None


def _get(data: dict[str, Any], key: str, kind: type, where: str, default: Any = None) -> Any:
    value = data.get(key, default)
    if value is None:
        raise ConfigError(f"{where}.{key} is required")
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind):
        raise ConfigError(f"{where}.{key} must be {kind.__name__}, not {value!r}")
    return value


def parse_config(data: Any, source: str = "config") -> RedirectorConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top")
    known = {"zone", "listen", "nameserver", "soa", "services", "clusters", "coverage_zones",
             "stale_after_s", "spill", "tsig", "rest", "seed", "decision_log", "records",
             "steering"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {', '.join(unknown)}")
    zone = absolute(_get(data, "zone", str, source))
    listen = _get(data, "listen", dict, source, {})
    ns = _get(data, "nameserver", dict, source, {})
    soa = _get(data, "soa", dict, source, {})
    services = {}
    for name, spec in _get(data, "services", dict, source).items():
        where = f"{source}: services.{name}"
        spec = spec or {}
        policy = spec.get("policy", DNS_POLICY)
        if policy not in POLICIES:
            raise ConfigError(f"{where}.policy {policy!r} is unknown (known: "
                              f"{', '.join(POLICIES)})")
        ttl = _get(spec, "ttl", int, where, DNS_TTL_S)
        if not 0 <= ttl <= 3600:
            raise ConfigError(f"{where}.ttl {ttl} is outside 0–3600 s")
        full = absolute(name if str(name).endswith(".") else f"{name}.{zone}")
        services[full] = Service(full, policy, ttl)
    clusters = {}
    for name, spec in (data.get("clusters") or {}).items():
        where = f"{source}: clusters.{name}"
        addresses = _get(spec or {}, "addresses", list, where)
        for address in addresses:
            try:
                ipaddress.IPv4Address(address)
            except ValueError as err:
                raise ConfigError(f"{where}.addresses: {address!r} is not IPv4") from err
        clusters[str(name)] = {"addresses": list(addresses),
                               "threshold": float((spec or {}).get("threshold", LOAD_THRESHOLD))}
    coverage = []
    for cidr, cluster in (data.get("coverage_zones") or {}).items():
        try:
            coverage.append((ipaddress.IPv4Network(cidr), str(cluster)))
        except ValueError as err:
            raise ConfigError(f"{source}: coverage_zones: {cidr!r}: {err}") from err
    coverage.sort(key=lambda item: -item[0].prefixlen)
    spill = data.get("spill") or {}
    settings = PolicySettings(float(data.get("stale_after_s", STALE_AFTER_S)),
                              float(spill.get("gain", SPILL_GAIN)),
                              float(spill.get("max_share", SPILL_MAX_SHARE)),
                              tuple(coverage))
    tsig = None
    if data.get("tsig"):
        where = f"{source}: tsig"
        spec = data["tsig"]
        try:
            secret = base64.b64decode(_get(spec, "secret", str, where), validate=True)
        except binascii.Error as err:
            raise ConfigError(f"{where}.secret is not base64: {err}") from err
        algorithm = spec.get("algorithm", "hmac-sha256")
        if algorithm not in ("hmac-sha256", "hmac-sha512", "hmac-sha384"):
            raise ConfigError(f"{where}.algorithm {algorithm!r}: use hmac-sha256")
        tsig = TsigKey(absolute(_get(spec, "name", str, where)), algorithm, secret)
    records = []
    for n, line in enumerate(data.get("records") or []):
        parts = str(line).split(None, 3)
        if len(parts) != 4 or not parts[1].isdigit():
            raise ConfigError(f"{source}: records[{n}] {line!r}: expected 'NAME TTL TYPE RDATA'")
        name = parts[0] if parts[0].endswith(".") else f"{parts[0]}.{zone}"
        records.append((absolute(name), int(parts[1]), parts[2].upper(), parts[3]))
    rest = data.get("rest") or {}
    address = str(listen.get("address", "127.0.0.1"))
    return RedirectorConfig(
        zone=zone, address=address, port=int(listen.get("port", 53)),
        ns_name=_ns_name(str(ns.get("name", "ns1")), zone),
        ns_address=str(ns.get("address", address)),
        soa_ttl=int(soa.get("ttl", 60)), negative_ttl=int(soa.get("minimum", 5)),
        services=services, clusters=clusters, settings=settings, tsig=tsig,
        rest_address=str(rest.get("address", address)) if rest else None,
        rest_port=int(rest["port"]) if rest.get("port") else None,
        rest_token=str(rest["token"]) if rest.get("token") else None,
        seed=int(data.get("seed", 1)), decision_log=bool(data.get("decision_log", True)),
        records=tuple(records),
        steering=_steering(data.get("steering"), f"{source}: steering", zone, address,
                           services, clusters))


def _steering(spec: Any, where: str, zone: str, address: str, services: dict[str, Service],
              clusters: dict[str, dict[str, Any]]) -> SteeringSettings | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a mapping (port:, ttl:, …)")
    known = {"address", "port", "ttl", "services", "stick_ms", "rate_per_s", "pathways",
             "demote_below_bps"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)} (known: "
                          f"{', '.join(sorted(known))})")
    ttl = _get(spec, "ttl", int, where, 10)
    if not 1 <= ttl <= 3600:
        raise ConfigError(f"{where}.ttl {ttl} is outside 1–3600 s")
    steered = None
    if spec.get("services") is not None:
        steered = tuple(absolute(n if str(n).endswith(".") else f"{n}.{zone}")
                        for n in _get(spec, "services", list, where))
        for name in steered:
            if name not in services:
                raise ConfigError(f"{where}.services: {name} is not a service (services: "
                                  f"{', '.join(services)})")
    pathways = None
    if spec.get("pathways") is not None:
        pathways = tuple(str(p) for p in _get(spec, "pathways", list, where))
        for name in pathways:
            if name not in clusters:
                raise ConfigError(f"{where}.pathways: {name!r} is not a cluster (clusters: "
                                  f"{', '.join(clusters)})")
    rate = _get(spec, "rate_per_s", float, where, 500.0)
    stick = _get(spec, "stick_ms", float, where, 2.0)
    if rate <= 0 or stick < 0:
        raise ConfigError(f"{where}: rate_per_s must be above 0 and stick_ms not negative")
    demote = spec.get("demote_below_bps")
    if demote is not None and (isinstance(demote, bool) or not isinstance(demote, int | float)
                               or demote <= 0):
        raise ConfigError(f"{where}.demote_below_bps must be a positive number of bit/s")
    return SteeringSettings(
        port=_get(spec, "port", int, where), address=str(spec.get("address", address)),
        ttl_s=ttl, services=steered, stick_ms=stick, rate_per_s=rate, pathways=pathways,
        demote_below_bps=None if demote is None else float(demote))


def _ns_name(name: str, zone: str) -> str:
    return absolute(name) if name.endswith(".") else absolute(f"{name}.{zone}")


def load_config(path: Path) -> RedirectorConfig:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from err
    return parse_config(data, str(path))
