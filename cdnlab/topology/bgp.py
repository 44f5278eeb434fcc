"""BGP for a `routing: bgp` topology (topology layer): every router's AS, its sessions and
their policies, as `nodes/router/config.py` renders them for FRR. `cdnlab.net.bgp` starts
the daemons and waits for them to converge.

- AS: a router's `asn:`, else an AS of its own, the private numbers from 65001 up in the
  order the routers are declared (skipping any a router names).
- Sessions: one for every two routers on one segment (a point-to-point link, or a switched
  LAN such as an IXP fabric, where members peer bilaterally), on their addresses in that
  segment. Between ASes, eBGP. Inside an AS with several routers, iBGP in which every
  router reflects what it learns to its neighbours (`route-reflector-client` with
  `next-hop-self force`), so routes spread hop by hop and need no IGP: RFC 4456's
  originator ID and cluster list stop loops, and §9 of it makes the shorter cluster list
  (fewer routers inside the AS) win a tie.
- Prefixes: every router announces its connected subnets (`redistribute connected`), so
  each host's segment is reachable through the router on it.
- Policy: `{relationship, local_pref, prepend, med}`, what a router applies on a session:
  the neighbour as its customer, peer or provider (preference and export as Gao and
  Rexford: `nodes/router/config.py`), local preference on the routes it learns there,
  AS-path prepending and MED on those it sends. A router's `bgp: {<neighbour router>:
  policy}` sets it for every session with that neighbour; a link's `bgp: {<end>: policy}`
  for that end's sessions over that link (on an IXP fabric, with every member), over the
  router's own. A relationship given by one side only is mirrored at the other (customer
  ↔ provider, peer ↔ peer).
- Route servers (RFC 7947): an IXP with `route_server:` has a host on its fabric
  (`<ixp>_rs`) running bgpd alone, in an AS of its own (`asn:`, else the first free
  from 64700). Two members that state no policy toward each other but `relationship:
  peer` peer through it instead of bilaterally: each has one session with the route
  server, as a peer, and the server passes what one sends to the others with AS path
  and next hop untouched (`route-server-client`), so traffic still goes member to member
  across the fabric. Other pairs (a transit bought at the IXP, a preference set for one
  member) keep their bilateral sessions.
- Router ID: the router's lowest address.
- Anycast (`anycast:` of the topology): each of its clusters' first server runs a BGP
  speaker in the CDN's AS (`nodes.router --speaker`: bgpd without zebra) that announces
  the anycast prefix to every router on its segment and nothing else. A router takes the
  cluster as its `peer` unless its `bgp:` names the cluster with another relationship (a
  cache embedded in an ISP is often its `customer`, so the ISP passes its route on to its
  own providers). Which cluster a viewer reaches is then BGP's choice: preference, AS-path
  length, the tie-breaks, never RTT.
"""

from __future__ import annotations

from typing import Any

from cdnlab.topology.addressing import AddressPlan
from cdnlab.topology.spec import BGP_RELATIONSHIPS, ROUTE_SERVER_ROLE, ROUTER, Topology
from nodes.router.config import BgpRouter, Neighbour

FIRST_PRIVATE_ASN = 65001
FIRST_ROUTE_SERVER_ASN = 64700
ANYCAST_DEFAULT_RELATIONSHIP = "peer"  # what an anycast cluster is to a router, unless set


def router_asns(topology: Topology) -> dict[str, int]:
    """Each router's AS: its `asn:`, else the next private number nobody named."""
    routers = [n for n, node in topology.nodes.items() if node.kind == ROUTER]
    named = {n: a for n in routers if (a := topology.asn(n)) is not None}
    taken = set(named.values())
    found: dict[str, int] = {}
    following = FIRST_PRIVATE_ASN
    for name in routers:
        if name in named:
            found[name] = named[name]
            continue
        while following in taken:
            following += 1
        found[name] = following
        taken.add(following)
    return found


def policy_at(topology: Topology, node: str, link: int, other: str,
              other_link: int) -> dict[str, Any]:
    """The policy `node` applies on its session with `other` (reached over `link`; `other`
    is on the segment by `other_link`): its `bgp:` entry for `other`, overridden by its end
    of the link's `bgp:`; the relationship, when neither gives one, mirrored from what
    `other` says of `node` the same way."""

    def said(by: str, of: str, over: int) -> dict[str, Any]:
        policy = dict((topology.nodes[by].attrs.get("bgp") or {}).get(of) or {})
        policy.update(topology.links[over].bgp.get(by, {}))
        return policy

    policy = said(node, other, link)
    theirs = said(other, node, other_link).get("relationship")
    if "relationship" not in policy and theirs is not None:
        policy["relationship"] = BGP_RELATIONSHIPS[theirs]
    return policy


def route_servers(topology: Topology) -> dict[str, int]:
    """Each IXP route server host → its AS: the IXP's `route_server: {asn}`, else the
    first number from FIRST_ROUTE_SERVER_ASN that no router, other route server or the
    anycast CDN has."""
    taken = set(router_asns(topology).values())
    if topology.anycast is not None:
        taken.add(topology.anycast.asn)
    found: dict[str, int] = {}
    following = FIRST_ROUTE_SERVER_ASN
    for name, node in topology.nodes.items():
        if node.role != ROUTE_SERVER_ROLE:
            continue
        spec = topology.nodes[name.removesuffix("_rs")].attrs.get("route_server")
        if isinstance(spec, dict) and "asn" in spec:
            found[name] = int(spec["asn"])
        else:
            while following in taken:
                following += 1
            found[name] = following
        taken.add(found[name])
    return found


def through_route_server(topology: Topology, node: str, link: int, other: str,
                         other_link: int) -> bool:
    """Whether two members of an IXP with a route server peer through it: neither states
    a policy toward the other beyond `relationship: peer`."""
    return all(set(policy) <= {"relationship"} and policy.get("relationship") in (None, "peer")
               for policy in (policy_at(topology, node, link, other, other_link),
                              policy_at(topology, other, other_link, node, link)))


def anycast_speakers(topology: Topology) -> dict[str, str]:
    """Anycast cluster → the server whose speaker announces it (its first)."""
    if topology.anycast is None:
        return {}
    servers = topology.clusters()
    return {cluster: servers[cluster][0] for cluster in topology.anycast.clusters}


def _address(plan: AddressPlan, node: str, link: int) -> str:
    address = plan.interface(node, link).address
    assert address is not None
    return str(address.ip)


def bgp_routers(topology: Topology, plan: AddressPlan) -> dict[str, BgpRouter]:
    """Every router's FRR configuration, every anycast speaker's and every IXP route
    server's, by node name."""
    asns = router_asns(topology)
    neighbours: dict[str, list[Neighbour]] = {name: [] for name in asns}
    speakers: dict[str, BgpRouter] = {}
    for cluster, server in anycast_speakers(topology).items():
        assert topology.anycast is not None
        (link,) = [lk.index for lk in topology.links_of(server)]
        segment = plan.interface(server, link).segment
        own = _address(plan, server, link)
        peers = []
        for router, router_link in plan.segments[segment].members:
            if router not in asns:
                continue
            policy = dict((topology.nodes[router].attrs.get("bgp") or {}).get(cluster) or {})
            relationship = policy.pop("relationship", ANYCAST_DEFAULT_RELATIONSHIP)
            neighbours[router].append(Neighbour(
                own, topology.anycast.asn, relationship=relationship,
                local_pref=policy.get("local_pref"), prepend=policy.get("prepend", 0),
                med=policy.get("med")))
            peers.append(Neighbour(_address(plan, router, router_link), asns[router]))
        speakers[server] = BgpRouter(server, topology.anycast.asn, own, tuple(peers),
                                     networks=(str(topology.anycast.prefix),),
                                     announce_only=True)
    servers = route_servers(topology)
    for segment in plan.segments:
        members = [(node, link) for node, link in segment.members if node in asns]
        server = next(((n, lk) for n, lk in segment.members if n in servers), None)
        clients: list[tuple[str, int]] = []
        for node, link in members:
            for other, other_link in members:
                if other == node:
                    continue
                if server and asns[other] != asns[node] and \
                        through_route_server(topology, node, link, other, other_link):
                    if (node, link) not in clients:
                        clients.append((node, link))
                    continue
                policy = policy_at(topology, node, link, other, other_link)
                neighbours[node].append(Neighbour(
                    _address(plan, other, other_link), asns[other],
                    local_pref=policy.get("local_pref"),
                    prepend=policy.get("prepend", 0), med=policy.get("med"),
                    reflect=asns[other] == asns[node], relationship=policy.get("relationship")))
        if server is None:
            continue
        name, server_link = server
        own = _address(plan, name, server_link)
        for node, _link in clients:
            neighbours[node].append(Neighbour(own, servers[name], relationship="peer"))
        speakers[name] = BgpRouter(name, servers[name], own, tuple(
            Neighbour(_address(plan, node, link), asns[node], route_server_client=True)
            for node, link in clients))
    found = {}
    for name, asn in asns.items():
        addresses = sorted(i.address.ip for i in plan.of_node(name) if i.address is not None)
        found[name] = BgpRouter(name, asn, str(addresses[0]), tuple(neighbours[name]),
                                redistribute_connected=True)
    return found | speakers
