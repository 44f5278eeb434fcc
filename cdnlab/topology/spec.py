"""Topology specs: YAML → validated `Topology` of typed nodes and links.

A topology names nodes by role (client, isp, ixp, transit, origin, edge cluster of N servers,
dns, resolver, ...) and links between them, each with a `LinkShape` per direction.
Validation stops at the first problem with an error naming the file, the node or link, and
the fix: unknown role or node, duplicate name, bad values, hosts with other than one link,
switch loops, parallel links, a disconnected graph, address clashes. Parametric families
(`family:` in the YAML) are expanded by `topologies.families` into the same schema before
validation.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cdnlab.errors import SpecError, choices
from cdnlab.topology.shape import FIELDS, LinkShape, shape_from_mapping

HOST, ROUTER, SWITCH = "host", "router", "switch"

ROLE_KINDS = {
    "client": HOST, "origin": HOST, "dns": HOST, "server": HOST, "uploader": HOST,
    "resolver": HOST,  # a recursive resolver (unbound) its clients ask, not the redirector
    "isp": ROUTER, "transit": ROUTER, "cloud": ROUTER, "router": ROUTER,
    "ixp": SWITCH, "switch": SWITCH, "access": SWITCH,
    "edge": SWITCH,  # an edge cluster: its switch, plus `servers` hosts added here
}
EDGE_SERVER_ROLE = "edge_server"
ROUTE_SERVER_ROLE = "route_server"  # an IXP's route server (`route_server:` of an ixp), a host
LINK_CLASSES = ("access", "ixp", "transit", "cluster", "core")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_NAME = 10  # interface names are <node>-e<N>, and Linux allows 15 characters
DEFAULT_CLUSTER_LINK = {"rate": None, "delay": 0.0}
TRACE_DIRECTIONS = ("a_to_b", "b_to_a", "both")
ROUTINGS = ("static", "bgp")  # who fills the routers' tables: the plan, or FRR's bgpd
ASN_RANGE = (1, 4_294_967_294)  # RFC 6793 four-octet AS numbers, less the reserved last
BGP_POLICY_FIELDS = ("relationship", "local_pref", "prepend", "med")
ANYCAST_PREFIX = "198.51.100.0/24"  # TEST-NET-2 (RFC 5737): outside the plan's 10.0.0.0/8
ANYCAST_ASN = 64999  # the CDN's own AS, in which every anycast cluster announces
BGP_RELATIONSHIPS = {"customer": "provider", "peer": "peer", "provider": "customer"}  # → its
# mirror: what this end is to the other


@dataclass(frozen=True)
class Node:
    name: str
    role: str
    kind: str
    cluster: str | None = None  # for edge servers: the cluster they belong to
    attrs: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class TraceRef:
    """A bandwidth trace the link's rate follows: file, direction(s), looping."""

    path: Path
    direction: str = "both"
    loop: bool = True


@dataclass(frozen=True)
class Link:
    index: int
    a: str
    b: str
    a_to_b: LinkShape
    b_to_a: LinkShape
    klass: str
    trace: TraceRef | None = None
    subnet: ipaddress.IPv4Network | None = None
    # `bgp:` end → {relationship, local_pref, prepend, med}: the policy that end's router
    # applies to its sessions over this link (cdnlab.topology.bgp)
    bgp: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        return f"{self.a}--{self.b}"

    def shape_from(self, node: str) -> LinkShape:
        """The shape of the direction leaving `node`."""
        return self.a_to_b if node == self.a else self.b_to_a

    def other(self, node: str) -> str:
        return self.b if node == self.a else self.a


@dataclass(frozen=True)
class Anycast:
    """`anycast:` of a `routing: bgp` topology: the clusters that announce one prefix
    from the CDN's AS; every server of theirs answers on the prefix's first address."""

    prefix: ipaddress.IPv4Network
    asn: int
    clusters: tuple[str, ...]

    @property
    def address(self) -> str:
        return str(self.prefix.network_address + 1)


@dataclass
class Topology:
    name: str
    source: str
    nodes: dict[str, Node]
    links: list[Link]
    description: str = ""
    # `cluster:`: the machines a run of this topology spreads over (a MachineSet), or None
    machines: Any = None
    routing: str = "static"  # ROUTINGS
    anycast: Anycast | None = None

    def asn(self, name: str) -> int | None:
        """A router's `asn:`, None when the topology left it to the default."""
        value = self.nodes[name].attrs.get("asn")
        return int(value) if value is not None else None

    def kind(self, name: str) -> str:
        return self.nodes[name].kind

    def links_of(self, name: str) -> list[Link]:
        return [link for link in self.links if name in (link.a, link.b)]

    def by_role(self, *roles: str) -> list[str]:
        return [n.name for n in self.nodes.values() if n.role in roles]

    def hosts(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.kind == HOST]

    def clusters(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for node in self.nodes.values():
            if node.cluster:
                found.setdefault(node.cluster, []).append(node.name)
        return found

    def uplinks(self, cluster: str) -> list[Link]:
        """The links joining a cluster's switch to the rest of the network (its servers'
        links aside)."""
        servers = set(self.clusters().get(cluster, []))
        return [link for link in self.links if cluster in (link.a, link.b)
                and not {link.a, link.b} & servers]

    def link(self, a: str, b: str) -> Link:
        for link in self.links:
            if {link.a, link.b} == {a, b}:
                return link
        raise KeyError(f"no link between {a} and {b}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping with the same key twice."""


def _construct_unique(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_unique)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, turning syntax errors and duplicate keys into a SpecError."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(str(path), "", f"cannot read: {exc.strerror}",
                        "check the path") from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if problem.startswith("duplicate key"):
            raise SpecError(str(path), where, f"{problem} (duplicate name)",
                            "give every node and field a unique name") from exc
        raise SpecError(str(path), where, f"not valid YAML: {problem}",
                        "fix the syntax at that line") from exc


def topologies_dir() -> Path:
    import topologies

    return Path(topologies.__file__).resolve().parent


def project_root() -> Path:
    return topologies_dir().parent


def resolve_topology(ref: str | Path) -> Path:
    """A shipped topology's name (`two_isp_ixp`) or a path to a YAML file."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    shipped = topologies_dir() / f"{ref}.yaml"
    if shipped.exists():
        return shipped
    names = sorted(p.stem for p in topologies_dir().glob("*.yaml"))
    raise SpecError(str(ref), "", "no such topology",
                    "give a path to a YAML file or a shipped name; "
                    + choices(ref, names, "topologies"))


def load_topology(ref: str | Path, params: dict[str, Any] | None = None) -> Topology:
    """Load and validate a topology by shipped name or path; `params` override a family's."""
    path = resolve_topology(ref)
    data = read_yaml(path)
    return parse_topology(data, str(path), base_dir=path.parent, params=params)


def parse_topology(data: Any, source: str, base_dir: Path | None = None,
                   params: dict[str, Any] | None = None) -> Topology:
    """Validate a topology given as parsed YAML (a mapping)."""
    if not isinstance(data, dict):
        raise SpecError(source, "", "a topology must be a YAML mapping",
                        "start the file with `name:`, `nodes:` and `links:`")
    if "family" in data:
        data = _expand_family(data, source, params or {})
    elif params:
        raise SpecError(source, "params", "parameters given for a topology that has no family",
                        "only parametric topologies (with `family:`) take parameters")
    _check_keys(data, source, "", {"name", "description", "defaults", "nodes", "links",
                                   "cluster", "routing", "anycast"})
    builder = _Builder(source, base_dir or Path.cwd())
    topology = builder.build(data)
    if data.get("cluster") is not None:
        from cdnlab.machines.spec import parse_section

        topology.machines = parse_section(data["cluster"], source, set(topology.nodes))
    return topology


def _expand_family(data: dict[str, Any], source: str, params: dict[str, Any]) -> dict[str, Any]:
    from topologies import families

    name = data["family"]
    merged = dict(data.get("params") or {})
    merged.update(params)
    try:
        expanded = families.build(name, merged)
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(source, f"family {name!r}", str(exc),
                        f"known families: {', '.join(families.FAMILIES)}") from exc
    expanded.setdefault("name", data.get("name", name))
    return expanded


def _check_keys(data: dict[str, Any], source: str, where: str, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SpecError(source, where or "top level", f"unknown field {unknown[0]!r}",
                        choices(unknown[0], allowed, "fields"))


class _Builder:
    """Turns the parsed mapping into a Topology, checking as it goes."""

    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir
        self.nodes: dict[str, Node] = {}
        self.links: list[Link] = []

    def fail(self, where: str, problem: str, fix: str = "") -> SpecError:
        return SpecError(self.source, where, problem, fix)

    def build(self, data: dict[str, Any]) -> Topology:
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise self.fail("defaults", "must be a mapping", "e.g. defaults: {rate: 1000}")
        _check_keys(defaults, self.source, "defaults", set(FIELDS) | {"cluster_link"})
        base = self._shape(defaults, LinkShape(), "defaults")
        cluster_link = self._shape(defaults.get("cluster_link") or DEFAULT_CLUSTER_LINK,
                                   LinkShape(), "defaults.cluster_link")
        nodes = data.get("nodes")
        if not isinstance(nodes, dict) or not nodes:
            raise self.fail("nodes", "missing or empty", "list the nodes as `name: {role: ...}`")
        for name, spec in nodes.items():
            self._add_node(str(name), spec, cluster_link)
        links = data.get("links")
        if not isinstance(links, list) or not links:
            raise self.fail("links", "missing or empty", "list links as `- {a: X, b: Y, ...}`")
        for position, spec in enumerate(links):
            self._add_link(position, spec, base)
        self._check_bgp()
        routing = data.get("routing", "static")
        if routing not in ROUTINGS:
            raise self.fail("routing", f"unknown routing {routing!r}",
                            f"use one of: {', '.join(ROUTINGS)}")
        servers = [n for n, node in self.nodes.items() if node.role == ROUTE_SERVER_ROLE]
        if servers and routing != "bgp":
            raise self.fail(f"nodes.{servers[0][:-3]}.route_server",
                            "a route server needs routers that speak BGP",
                            "add `routing: bgp` to the topology")
        topology = Topology(name=str(data.get("name") or Path(self.source).stem),
                            source=self.source, nodes=self.nodes, links=self.links,
                            description=str(data.get("description") or ""), routing=routing)
        self._check_structure(topology)
        if data.get("anycast") is not None:
            topology.anycast = self._anycast(data["anycast"], topology)
        self._check_cluster_policies(topology)
        return topology

    def _check_cluster_policies(self, topology: Topology) -> None:
        """A router's `bgp:` may name an edge cluster only if it announces the anycast
        prefix: no other cluster speaks BGP, so the policy would apply to nothing."""
        announcing = set(topology.anycast.clusters) if topology.anycast else set()
        for name, node in self.nodes.items():
            for other in node.attrs.get("bgp") or {}:
                if self.nodes[other].role == "edge" and other not in announcing:
                    raise self.fail(
                        f"nodes.{name}.bgp.{other}",
                        f"{other} announces no anycast prefix, so it has no BGP session "
                        "for this policy to apply to",
                        f"add {other} to the topology's anycast: {{clusters: [...]}}, or "
                        "remove the entry")

    def _anycast(self, spec: Any, topology: Topology) -> Anycast:
        where = "anycast"
        if topology.routing != "bgp":
            raise self.fail(where, "anycast needs routers that speak BGP",
                            "add `routing: bgp` to the topology")
        if not isinstance(spec, dict):
            raise self.fail(where, "must be a mapping", "e.g. anycast: {clusters: [edge_a]}")
        _check_keys(spec, self.source, where, {"clusters", "prefix", "asn"})
        known = topology.clusters()
        clusters = spec.get("clusters", list(known))
        if not isinstance(clusters, list) or not clusters:
            raise self.fail(f"{where}.clusters", "must list edge clusters",
                            f"e.g. clusters: [{', '.join(known) or 'edge_a'}]")
        for cluster in clusters:
            if cluster not in known:
                raise self.fail(f"{where}.clusters", f"{cluster!r} is not an edge cluster",
                                choices(str(cluster), known, "clusters"))
        try:
            prefix = ipaddress.IPv4Network(str(spec.get("prefix", ANYCAST_PREFIX)))
        except ValueError as exc:
            raise self.fail(f"{where}.prefix", f"bad prefix: {exc}",
                            f"e.g. prefix: {ANYCAST_PREFIX}") from exc
        if prefix.overlaps(ipaddress.IPv4Network("10.0.0.0/8")) or prefix.prefixlen > 30:
            raise self.fail(f"{where}.prefix", f"{prefix} overlaps the address plan (10/8) "
                            "or is too small", f"use e.g. {ANYCAST_PREFIX}")
        asn = spec.get("asn", ANYCAST_ASN)
        self._asn_value(f"{where}.asn", asn)
        routers = {n for n, node in self.nodes.items() if node.kind == ROUTER}
        if any(node.attrs.get("asn") == asn for n, node in self.nodes.items() if n in routers):
            raise self.fail(f"{where}.asn", f"AS {asn} is a router's",
                            "give the CDN an AS of its own")
        return Anycast(prefix, int(asn), tuple(str(c) for c in clusters))

    def _asn(self, name: str, role: str, value: Any) -> None:
        where = f"nodes.{name}.asn"
        if ROLE_KINDS.get(role) != ROUTER:
            raise self.fail(where, f"a {role} is not a router and has no AS",
                            "give asn: to routers (isp, transit, cloud, router)")
        self._asn_value(where, value)

    def _asn_value(self, where: str, value: Any) -> None:
        low, high = ASN_RANGE
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(where, f"an AS number is a whole number {low}–{high}, got {value!r}",
                            "e.g. asn: 65010 (64512–65534 are for private use)")

    def _policy(self, policy: Any, where: str) -> dict[str, Any]:
        """One BGP policy mapping: `relationship` (what the neighbour is to this router),
        `local_pref`, `prepend`, `med`."""
        if not isinstance(policy, dict):
            raise self.fail(where, "must be a mapping",
                            "e.g. {relationship: provider, local_pref: 120, prepend: 2}")
        _check_keys(policy, self.source, where, set(BGP_POLICY_FIELDS))
        for key, value in policy.items():
            if key == "relationship":
                if value not in BGP_RELATIONSHIPS:
                    raise self.fail(f"{where}.relationship", f"unknown relationship {value!r}",
                                    "what the neighbour is to this router: "
                                    + ", ".join(BGP_RELATIONSHIPS))
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0 or \
                    (key == "prepend" and value > 10):
                raise self.fail(f"{where}.{key}", f"must be a whole number ≥ 0"
                                f"{' and ≤ 10' if key == 'prepend' else ''}, got {value!r}",
                                "e.g. local_pref: 200, prepend: 2, med: 10")
        return dict(policy)

    def _bgp_router(self, name: str, where: str) -> None:
        if self.nodes[name].kind != ROUTER:
            raise self.fail(where, f"{name} is a {self.nodes[name].role}, not a router, and "
                            "speaks no BGP", "set policy between routers")

    def _bgp_policy(self, spec: Any, ends: tuple[str, str],
                    where: str) -> dict[str, dict[str, Any]]:
        """A link's `bgp:` — per end router, the policy it applies on its sessions over
        this link."""
        where = f"{where}.bgp"
        if not isinstance(spec, dict):
            raise self.fail(where, "must be a mapping of an end to its policy",
                            f"e.g. bgp: {{{ends[0]}: {{local_pref: 120}}}}")
        found: dict[str, dict[str, Any]] = {}
        for end, policy in spec.items():
            if end not in ends:
                raise self.fail(where, f"{end!r} is not an end of this link",
                                f"use {ends[0]} or {ends[1]}")
            self._bgp_router(end, f"{where}.{end}")
            found[str(end)] = self._policy(policy, f"{where}.{end}")
        _agree(found, ends, where, self.fail)
        return found

    def _check_bgp(self) -> None:
        """Routers' `bgp:` (neighbour router → policy), checked once every node exists:
        each neighbour a router, and two routers' relationships each other's mirror."""
        said: dict[str, dict[str, dict[str, Any]]] = {}
        for name, node in self.nodes.items():
            spec = node.attrs.get("bgp")
            if spec is None:
                continue
            where = f"nodes.{name}.bgp"
            self._bgp_router(name, where)
            if not isinstance(spec, dict):
                raise self.fail(where, "must be a mapping of a neighbour router to a policy",
                                "e.g. bgp: {cloud: {relationship: provider}}")
            said[name] = {}
            for other, policy in spec.items():
                if other not in self.nodes or other == name:
                    raise self.fail(where, f"{other!r} is not another node",
                                    choices(str(other), self.nodes, "nodes"))
                if self.nodes[other].role != "edge":  # an anycast cluster's speaker
                    self._bgp_router(other, f"{where}.{other}")
                said[name][other] = self._policy(policy, f"{where}.{other}")
        for name, policies in said.items():
            for other, policy in policies.items():
                _agree({name: policy, other: said.get(other, {}).get(name, {})},
                       (name, other), f"nodes.{name}.bgp.{other}", self.fail)

    def _shape(self, values: Any, base: LinkShape, where: str) -> LinkShape:
        if not isinstance(values, dict):
            raise self.fail(where, "a link shape must be a mapping",
                            "e.g. {rate: 10, delay: 5}")
        try:
            shape = shape_from_mapping(values, base)
        except ValueError as exc:
            raise self.fail(where, str(exc), "give a number") from exc
        for name, problem, fix in shape.problems():
            raise self.fail(f"{where}.{name}", problem, fix)
        return shape

    def _check_name(self, name: str, where: str) -> None:
        if not NAME_PATTERN.match(name):
            raise self.fail(where, f"bad node name {name!r}",
                            "use lower-case letters, digits and _, starting with a letter")
        if len(name) > MAX_NAME:
            raise self.fail(where, f"node name {name!r} is longer than {MAX_NAME} characters",
                            "shorten it (interface names <node>-e<N> must fit Linux's 15)")
        if name in self.nodes:
            raise self.fail(where, f"duplicate name {name!r}", "give every node a unique name")

    def _add_node(self, name: str, spec: Any, cluster_link: LinkShape) -> None:
        where = f"nodes.{name}"
        if isinstance(spec, str):
            spec = {"role": spec}
        if not isinstance(spec, dict) or "role" not in spec:
            raise self.fail(where, "a node needs a role", f"e.g. {name}: {{role: client}}")
        role = spec["role"]
        if role not in ROLE_KINDS:
            raise self.fail(where, f"unknown role {role!r}", choices(role, ROLE_KINDS, "roles"))
        self._check_name(name, where)
        attrs = {k: v for k, v in spec.items() if k != "role"}
        if "asn" in attrs:
            self._asn(name, role, attrs["asn"])
        if role == "ixp" and attrs.get("route_server") not in (None, False):
            self._route_server(name, attrs, where)
            return
        if role != "edge":
            self.nodes[name] = Node(name, role, ROLE_KINDS[role], attrs=attrs)
            return
        servers = attrs.get("servers", 1)
        if isinstance(servers, bool) or not isinstance(servers, int) or servers < 1:
            raise self.fail(f"{where}.servers", f"servers must be a whole number ≥ 1, "
                            f"got {servers!r}", "e.g. servers: 2")
        self.nodes[name] = Node(name, role, SWITCH, attrs=attrs)
        for i in range(1, servers + 1):
            server = f"{name}_{i}"
            self._check_name(server, f"{where} (server {i})")
            self.nodes[server] = Node(server, EDGE_SERVER_ROLE, HOST, cluster=name)
            self.links.append(Link(len(self.links), server, name, cluster_link, cluster_link,
                                   "cluster"))

    def _route_server(self, ixp: str, attrs: dict[str, Any], where: str) -> None:
        """An IXP with `route_server: true` (or `{asn: N}`): a host `<ixp>_rs` on its
        fabric that runs the route server (`cdnlab.topology.bgp`)."""
        spec = attrs["route_server"]
        if spec is not True and not isinstance(spec, dict):
            raise self.fail(f"{where}.route_server", f"must be true or a mapping, got "
                            f"{spec!r}", "route_server: true, or route_server: {asn: 64700}")
        if isinstance(spec, dict):
            _check_keys(spec, self.source, f"{where}.route_server", {"asn"})
            if "asn" in spec:
                self._asn_value(f"{where}.route_server.asn", spec["asn"])
        self.nodes[ixp] = Node(ixp, "ixp", SWITCH, attrs=attrs)
        server = f"{ixp}_rs"
        self._check_name(server, f"{where} (its route server)")
        self.nodes[server] = Node(server, ROUTE_SERVER_ROLE, HOST)
        self.links.append(Link(len(self.links), server, ixp, LinkShape(), LinkShape(), "ixp"))

    def _add_link(self, position: int, spec: Any, base: LinkShape) -> None:
        where = f"links[{position}]"
        if isinstance(spec, list) and len(spec) in (2, 3):
            spec = {"a": spec[0], "b": spec[1], **(spec[2] if len(spec) == 3 else {})}
        if not isinstance(spec, dict) or "a" not in spec or "b" not in spec:
            raise self.fail(where, "a link needs two ends", "e.g. - {a: c1, b: isp1, delay: 2}")
        a, b = str(spec["a"]), str(spec["b"])
        where = f"links[{position}] ({a}--{b})"
        _check_keys(spec, self.source, where,
                    {"a", "b", "class", "trace", "subnet", "a_to_b", "b_to_a", "bgp", *FIELDS})
        for end in (a, b):
            if end not in self.nodes:
                raise self.fail(where, f"unknown node {end!r}",
                                "declare it under nodes:; " + choices(end, self.nodes, "nodes"))
        if a == b:
            raise self.fail(where, "a link from a node to itself", "connect two different nodes")
        for link in self.links:
            if {link.a, link.b} == {a, b}:
                raise self.fail(where, "a second link between the same two nodes",
                                "use one link, or put a switch between them")
        both = self._shape(spec, base, where)
        a_to_b = self._shape(spec.get("a_to_b") or {}, both, f"{where}.a_to_b")
        b_to_a = self._shape(spec.get("b_to_a") or {}, both, f"{where}.b_to_a")
        klass = spec.get("class") or self._infer_class(a, b)
        if klass not in LINK_CLASSES:
            raise self.fail(f"{where}.class", f"unknown link class {klass!r}",
                            f"use one of: {', '.join(LINK_CLASSES)}")
        subnet = None
        if "subnet" in spec:
            try:
                subnet = ipaddress.IPv4Network(str(spec["subnet"]))
            except ValueError as exc:
                raise self.fail(f"{where}.subnet", f"bad subnet: {exc}",
                                "give an IPv4 network such as 10.50.0.0/24") from exc
        trace = self._trace(spec.get("trace"), where) if "trace" in spec else None
        bgp = self._bgp_policy(spec["bgp"], (a, b), where) if "bgp" in spec else {}
        self.links.append(Link(len(self.links), a, b, a_to_b, b_to_a, klass, trace, subnet,
                               bgp))

    def _infer_class(self, a: str, b: str) -> str:
        roles = {self.nodes[a].role, self.nodes[b].role}
        if "client" in roles or "uploader" in roles:
            return "access"
        if "ixp" in roles:
            return "ixp"
        if roles & {"transit", "cloud", "origin", "dns"}:
            return "transit"
        return "core"

    def _trace(self, spec: Any, where: str) -> TraceRef:
        from cdnlab.traces import load_trace

        if isinstance(spec, str):
            spec = {"file": spec}
        if not isinstance(spec, dict) or "file" not in spec:
            raise self.fail(f"{where}.trace", "a trace needs a file",
                            "e.g. trace: {file: traces/step_down.csv, direction: b_to_a}")
        direction = spec.get("direction", "both")
        if direction not in TRACE_DIRECTIONS:
            raise self.fail(f"{where}.trace.direction", f"unknown direction {direction!r}",
                            f"use one of: {', '.join(TRACE_DIRECTIONS)}")
        path = resolve_data_file(str(spec["file"]), self.base_dir)
        load_trace(path)  # raises SpecError naming the file and line
        return TraceRef(path, direction, bool(spec.get("loop", True)))

    def _check_structure(self, topology: Topology) -> None:
        for node in topology.nodes.values():
            degree = len(topology.links_of(node.name))
            if node.kind == HOST and degree != 1:
                raise self.fail(f"nodes.{node.name}",
                                f"a host ({node.role}) must have exactly one link, has {degree}",
                                "connect it to one router or switch")
        _check_switch_forest(topology, self.fail)
        _check_connected(topology, self.fail)


def _agree(policies: dict[str, dict[str, Any]], ends: tuple[str, str], where: str,
           fail: Any) -> None:
    """Two routers' relationships, where both give one, must mirror each other."""
    said = [policies.get(end, {}).get("relationship") for end in ends]
    if None not in said and BGP_RELATIONSHIPS[said[0]] != said[1]:
        raise fail(where, f"{ends[0]} calls {ends[1]} its {said[0]} but {ends[1]} calls "
                   f"{ends[0]} its {said[1]}", "customer pairs with provider, peer with peer")


def resolve_data_file(name: str, base_dir: Path) -> Path:
    """A data file named in a spec: relative to the spec's folder, else the project root."""
    path = Path(name)
    if path.is_absolute():
        return path
    for folder in (base_dir, project_root()):
        if (folder / path).exists():
            return folder / path
    return base_dir / path


def _check_switch_forest(topology: Topology, fail: Any) -> None:
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for link in topology.links:
        if topology.kind(link.a) == SWITCH and topology.kind(link.b) == SWITCH:
            ra, rb = root(link.a), root(link.b)
            if ra == rb:
                raise fail(f"link {link.name}",
                           "this link closes a loop of switches (no spanning tree runs)",
                           "remove it or put a router in the loop")
            parent[ra] = rb


def _check_connected(topology: Topology, fail: Any) -> None:
    names = list(topology.nodes)
    reached = {names[0]}
    frontier = [names[0]]
    while frontier:
        current = frontier.pop()
        for link in topology.links_of(current):
            other = link.other(current)
            if other not in reached:
                reached.add(other)
                frontier.append(other)
    missing = [n for n in names if n not in reached]
    if missing:
        raise fail("links", f"the graph is disconnected: {', '.join(missing)} cannot be "
                   f"reached from {names[0]}", "add links joining them to the rest")
