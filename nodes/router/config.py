"""FRR configuration for one emulated router speaking BGP: its AS and router ID, an eBGP or
iBGP session per neighbour address, the prefixes it originates (`network`), and the
policies a user can set per neighbour: local preference on what it learns (customer >
peer > transit in the usual ranking), AS-path prepending and MED on what it sends.

FRR's `datacenter` defaults are used (FRR docs, "Profiles"): 3 s keepalives and 9 s hold,
no minimum route advertisement interval (eBGP MRAI 0), so an emulated network converges in
seconds, not the 30 s per hop of the traditional profile; `no bgp ebgp-requires-policy`
because an emulated AS has no operator to write the RFC 8212 policy each session needs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Neighbour:
    address: str
    asn: int
    local_pref: int | None = None  # set on the routes learned from it
    prepend: int = 0  # times our AS is prepended to what we send it
    med: int | None = None  # MED on what we send it


@dataclass(frozen=True)
class BgpRouter:
    name: str
    asn: int
    router_id: str
    neighbours: tuple[Neighbour, ...] = ()
    networks: tuple[str, ...] = ()  # prefixes this router originates
    redistribute_connected: bool = False

    def render(self) -> str:
        lines = ["frr defaults datacenter", f"hostname {self.name}", "!"]
        maps: list[str] = []
        for n, peer in enumerate(self.neighbours):
            if peer.local_pref is not None:
                maps += [f"route-map IN{n} permit 10", f" set local-preference {peer.local_pref}",
                         "exit", "!"]
            out = []
            if peer.prepend:
                out.append(" set as-path prepend " + " ".join([str(self.asn)] * peer.prepend))
            if peer.med is not None:
                out.append(f" set metric {peer.med}")
            if out:
                maps += [f"route-map OUT{n} permit 10", *out, "exit", "!"]
        lines += [f"router bgp {self.asn}", f" bgp router-id {self.router_id}",
                  " no bgp ebgp-requires-policy", " no bgp network import-check"]
        lines += [f" neighbor {p.address} remote-as {p.asn}" for p in self.neighbours]
        lines.append(" address-family ipv4 unicast")
        lines += [f"  network {prefix}" for prefix in self.networks]
        if self.redistribute_connected:
            lines.append("  redistribute connected")
        for n, peer in enumerate(self.neighbours):
            if peer.local_pref is not None:
                lines.append(f"  neighbor {peer.address} route-map IN{n} in")
            if peer.prepend or peer.med is not None:
                lines.append(f"  neighbor {peer.address} route-map OUT{n} out")
        lines += [" exit-address-family", "exit", "!", *maps]
        return "\n".join(lines) + "\n"
