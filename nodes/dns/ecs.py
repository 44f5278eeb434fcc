"""EDNS Client Subnet (RFC 7871): read the option a resolver sends, and build the one the
answer carries, with the scope (how widely the answer holds) the policy decided."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

OPTION_CODE = 8


class EcsError(ValueError):
    """A malformed option: the query gets FORMERR (RFC 7871 §7.1.1)."""


@dataclass(frozen=True)
class ClientSubnet:
    family: int
    source: int  # source prefix length
    address: bytes  # as sent: ceil(source / 8) bytes

    @property
    def network(self) -> ipaddress.IPv4Network | None:
        if self.family != 1:
            return None
        padded = self.address + bytes(4 - len(self.address))
        return ipaddress.IPv4Network((padded, self.source), strict=False)

    def reply(self, scope: int) -> bytes:
        limit = 32 if self.family == 1 else 128
        return (self.family.to_bytes(2, "big") + bytes([self.source, min(scope, limit)])
                + self.address)


def parse_ecs(data: bytes) -> ClientSubnet:
    if len(data) < 4:
        raise EcsError("client subnet option shorter than 4 bytes")
    family = int.from_bytes(data[:2], "big")
    source, scope = data[2], data[3]
    address = data[4:]
    limit = {1: 32, 2: 128}.get(family)
    if limit is None:
        raise EcsError(f"client subnet family {family} is unknown")
    if source > limit or scope != 0:
        raise EcsError("client subnet prefix out of range, or a scope set in a query")
    if len(address) != (source + 7) // 8:
        raise EcsError("client subnet address length does not match its prefix")
    if address and source % 8 and address[-1] & (0xFF >> (source % 8)):
        raise EcsError("client subnet address has bits set beyond its prefix")
    return ClientSubnet(family, source, address)
