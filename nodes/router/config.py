"""FRR configuration for one emulated router speaking BGP: its AS and router ID, an eBGP or
iBGP session per neighbour address, the prefixes it originates (`network`, or its
connected subnets), and the policies a user can set per neighbour.

Policy per neighbour:
- `relationship`: what the neighbour is to this router's AS, `customer`, `peer` or
  `provider`, with the usual routing policy of Gao and Rexford ("Stable Internet Routing
  Without Global Coordination", IEEE/ACM ToN 2001, §3: prefer customer routes over peer
  routes over provider routes, and export peer and provider routes to customers only).
  Routes learned from the neighbour get local preference `LOCAL_PREF[relationship]` and a
  community naming how they were learned (`LEARNED[relationship]`, replacing whatever
  communities they carried: the tag means something only inside this AS, and iBGP carries
  it to the AS's other routers); routes tagged as learned from a peer or a provider are
  not sent to peers or providers. A neighbour without a relationship gets no tag and no
  filter: everything is sent, everything taken at FRR's default preference (100), its
  communities removed (another AS's tags must not read as ours).
- `local_pref`: on the routes learned from it, in place of the relationship's.
- `prepend`: times this AS is prepended to the AS path of what it is sent; `med`: the MED
  it is sent.

FRR's `datacenter` defaults are used (FRR docs, "Profiles"): 3 s keepalives and 9 s hold,
no minimum route advertisement interval (eBGP MRAI 0), so an emulated network converges in
seconds, not the 30 s per hop of the traditional profile; `no bgp ebgp-requires-policy`
because an emulated AS has no operator to write the RFC 8212 policy each session needs;
`timers connect` of 1 s, since the routers' daemons start together and the first attempts
find their neighbours not yet listening; `maximum-paths 1`: one best path per prefix, so
the kernel holds one gateway and expected paths follow it (no ECMP); `bgp bestpath
compare-routerid`, so a tie between eBGP paths goes to the lower router ID and not to the
path that happened to arrive first (RFC 4271 §9.1.2.2 step f): the same topology gives
the same routes on every run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

POLICY_SETTINGS = ("local_pref", "prepend", "med")  # what a running session's policy may change
CONNECT_RETRY_S = 1  # a neighbour whose daemon is not up yet is asked again this soon
RELATIONSHIPS = ("customer", "peer", "provider")
LOCAL_PREF = {"customer": 200, "peer": 150, "provider": 100}
LEARNED = {"customer": "65000:200", "peer": "65000:150", "provider": "65000:100"}
NOT_FOR_PEERS = "LEARNED_FROM_PEER_OR_PROVIDER"  # the community list of what stays home
OWN_PREFIXES = "OWN"  # a speaker's prefix list: its networks, all it sends


@dataclass(frozen=True)
class Neighbour:
    address: str
    asn: int
    local_pref: int | None = None  # set on the routes learned from it
    prepend: int = 0  # times our AS is prepended to what we send it
    med: int | None = None  # MED on what we send it
    # an iBGP neighbour this router reflects to, with itself as next hop (cdnlab.topology.bgp)
    reflect: bool = False
    # a member of the IXP this router is the route server of (RFC 7947): what it learns
    # from one member goes to the others with the AS path and next hop untouched
    route_server_client: bool = False
    relationship: str | None = None  # RELATIONSHIPS: what the neighbour is to us

    def __post_init__(self) -> None:
        if self.relationship is not None and self.relationship not in RELATIONSHIPS:
            raise ValueError(f"relationship {self.relationship!r}: use one of "
                             f"{', '.join(RELATIONSHIPS)}")

    @property
    def preference(self) -> int | None:
        if self.local_pref is not None:
            return self.local_pref
        return LOCAL_PREF[self.relationship] if self.relationship else None

    @property
    def gets_everything(self) -> bool:
        """Customers, and neighbours without a relationship, are sent every route."""
        return self.relationship in (None, "customer")


@dataclass(frozen=True)
class BgpRouter:
    name: str
    asn: int
    router_id: str
    neighbours: tuple[Neighbour, ...] = ()
    networks: tuple[str, ...] = ()  # prefixes this router originates
    redistribute_connected: bool = False
    announce_only: bool = False  # send its `networks` and nothing it learned (a speaker)

    def _route_maps(self, n: int, peer: Neighbour) -> tuple[list[str], bool, bool]:
        """The neighbour's route maps, and whether it has an inbound and an outbound one."""
        maps: list[str] = []
        inbound = []
        if peer.preference is not None:
            inbound.append(f" set local-preference {peer.preference}")
        if peer.relationship:
            inbound.append(f" set community {LEARNED[peer.relationship]}")
        elif not peer.reflect and not peer.route_server_client:  # another AS's tags mean
            # nothing here (a route server passes them on untouched)
            inbound.append(" set community none")
        if inbound:
            maps += [f"route-map IN{n} permit 10", *inbound, "exit", "!"]
        sets = []
        if peer.prepend:
            sets.append(" set as-path prepend " + " ".join([str(self.asn)] * peer.prepend))
        if peer.med is not None:
            sets.append(f" set metric {peer.med}")
        if not peer.gets_everything:
            maps += [f"route-map OUT{n} deny 5", f" match community {NOT_FOR_PEERS}", "exit",
                     "!"]
        own = [f" match ip address prefix-list {OWN_PREFIXES}"] if self.announce_only else []
        filtered = bool(own) or not peer.gets_everything
        if sets or filtered:
            maps += [f"route-map OUT{n} permit 10", *own, *sets, "exit", "!"]
        return maps, bool(inbound), bool(sets) or filtered

    def with_policy(self, addresses: set[str] | None,
                    policy: dict[str, int | None]) -> tuple[BgpRouter, list[str]]:
        """This router with new `POLICY_SETTINGS` on its sessions with the neighbours at
        `addresses` (every one when None; a value of None takes the setting away), and
        the vtysh commands that make its running bgpd so: each session's route maps
        edited as `render` writes them, applied, and the session refreshed (`clear bgp …
        soft`, a route refresh (RFC 2918), not a reset)."""
        unknown = set(policy) - set(POLICY_SETTINGS)
        if unknown:
            raise ValueError(f"{', '.join(sorted(unknown))}: a running session's policy "
                             f"changes only {', '.join(POLICY_SETTINGS)}")
        peers = list(self.neighbours)
        edits: list[str] = []
        applied: list[str] = []
        refresh: list[str] = []
        for n, old in enumerate(peers):
            if addresses is not None and old.address not in addresses:
                continue
            new = replace(old, **{k: (v or 0) if k == "prepend" else v
                                  for k, v in policy.items()})
            peers[n] = new
            if new.preference != old.preference:
                edits += [f"route-map IN{n} permit 10",
                          f"set local-preference {new.preference}"
                          if new.preference is not None else "no set local-preference",
                          "exit"]
                applied.append(f"neighbor {old.address} route-map IN{n} in")
                refresh.append(f"clear bgp ipv4 unicast {old.address} soft in")
            sets = []
            if new.prepend != old.prepend:
                sets.append("set as-path prepend " + " ".join([str(self.asn)] * new.prepend)
                            if new.prepend else "no set as-path prepend")
            if new.med != old.med:
                sets.append(f"set metric {new.med}" if new.med is not None else "no set metric")
            if sets:
                edits += [f"route-map OUT{n} permit 10", *sets, "exit"]
                applied.append(f"neighbor {old.address} route-map OUT{n} out")
                refresh.append(f"clear bgp ipv4 unicast {old.address} soft out")
        commands = ["configure terminal", *edits, f"router bgp {self.asn}",
                    "address-family ipv4 unicast", *applied, "end", *refresh] if edits else []
        return replace(self, neighbours=tuple(peers)), commands

    def render(self) -> str:
        lines = ["frr defaults datacenter", f"hostname {self.name}", "!"]
        if self.announce_only:
            lines += [f"ip prefix-list {OWN_PREFIXES} seq {5 * (i + 1)} permit {prefix}"
                      for i, prefix in enumerate(self.networks)] + ["!"]
        if any(not p.gets_everything for p in self.neighbours):
            lines += [f"bgp community-list standard {NOT_FOR_PEERS} seq {5 * (i + 1)} "
                      f"permit {LEARNED[kind]}" for i, kind in enumerate(("peer", "provider"))]
            lines.append("!")
        maps: list[str] = []
        applied: list[str] = []
        for n, peer in enumerate(self.neighbours):
            own, inbound, outbound = self._route_maps(n, peer)
            maps += own
            if peer.reflect:
                applied += [f"  neighbor {peer.address} route-reflector-client",
                            f"  neighbor {peer.address} next-hop-self force"]
            if peer.route_server_client:
                applied.append(f"  neighbor {peer.address} route-server-client")
            if inbound:
                applied.append(f"  neighbor {peer.address} route-map IN{n} in")
            if outbound:
                applied.append(f"  neighbor {peer.address} route-map OUT{n} out")
        lines += [f"router bgp {self.asn}", f" bgp router-id {self.router_id}",
                  " no bgp ebgp-requires-policy", " no bgp network import-check",
                  " bgp bestpath compare-routerid"]
        for peer in self.neighbours:
            lines += [f" neighbor {peer.address} remote-as {peer.asn}",
                      f" neighbor {peer.address} timers connect {CONNECT_RETRY_S}"]
        lines += [" address-family ipv4 unicast", "  maximum-paths 1", "  maximum-paths ibgp 1"]
        lines += [f"  network {prefix}" for prefix in self.networks]
        if self.redistribute_connected:
            lines.append("  redistribute connected")
        lines += applied
        lines += [" exit-address-family", "exit", "!", *maps]
        return "\n".join(lines) + "\n"
