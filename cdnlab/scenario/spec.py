"""Scenario files (YAML), validated into a typed `Scenario`. Every error names the file,
the field and the fix. Shape (every section but `topology` has defaults):

    name: youtube_pull
    topology: two_isp_ixp              # a shipped name, a path, or an inline mapping
    seed: 1
    duration_s: 60                     # the workload's window; sessions may run past it
    content: {titles: 20, title_s: 40, segment_s: 2, ladder: [300k@426x240, …],
              audio_kbps: 128,         # each title's audio track, fetched beside video; 0: none
              uploads: [{title: film, uploader: b3, seconds: 12, size: 640x360}]}
    cdn:
      mode: pull                       # pull | push
      modes: {edge_a: push}            # a cluster's own mode: push and pull side by side
      cache_mb: 200                    # pull: per server
      capacity_mbps: 100               # per server, for utilisation and overload
      threshold: 0.8                   # DNS spills a cluster's demand above this share
      shed_above: 1.0                  # an edge answers 302 (overload) above this
      fill: {start_s: 0, end_s: 30, rate_mbps: 50, capacity_mb: 100}   # push
    dns: {policy: min_rtt_spill, ttl: 5, stale_after_s: 10,
          resolvers: {res_a: {kind: isp},    # recursive resolvers (topology role resolver):
                      pub: {kind: public, ecs: true, clients: [a2, b2], fallback: res_a}}}
    probes: {interval_s: 1, method: icmp}
    routing: dns                       # or steering, or {mode: steering, steering_ttl_s: 5},
                                       # or {mode: anycast, withdraw_above: 0.9, hold_s: 10}:
                                       # DNS names the MPD's server, content steering ranks
                                       # the pathways (clusters) from then on (both players);
                                       # cmsd: true adds CMSD from edges (du above threshold)
    controller: null                   # or os-ken
    workload:
      viewers: {a1: 3, isp_b: 4}       # per client host, or per ISP (spread over its clients)
      arrival: {process: poisson, start_s: 2, rate_per_s: 1}   # or uniform over a window
      zipf: 0.8
      segments: 10                     # per session
      max_buffer_s: 12
      abr: {bola: 1, throughput: 1}    # weights; dashjs: viewers that are dash.js in
                                       # headless Chromium (they play content.uploads)
      abr_params: {fixed: {kbps: 750}} # an algorithm's parameters (see nodes/client/abr.py)
      abr_assign: random               # or cycle: each algorithm in turn, side by side
      closed_loop: false               # true: each viewer plays session after session until
                                       # duration_s (the counts are viewers playing at once)
    timeline:
      - {at: 20, set_link: {a: isp_a, b: edge_a, delay: 20}}
      - {at: 25, link_down: [cloud, ixp]}
      - {at: 30, link_up: [cloud, ixp]}
      - {at: 10, replay: {a: a1, b: acc_a, trace: traces/step_down.csv}}
      - {at: 15, cluster_down: edge_a}
      - {at: 35, cluster_up: edge_a}
      - {at: 12, cluster_capacity: {cluster: edge_x, mbps: 4}}  # its uplink's rate and
                                       # the capacity its edges' utilisation divides by
      - {at: 20, surge: {viewers: {b1: 5}, segments: 8}}
      - {at: 5, upload: {title: clip, uploader: b3, seconds: 6, size: 426x240}}
      - {at: 20, resolver_down: res_b}  # its clients fail over to their second nameserver
      - {at: 8, kill_program: dns}      # or {program: dns, signal: TERM}; the programs:
      - {at: 9, pause_program: edge_a_1} # origin, dns, an edge server, probe_CLUSTER,
      - {at: 11, resume_program: edge_a_1} # resolver_HOST; also stop_ and restart_program
      - {at: 12, origin_fault: {status: 503, seconds: 5}}   # or slow_kbps: 200
      - {at: 14, dns_drop: {seconds: 3}}  # the redirector drops DNS over UDP
      - {at: 16, fill_cache: {edge: edge_a_1, seconds: 4}}  # a pull edge's cache disk full
      # on a `routing: bgp` topology (link_down/link_up too: BGP's convergence is logged)
      - {at: 18, bgp_withdraw: edge_a}  # an anycast cluster's announcement out; bgp_announce
      - {at: 22, bgp_policy: {router: edge_f, prepend: 3}}  # neighbour: NAME for one only;
                                       # local_pref, prepend, med; null takes one away
    supervise: [dns]                   # or all: restarted when they exit unasked
    chaos: {from_s: 3, to_s: 20}       # one fault of each kind at seeded times
    variants:                          # named runs of this scenario, each with its own
      dns: {}                          # overrides (as --set): `cdnlab run` runs them all
      steering: {routing: steering}    # and compares them (cdnlab/results/variants.py)
"""

from __future__ import annotations

import copy
import re
from dataclasses import MISSING, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from cdnlab.errors import SpecError, choices
from cdnlab.net.controller import CONTROLLERS
from cdnlab.topology import Topology, load_topology
from cdnlab.topology.spec import ROUTER, parse_topology, read_yaml
from nodes.common.conventions import (
    ABR_ALGORITHMS,
    ABR_DEFAULT,
    AUDIO_KBPS,
    BROWSER_ABR,
    DNS_POLICIES,
    DNS_POLICY,
    DNS_TTL_S,
    LOAD_THRESHOLD,
    MAX_BUFFER_S,
    ORIGIN_FAULT_STATUSES,
    PROBE_INTERVAL_S,
    PROBE_METHOD,
    PROBE_METHODS,
    SHED_ABOVE,
    SPILL_GAIN,
    SPILL_MAX_SHARE,
    STALE_AFTER_S,
    title_names,
)
from nodes.common.ladder import DEFAULT_LADDER, LadderError, Rung, parse_rung
from nodes.router.config import POLICY_SETTINGS

EVENTS = ("set_link", "link_down", "link_up", "replay", "cluster_down", "cluster_up", "surge",
          "upload", "resolver_down", "resolver_up", "kill_program", "stop_program",
          "pause_program", "resume_program", "restart_program", "origin_fault", "dns_drop",
          "fill_cache", "cluster_capacity", "bgp_withdraw", "bgp_announce", "bgp_policy")
# BGP changes at a time on a `routing: bgp` topology (cdnlab.net.bgp): an anycast cluster's
# announcement out or back, and the policy a router (or an anycast cluster) applies on its
# sessions with a neighbour (or all of them)
BGP_EVENTS = ("bgp_withdraw", "bgp_announce", "bgp_policy")
# faults on one node program, by its name (`program_names`): kill (a signal, SIGKILL unless
# given), stop (SIGTERM, as an operator stops it), pause and resume (SIGSTOP, SIGCONT), and
# restart (the same command again, once it has exited)
PROGRAM_EVENTS = ("kill_program", "stop_program", "pause_program", "resume_program",
                  "restart_program")
KILL_SIGNALS = ("KILL", "TERM", "INT", "ABRT", "SEGV")
# faults that last `seconds`: the origin answering an HTTP error status, or slowly (every
# response capped at slow_kbps); the redirector's DNS port dropping UDP; a pull edge's cache
# disk full (the edges it names get a cache filesystem of cdn.cache_mb: `filled_edges`)
TIMED_FAULTS = ("origin_fault", "dns_drop", "fill_cache")
# found through the package, so an installed cdnlab finds them as a checkout does
SCENARIOS_DIR = Path(str(resources.files("scenarios")))
MODES = ("pull", "push")
ROUTING_MODES = ("dns", "steering", "anycast")
ARRIVALS = ("poisson", "uniform")
ABR_ASSIGNMENTS = ("random", "cycle")  # by weight | each algorithm in turn, side by side
DEFAULT_SEED = 1
DEFAULT_DURATION_S = 60.0


@dataclass(frozen=True)
class Upload:
    title: str
    uploader: str  # the host the master is uploaded from, over HTTP
    seconds: float = 10.0  # of generated test master
    size: str = "640x360"


@dataclass(frozen=True)
class Content:
    titles: int = 20
    title_s: float = 40.0
    segment_s: float = 2.0
    ladder: tuple[Rung, ...] = DEFAULT_LADDER
    audio_kbps: int = AUDIO_KBPS  # every title's audio track; 0: video only
    uploads: tuple[Upload, ...] = ()  # masters transcoded by the origin, most popular first

    def title_list(self) -> list[str]:
        return [u.title for u in self.uploads] + title_names(self.titles)


@dataclass(frozen=True)
class Fill:
    start_s: float = 0.0
    end_s: float = 60.0
    rate_mbps: float = 50.0
    capacity_mb: float = 1000.0


@dataclass(frozen=True)
class Cdn:
    mode: str = "pull"
    cache_mb: int = 200
    capacity_mbps: float = 100.0
    threshold: float = LOAD_THRESHOLD
    fill: Fill | None = None
    modes: dict[str, str] = field(default_factory=dict)  # per-cluster mode, side by side
    shed_above: float = SHED_ABOVE  # utilisation above which an edge answers 302

    def mode_of(self, cluster: str) -> str:
        return self.modes.get(cluster, self.mode)

    @property
    def any_push(self) -> bool:
        return self.mode == "push" or "push" in self.modes.values()


@dataclass(frozen=True)
class Resolver:
    """A recursive resolver host (topology role `resolver`) and the clients that ask it."""
    name: str
    kind: str = "isp"  # isp: its ISP's clients use it; public: the clients listed
    ecs: bool = False  # sends EDNS Client Subnet to the redirector
    clients: tuple[str, ...] = ()
    fallback: str | None = None  # its clients' second nameserver (see `_resolvers`)


@dataclass(frozen=True)
class Dns:
    policy: str = DNS_POLICY
    ttl: int = DNS_TTL_S
    stale_after_s: float = STALE_AFTER_S
    spill_gain: float = SPILL_GAIN
    spill_max_share: float = SPILL_MAX_SHARE
    resolvers: tuple[Resolver, ...] = ()  # none: clients ask the redirector directly
    # per client, the resolvers its resolver configuration lists, in order
    nameservers: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Probes:
    interval_s: float = PROBE_INTERVAL_S
    method: str = PROBE_METHOD


@dataclass(frozen=True)
class Workload:
    viewers: dict[str, int] = field(default_factory=dict)  # client host → count
    process: str = "poisson"
    start_s: float = 1.0
    rate_per_s: float = 1.0
    window_s: float = 10.0
    zipf: float = 0.8
    segments: int = 10
    max_buffer_s: float = MAX_BUFFER_S
    abr: dict[str, float] = field(default_factory=lambda: {ABR_DEFAULT: 1.0})
    abr_assign: str = "random"  # one of ABR_ASSIGNMENTS
    abr_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # algorithm → params
    # each viewer, once arrived, plays one session after another until duration_s, so the
    # viewer counts are the number playing at once (a closed-loop workload)
    closed_loop: bool = False


@dataclass(frozen=True)
class Event:
    at: float
    kind: str
    args: Any


@dataclass
class Routing:
    """How viewers reach a cluster: `dns` (the redirector's answers), or `steering` (DNS
    picks the server of the MPD; DASH content steering, nodes/steering, ranks the
    pathways every `steering_ttl_s` from then on). With `cmsd`, edges send CMSD (CTA-5006:
    etp, mb, and du above `cdn.threshold`) and players honour it (nodes/client/player.py).
    `anycast` (a topology with `anycast:`): DNS answers the anycast address to everyone,
    and BGP decides which cluster each viewer reaches; the health watch withdraws a
    cluster's announcement while it is down and, with `withdraw_above`, while its load
    (the utilisation its edges report) is over that share, for at least `hold_s`."""
    mode: str = "dns"
    steering_ttl_s: int = 10
    cmsd: bool = False
    withdraw_above: float | None = None  # anycast: shed a cluster's announcement above this
    hold_s: float = 10.0  # anycast: the least time an overloaded cluster stays withdrawn

    @property
    def steering(self) -> bool:
        return self.mode == "steering"

    @property
    def anycast(self) -> bool:
        return self.mode == "anycast"


@dataclass
class Scenario:
    name: str
    source: str
    topology: Topology
    seed: int
    duration_s: float
    content: Content
    cdn: Cdn
    dns: Dns
    probes: Probes
    controller: str | None
    workload: Workload
    timeline: list[Event]
    raw: dict[str, Any]  # as resolved, for run.json
    supervise: tuple[str, ...] = ()  # programs restarted when they exit unasked
    routing: Routing = field(default_factory=lambda: Routing())
    # name → overrides of each variant (`variants:`); a variant's own scenario has none
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def origin_slow_rates(self) -> tuple[int, ...]:
        """Every rate an `origin_fault` caps the origin at (its nginx is told them)."""
        return tuple(sorted({int(e.args["slow_kbps"]) for e in self.timeline
                             if e.kind == "origin_fault" and "slow_kbps" in e.args}))

    def filled_edges(self) -> set[str]:
        """The edge servers a `fill_cache` event names: their cache is a filesystem of its
        own, so that filling it fills no other disk."""
        return {e.args["edge"] for e in self.timeline if e.kind == "fill_cache"}

    def pull_edges(self) -> list[str]:
        """The servers of the clusters in pull mode (those with a cache to fill)."""
        return [s for c, servers in self.topology.clusters().items()
                if self.cdn.mode_of(c) == "pull" for s in servers]

    def program_names(self) -> list[str]:
        """The node programs a run starts that serve until stopped, by the names the
        engine gives them: what fault events and `supervise` may name."""
        clusters = self.topology.clusters()
        names = ["origin", "dns", *(s for servers in clusters.values() for s in servers),
                 *(f"probe_{c}" for c in clusters),
                 *(f"resolver_{r.name}" for r in self.dns.resolvers)]
        return names

    def dynamic_links(self) -> set[str]:
        """Links whose delay or loss the timeline changes (nfqueue boxes them)."""
        found = set()
        for event in self.timeline:
            if event.kind == "set_link" and ({"delay", "jitter", "loss"} & set(event.args)):
                found.add(self.topology.link(event.args["a"], event.args["b"]).name)
        return found


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str, fix: str = "") -> SpecError:
        return SpecError(self.source, where, problem, fix)

    def mapping(self, data: Any, where: str, known: set[str]) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise self.fail(where, f"expected a mapping, got {type(data).__name__}",
                            f"write {where}: {{key: value, …}}")
        unknown = sorted(set(data) - known)
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}" if where else unknown[0],
                            "unknown field", choices(unknown[0], known, "fields"))
        return data

    def number(self, data: dict[str, Any], key: str, where: str, default: float,
               low: float | None = None, high: float | None = None, kind: type = float) -> Any:
        value = data.get(key, default)
        field_name = f"{where}.{key}" if where else key
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(field_name, f"must be a number, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low if low is not None else '-∞'}…{high if high is not None else '∞'}"
            raise self.fail(field_name, f"{value} is outside {bounds}")
        return kind(value)

    def choice(self, data: dict[str, Any], key: str, where: str, default: str,
               options: tuple[str, ...] | list[str]) -> str:
        value = data.get(key, default)
        if value not in options:
            raise self.fail(f"{where}.{key}", f"{value!r} is not one of {', '.join(options)}",
                            choices(value, options))
        return str(value)


def _topology(reader: _Reader, data: Any, base: Path) -> Topology:
    if isinstance(data, dict):
        return parse_topology(data, f"{reader.source}: topology", base_dir=base)
    if not isinstance(data, str):
        raise reader.fail("topology", "missing or not a name, path or mapping",
                          "topology: two_isp_ixp")
    candidate = base / data
    return load_topology(candidate if candidate.suffix in (".yaml", ".yml") and
                         candidate.exists() else data)


def _viewers(reader: _Reader, data: Any, topology: Topology) -> dict[str, int]:
    if not isinstance(data, dict) or not data:
        raise reader.fail("workload.viewers", "needs at least one host or ISP with a count",
                          "viewers: {a1: 2} or {isp_a: 6}")
    clients = topology.by_role("client")
    viewers: dict[str, int] = {}
    for where, count in data.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise reader.fail(f"workload.viewers.{where}", f"count must be a whole number ≥ 0,"
                              f" got {count!r}")
        if where in clients:
            viewers[where] = viewers.get(where, 0) + count
            continue
        if where not in topology.nodes:
            raise reader.fail(f"workload.viewers.{where}", "unknown node",
                              choices(where, [*clients, *topology.by_role("isp")],
                                      "clients and ISPs"))
        # an ISP (or any node): its clients are those whose nearest router it is
        members = [c for c in clients if isp_of(topology, c) == where]
        if not members:
            raise reader.fail(f"workload.viewers.{where}", "has no clients",
                              "name a client host or an ISP with clients")
        for n in range(count):
            host = members[n % len(members)]
            viewers[host] = viewers.get(host, 0) + 1
    return viewers


def isp_of(topology: Topology, client: str) -> str | None:
    """The first router (ISP) reached from a client, through switches."""
    seen, frontier = {client}, [client]
    while frontier:
        node = frontier.pop(0)
        for link in topology.links_of(node):
            other = link.other(node)
            if other in seen:
                continue
            seen.add(other)
            if topology.kind(other) == "router":
                return other
            if topology.kind(other) == "switch":
                frontier.append(other)
    return None


def _upload(reader: _Reader, data: Any, where: str, topology: Topology,
            default_title: str) -> Upload:
    item = reader.mapping(data, where, {"title", "uploader", "seconds", "size"})
    host = item.get("uploader")
    if host not in topology.hosts():
        raise reader.fail(f"{where}.uploader", f"{host!r} is not a host of the topology",
                          "name the host the master is uploaded from")
    size = str(item.get("size", _default(Upload, "size")))
    if not re.fullmatch(r"\d+x\d+", size):
        raise reader.fail(f"{where}.size", f"{size!r} is not WIDTHxHEIGHT")
    return Upload(str(item.get("title") or default_title), host,
                  reader.number(item, "seconds", where, _default(Upload, "seconds"), 1, 120), size)


def _event(reader: _Reader, n: int, data: Any, topology: Topology, clusters: dict[str, Any],
           base: Path) -> Event:
    where = f"timeline[{n}]"
    if not isinstance(data, dict) or "at" not in data or len(data) != 2:
        raise reader.fail(where, "an event is {at: SECONDS, KIND: ARGS}",
                          f"KIND is one of {', '.join(EVENTS)}")
    at = reader.number(data, "at", where, 0, low=0)
    kind = next(k for k in data if k != "at")
    if kind not in EVENTS:
        raise reader.fail(f"{where}.{kind}", "unknown event", choices(kind, EVENTS, "events"))
    args = data[kind]
    if kind in ("link_down", "link_up"):
        if not (isinstance(args, list) and len(args) == 2):
            raise reader.fail(f"{where}.{kind}", "expected [A, B], the link's two ends")
        _link(reader, f"{where}.{kind}", topology, *args)
    elif kind in ("set_link", "replay"):
        known = {"a", "b", "direction", "rate", "delay", "jitter", "loss"} if \
            kind == "set_link" else {"a", "b", "direction", "trace", "loop"}
        args = dict(reader.mapping(args, f"{where}.{kind}", known))
        _link(reader, f"{where}.{kind}", topology, args.get("a"), args.get("b"))
        reader.choice(args, "direction", f"{where}.{kind}", "both",
                      ("both", "a_to_b", "b_to_a"))
        if kind == "replay":
            trace = base / str(args.get("trace", ""))
            if not trace.is_file():
                trace = SCENARIOS_DIR.parent / str(args.get("trace", ""))
            if not trace.is_file():
                raise reader.fail(f"{where}.replay.trace", f"no trace file {args.get('trace')!r}",
                                  "give a path relative to the scenario or the project")
            args["trace"] = str(trace)
    elif kind in ("cluster_down", "cluster_up"):
        if args not in clusters:
            raise reader.fail(f"{where}.{kind}", f"unknown cluster {args!r}",
                              choices(args, clusters, "clusters"))
    elif kind == "cluster_capacity":
        args = dict(reader.mapping(args, f"{where}.{kind}", {"cluster", "mbps"}))
        if args.get("cluster") not in clusters:
            raise reader.fail(f"{where}.{kind}.cluster", f"unknown cluster "
                              f"{args.get('cluster')!r}", choices(str(args.get("cluster")),
                                                                  clusters, "clusters"))
        if len(topology.uplinks(args["cluster"])) != 1:
            raise reader.fail(f"{where}.{kind}", f"cluster {args['cluster']} has "
                              f"{len(topology.uplinks(args['cluster']))} links to the "
                              "network; its capacity is cut on its one uplink",
                              "give the cluster one link to its site")
        args["mbps"] = reader.number(args, "mbps", f"{where}.{kind}", 0, low=0.01)
    elif kind in ("resolver_down", "resolver_up"):
        if args not in topology.by_role("resolver"):
            raise reader.fail(f"{where}.{kind}", f"unknown resolver {args!r}",
                              choices(args, topology.by_role("resolver"), "resolvers"))
    elif kind in BGP_EVENTS:
        args = _bgp_event(reader, f"{where}.{kind}", kind, args, topology)
    elif kind == "upload":
        args = _upload(reader, args, f"{where}.upload", topology, f"upload-at-{at:g}")
    elif kind in PROGRAM_EVENTS:
        args = _program_event(reader, f"{where}.{kind}", kind, args)
    elif kind in TIMED_FAULTS:
        args = _timed_fault(reader, f"{where}.{kind}", kind, args)
    elif kind == "surge":
        args = dict(reader.mapping(args, f"{where}.surge", {"viewers", "segments"}))
        args["viewers"] = _viewers(reader, args.get("viewers"), topology)
        args["segments"] = reader.number(args, "segments", f"{where}.surge", 8, low=1, kind=int)
    return Event(at, kind, args)


def _bgp_event(reader: _Reader, where: str, kind: str, args: Any, topology: Topology) -> Any:
    """`bgp_withdraw: CLUSTER`, `bgp_announce: CLUSTER` (an anycast cluster), or
    `bgp_policy: {router, neighbour, local_pref, prepend, med}` (a router or an anycast
    cluster, the neighbour optional; whether the two share a session is checked when it
    is applied)."""
    if topology.routing != "bgp":
        raise reader.fail(where, f"{topology.name} does not route by BGP",
                          "use a topology with routing: bgp (two_isp_bgp, anycast_transit)")
    anycast = list(topology.anycast.clusters) if topology.anycast else []
    if kind != "bgp_policy":
        if args not in anycast:
            raise reader.fail(where, f"{args!r} is not an anycast cluster of {topology.name}",
                              choices(str(args), anycast, "anycast clusters"))
        return args
    args = dict(reader.mapping(args, where, {"router", "neighbour", *POLICY_SETTINGS}))
    speakers = [n for n, node in topology.nodes.items() if node.kind == ROUTER] + anycast
    for key in ("router", "neighbour"):
        if (key == "router" or key in args) and args.get(key) not in speakers:
            raise reader.fail(f"{where}.{key}", f"{args.get(key)!r} speaks no BGP here",
                              choices(str(args.get(key)), speakers, "routers and anycast "
                                                                     "clusters"))
    settings = [k for k in POLICY_SETTINGS if k in args]
    if not settings:
        raise reader.fail(where, "changes nothing",
                          f"give one of {', '.join(POLICY_SETTINGS)} (null takes it away)")
    for key in settings:
        if args[key] is not None:
            if isinstance(args[key], bool) or not isinstance(args[key], int):
                raise reader.fail(f"{where}.{key}", f"must be a whole number, got "
                                  f"{args[key]!r}", "e.g. prepend: 3, or null to take it away")
            args[key] = reader.number(args, key, where, 0, low=0,
                                      high=10 if key == "prepend" else None, kind=int)
    return args


def _program_event(reader: _Reader, where: str, kind: str, args: Any) -> dict[str, Any]:
    """`kill_program: dns` or `{program: dns, signal: TERM}`; the others name a program
    alone. The name is checked against the run's programs once the scenario is whole."""
    if isinstance(args, str):
        args = {"program": args}
    known = {"program", "signal"} if kind == "kill_program" else {"program"}
    args = dict(reader.mapping(args, where, known))
    if not isinstance(args.get("program"), str):
        raise reader.fail(where, "names no program",
                          f"{kind}: NAME, or {{program: NAME}} (the origin, dns, an edge "
                          "server, probe_CLUSTER, resolver_HOST)")
    if kind == "kill_program":
        reader.choice(args, "signal", where, "KILL", KILL_SIGNALS)
    return args


def _timed_fault(reader: _Reader, where: str, kind: str, args: Any) -> dict[str, Any]:
    """`origin_fault: {status: 503, seconds: 5}` or `{slow_kbps: 200, seconds: 5}`;
    `dns_drop: {seconds: 5}`; `fill_cache: {edge: SERVER, seconds: 5}` (the server is
    checked against the run's pull edges once the scenario is whole)."""
    known = {"status", "slow_kbps", "seconds"} if kind == "origin_fault" else \
        {"edge", "seconds"} if kind == "fill_cache" else {"seconds"}
    args = dict(reader.mapping(args, where, known))
    if kind == "fill_cache" and not isinstance(args.get("edge"), str):
        raise reader.fail(where, "names no edge server",
                          "fill_cache: {edge: SERVER, seconds: 5}, SERVER an edge server "
                          "of a pull cluster (edge1_1)")
    args["seconds"] = reader.number(args, "seconds", where, 5.0, low=0.1, high=3600)
    if kind == "origin_fault":
        if ("status" in args) == ("slow_kbps" in args):
            raise reader.fail(where, "needs one of status or slow_kbps",
                              "status: 503 (an error answered to every request) or "
                              "slow_kbps: 200 (every response capped at that rate)")
        if "status" in args:
            args["status"] = int(reader.choice(
                {"status": str(args["status"])}, "status", where, "503",
                tuple(str(c) for c in ORIGIN_FAULT_STATUSES)))
        else:
            args["slow_kbps"] = reader.number(args, "slow_kbps", where, 200, low=8,
                                              high=1_000_000, kind=int)
    return args


def _link(reader: _Reader, where: str, topology: Topology, a: Any, b: Any) -> None:
    try:
        topology.link(str(a), str(b))
    except (KeyError, ValueError) as err:
        raise reader.fail(where, f"no link between {a!r} and {b!r}",
                          "name the two ends of a link of the topology") from err


def _default(cls: type, name: str) -> Any:
    """A section's default, as its dataclass declares it (the one place it is spelled)."""
    for item in fields(cls):
        if item.name == name:
            if item.default is not MISSING:
                return item.default
            if item.default_factory is not MISSING:
                return item.default_factory()
    raise KeyError(f"{cls.__name__} has no default for {name}")


def _apply_overrides(reader: _Reader, data: dict[str, Any],
                     overrides: dict[str, Any]) -> None:
    """`--set a.b=c`: each dotted key replaces one value of the scenario's data."""
    for key, value in overrides.items():
        target = data
        parts = key.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise reader.fail(key, "--set reaches into something that is not a mapping")
        target[parts[-1]] = value


def _content(reader: _Reader, data: Any, topology: Topology) -> Content:
    section = reader.mapping(data, "content", {"titles", "title_s", "segment_s", "ladder",
                                               "audio_kbps", "uploads"})
    try:
        ladder = tuple(parse_rung(r, f"{reader.source}: content.ladder")
                       for r in section["ladder"]) if "ladder" in section else \
            _default(Content, "ladder")
    except LadderError as err:
        raise reader.fail("content.ladder", str(err)) from err
    uploads = tuple(_upload(reader, item, f"content.uploads[{i}]", topology, f"upload{i + 1}")
                    for i, item in enumerate(section.get("uploads") or []))

    def number(key: str, low: float, high: float | None = None, kind: type = float) -> Any:
        return reader.number(section, key, "content", _default(Content, key), low, high, kind)

    return Content(number("titles", 1, 10000, int), number("title_s", 1),
                   number("segment_s", 0.5, 30), ladder, number("audio_kbps", 0, 512, int),
                   uploads)


def _fill(reader: _Reader, data: Any) -> Fill:
    section = reader.mapping(data, "cdn.fill", {"start_s", "end_s", "rate_mbps", "capacity_mb"})

    def number(key: str, low: float) -> Any:
        return reader.number(section, key, "cdn.fill", _default(Fill, key), low)

    fill = Fill(number("start_s", 0), number("end_s", 0), number("rate_mbps", 0.1),
                number("capacity_mb", 0.1))
    if fill.end_s <= fill.start_s:
        raise reader.fail("cdn.fill.end_s", "the window ends before it starts")
    return fill


def _cdn(reader: _Reader, data: Any, clusters: dict[str, Any]) -> Cdn:
    section = reader.mapping(data, "cdn", {"mode", "cache_mb", "capacity_mbps", "threshold",
                                           "fill", "modes", "shed_above"})
    mode = reader.choice(section, "mode", "cdn", _default(Cdn, "mode"), MODES)
    modes = reader.mapping(section.get("modes"), "cdn.modes", set(clusters))
    for cluster in modes:
        reader.choice(modes, cluster, "cdn.modes", mode, MODES)
    fill = _fill(reader, section.get("fill")) if "push" in (mode, *modes.values()) else None

    def number(key: str, low: float, kind: type = float) -> Any:
        return reader.number(section, key, "cdn", _default(Cdn, key), low, kind=kind)

    return Cdn(mode, number("cache_mb", 1, int), number("capacity_mbps", 0.1),
               number("threshold", 0.01), fill, {str(k): str(v) for k, v in modes.items()},
               number("shed_above", 0.01))


def _resolvers(reader: _Reader, data: Any, topology: Topology) -> tuple[Resolver, ...]:
    """`dns.resolvers`: NAME → {kind, ecs, clients, fallback}. An ISP resolver serves the
    clients of its ISP that no public resolver claims; a public one serves those listed; a
    client may be claimed once. The fallback defaults to the client's ISP resolver for
    public resolvers, none for ISP ones."""
    section = reader.mapping(data, "dns.resolvers",
                             set(data) if isinstance(data, dict) else set())
    hosts = topology.by_role("resolver")
    clients = topology.by_role("client")
    parsed: list[dict[str, Any]] = []
    for name, spec in section.items():
        where = f"dns.resolvers.{name}"
        if name not in hosts:
            raise reader.fail(where, "not a resolver host of the topology",
                              f"resolvers: {', '.join(hosts) or 'none (add role: resolver)'}")
        item = reader.mapping(spec, where, {"kind", "ecs", "clients", "fallback"})
        kind = reader.choice(item, "kind", where, "isp", ("isp", "public"))
        listed = item.get("clients")
        if kind == "public" and not listed:
            raise reader.fail(f"{where}.clients", "a public resolver needs its clients",
                              f"e.g. clients: [{clients[0]}]")
        if listed is not None and (not isinstance(listed, list) or
                                   any(c not in clients for c in listed)):
            raise reader.fail(f"{where}.clients", f"{listed!r}: a list of client hosts",
                              f"clients: {', '.join(clients)}")
        if not isinstance(item.get("ecs", False), bool):
            raise reader.fail(f"{where}.ecs", "must be true or false")
        parsed.append({"name": name, "kind": kind, "ecs": item.get("ecs", False),
                       "clients": listed, "fallback": item.get("fallback")})
    claimed: dict[str, str] = {}
    for item in sorted(parsed, key=lambda i: i["clients"] is None):  # listed ones first
        if item["clients"] is None:
            isp = isp_of(topology, item["name"])
            item["clients"] = [c for c in clients if isp_of(topology, c) == isp
                               and c not in claimed]
        for client in item["clients"]:
            if claimed.setdefault(client, item["name"]) != item["name"]:
                raise reader.fail(f"dns.resolvers.{item['name']}.clients",
                                  f"{client} already uses {claimed[client]}",
                                  "give each client one resolver (and a fallback)")
    for item in parsed:
        if item["fallback"] is not None and (item["fallback"] not in section or
                                             item["fallback"] == item["name"]):
            raise reader.fail(f"dns.resolvers.{item['name']}.fallback",
                              f"{item['fallback']!r} is not one of the other resolvers",
                              f"use one of {', '.join(section)}")
    return tuple(Resolver(i["name"], i["kind"], i["ecs"], tuple(i["clients"]), i["fallback"])
                 for i in parsed)


def _nameservers(resolvers: tuple[Resolver, ...],
                 topology: Topology) -> dict[str, tuple[str, ...]]:
    """Each client's resolver, then its fallback: the one named, else for a public
    resolver's client the resolver of the client's own ISP, if it has one."""
    of_isp = {isp_of(topology, r.name): r.name for r in resolvers if r.kind == "isp"}
    lists = {}
    for resolver in resolvers:
        for client in resolver.clients:
            fallback = resolver.fallback or (of_isp.get(isp_of(topology, client))
                                             if resolver.kind == "public" else None)
            lists[client] = (resolver.name,) + ((fallback,) if fallback else ())
    return lists


def _dns(reader: _Reader, data: Any, topology: Topology) -> Dns:
    section = reader.mapping(data, "dns", {"policy", "ttl", "stale_after_s", "spill_gain",
                                           "spill_max_share", "resolvers"})

    def number(key: str, low: float, high: float | None = None, kind: type = float) -> Any:
        return reader.number(section, key, "dns", _default(Dns, key), low, high, kind)

    resolvers = _resolvers(reader, section.get("resolvers"), topology)
    return Dns(reader.choice(section, "policy", "dns", _default(Dns, "policy"), DNS_POLICIES),
               number("ttl", 0, 3600, int), number("stale_after_s", 1),
               number("spill_gain", 0), number("spill_max_share", 0, 1), resolvers,
               _nameservers(resolvers, topology))


def _probes(reader: _Reader, data: Any) -> Probes:
    section = reader.mapping(data, "probes", {"interval_s", "method"})
    return Probes(reader.number(section, "interval_s", "probes",
                                _default(Probes, "interval_s"), 0.2),
                  reader.choice(section, "method", "probes", _default(Probes, "method"),
                                PROBE_METHODS))


def _routing(reader: _Reader, data: Any) -> Routing:
    """`routing: dns`, `routing: steering` or `{mode: steering, steering_ttl_s: 5,
    cmsd: true}`."""
    if data is None:
        return Routing()
    if isinstance(data, str):
        data = {"mode": data}
    section = reader.mapping(data, "routing", {"mode", "steering_ttl_s", "cmsd",
                                               "withdraw_above", "hold_s"})
    mode = reader.choice(section, "mode", "routing", "dns", ROUTING_MODES)
    ttl = reader.number(section, "steering_ttl_s", "routing", 10, low=1, high=3600, kind=int)
    server_data = section.get("cmsd", False)
    if not isinstance(server_data, bool):
        raise reader.fail("routing.cmsd", f"{server_data!r} is not true or false",
                          "write cmsd: true to have edges send CMSD and players honour it")
    shed = {"withdraw_above", "hold_s"} & set(section)
    if shed and mode != "anycast":
        raise reader.fail(f"routing.{sorted(shed)[0]}", "only anycast withdraws announcements",
                          "use it with mode: anycast")
    above = None if section.get("withdraw_above") is None else reader.number(
        section, "withdraw_above", "routing", 0.9, low=0.05, high=10)
    hold = reader.number(section, "hold_s", "routing", 10.0, low=0, high=3600)
    return Routing(str(mode), int(ttl), server_data, above, float(hold))


def _controller(reader: _Reader, data: Any) -> str | None:
    if data not in (None, *CONTROLLERS):
        raise reader.fail("controller", f"{data!r} is not a controller",
                          f"{' or '.join(CONTROLLERS)} or null")
    return None if data is None else str(data)


def _abr_weights(reader: _Reader, data: Any) -> dict[str, float]:
    known = (*ABR_ALGORITHMS, BROWSER_ABR)
    if not isinstance(data, dict) or not data:
        raise reader.fail("workload.abr", f"{data!r}: weights per ABR algorithm",
                          f"e.g. {{bola: 1, mpc: 1}}; known: {', '.join(known)}")
    for name in data:
        if name not in known:
            raise reader.fail(f"workload.abr.{name}", "unknown ABR algorithm",
                              choices(str(name), known, "algorithms"))
    return {str(k): float(v) for k, v in data.items()}


def _abr_params(reader: _Reader, data: Any, weights: dict[str, float]) -> dict[str, Any]:
    params = reader.mapping(data, "workload.abr_params", set(weights))
    for algo, values in params.items():
        reader.mapping(values, f"workload.abr_params.{algo}", set(values or {}))
    return {str(k): dict(v or {}) for k, v in params.items()}


def _workload(reader: _Reader, data: Any, topology: Topology) -> Workload:
    section = reader.mapping(data, "workload", {"viewers", "arrival", "zipf", "segments",
                                                "max_buffer_s", "abr", "abr_assign",
                                                "abr_params", "closed_loop"})
    if not isinstance(section.get("closed_loop", False), bool):
        raise reader.fail("workload.closed_loop", "must be true or false")
    arrival = reader.mapping(section.get("arrival"), "workload.arrival",
                             {"process", "start_s", "rate_per_s", "window_s"})

    def number(part: dict[str, Any], where: str, key: str, low: float,
               kind: type = float) -> Any:
        return reader.number(part, key, where, _default(Workload, key), low, kind=kind)

    weights = _abr_weights(reader, section.get("abr", _default(Workload, "abr")))
    return Workload(
        _viewers(reader, section.get("viewers"), topology),
        reader.choice(arrival, "process", "workload.arrival", _default(Workload, "process"),
                      ARRIVALS),
        number(arrival, "workload.arrival", "start_s", 0),
        number(arrival, "workload.arrival", "rate_per_s", 0.001),
        number(arrival, "workload.arrival", "window_s", 0),
        number(section, "workload", "zipf", 0),
        number(section, "workload", "segments", 1, int),
        number(section, "workload", "max_buffer_s", 2),
        weights,
        reader.choice(section, "abr_assign", "workload", _default(Workload, "abr_assign"),
                      ABR_ASSIGNMENTS),
        _abr_params(reader, section.get("abr_params"), weights),
        section.get("closed_loop", False))


def _timeline(reader: _Reader, data: Any, topology: Topology, base: Path) -> list[Event]:
    events = data or []
    if not isinstance(events, list):
        raise reader.fail("timeline", "must be a list of events")
    clusters = topology.clusters()
    return sorted((_event(reader, i, e, topology, clusters, base)
                   for i, e in enumerate(events)), key=lambda e: e.at)


def parse_scenario(data: Any, source: str, base: Path | None = None,
                   overrides: dict[str, Any] | None = None) -> Scenario:
    """A `Scenario` from YAML data; every section is parsed by its own reader above."""
    reader = _Reader(source)
    base = base or Path.cwd()
    data = copy.deepcopy(data)
    if not isinstance(data, dict):
        raise reader.fail("", "a scenario must be a YAML mapping", "start with name: and "
                          "topology:")
    _apply_overrides(reader, data, overrides or {})
    top = reader.mapping(data, "", {"name", "description", "topology", "seed", "duration_s",
                                    "content", "cdn", "dns", "probes", "controller",
                                    "workload", "timeline", "cluster", "supervise",
                                    "chaos", "routing", "variants", "variant"})
    topology = _topology(reader, top.get("topology"), base)
    if top.get("cluster") is not None:  # the scenario's machines over the topology's
        from cdnlab.machines.spec import parse_section

        topology.machines = parse_section(top["cluster"], source, set(topology.nodes))
    if not topology.clusters():
        raise reader.fail("topology", "has no edge cluster", "add a node with role: edge")
    scenario = Scenario(
        name=str(top.get("name") or Path(source).stem), source=source, topology=topology,
        seed=reader.number(top, "seed", "", DEFAULT_SEED, kind=int),
        duration_s=reader.number(top, "duration_s", "", DEFAULT_DURATION_S, 1),
        content=_content(reader, top.get("content"), topology),
        cdn=_cdn(reader, top.get("cdn"), topology.clusters()),
        dns=_dns(reader, top.get("dns"), topology), probes=_probes(reader, top.get("probes")),
        controller=_controller(reader, top.get("controller")),
        workload=_workload(reader, top.get("workload"), topology),
        timeline=_timeline(reader, top.get("timeline"), topology, base), raw=data,
        routing=_routing(reader, top.get("routing")))
    if scenario.routing.anycast and topology.anycast is None:
        raise reader.fail("routing", f"anycast needs clusters that announce an anycast "
                          f"prefix, and topology {topology.name} has none",
                          "use a topology with `routing: bgp` and `anycast:` (e.g. "
                          "anycast_transit)")
    scenario.supervise = _supervise(reader, top.get("supervise"), scenario)
    _chaos(reader, top.get("chaos"), scenario)
    _programs_named_exist(reader, scenario)
    _browsers_have_real_titles(reader, scenario)
    _arrivals_within_duration(reader, scenario)
    _events_within_duration(reader, scenario)
    scenario.variants = _variants(reader, top.get("variants"), data, source, base)
    return scenario


def _variants(reader: _Reader, data: Any, scenario_data: dict[str, Any], source: str,
              base: Path) -> dict[str, dict[str, Any]]:
    """`variants: {NAME: {dotted.key: value, …}}`: each must make a valid scenario (checked
    here, so a run never fails on its third variant)."""
    if data is None:
        return {}
    if not isinstance(data, dict) or not data:
        raise reader.fail("variants", "expected a mapping of variant names to overrides",
                          "e.g. variants: {dns: {}, steering: {routing: steering}}")
    found = {}
    for name, overrides in data.items():
        if not isinstance(overrides, dict) or not all(isinstance(k, str) for k in overrides):
            raise reader.fail(f"variants.{name}", "expected a mapping of dotted keys to "
                              "values, as --set takes them", "e.g. {dns.ttl: 10}")
        try:
            parse_scenario(scenario_data, source, base, variant_overrides(name, overrides))
        except SpecError as err:
            raise reader.fail(f"variants.{name}", str(err)) from err
        found[str(name)] = dict(overrides)
    return found


def variant_overrides(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides that make variant `name` of a scenario: its own, no variants of its
    own, and its name recorded (`variant`, in run.json)."""
    return {**overrides, "variants": None, "variant": name}


def _chaos(reader: _Reader, data: Any, scenario: Scenario) -> None:
    """`chaos: {from_s, to_s}`: a fault of each kind at seeded times, added to the timeline
    (`cdnlab.scenario.chaos`)."""
    from cdnlab.scenario.chaos import chaos_events

    if data is None:
        return
    section = reader.mapping(data, "chaos", {"from_s", "to_s"})
    from_s = reader.number(section, "from_s", "chaos", 3.0, low=0)
    to_s = reader.number(section, "to_s", "chaos", scenario.duration_s - 4, low=from_s)
    if to_s + 4 > scenario.duration_s:
        raise reader.fail("chaos.to_s", f"faults until {to_s:g} s end up to 4 s later, past "
                          f"duration_s {scenario.duration_s:g}",
                          f"lower to_s to {scenario.duration_s - 4:g} or raise duration_s")
    scenario.timeline = sorted(
        scenario.timeline + [Event(at, kind, args) for at, kind, args in chaos_events(
            scenario.seed, from_s, to_s, scenario.program_names(),
            scenario.pull_edges())], key=lambda e: e.at)


def _supervise(reader: _Reader, data: Any, scenario: Scenario) -> tuple[str, ...]:
    """`supervise: all`, or a list of program names: restarted whenever they exit unasked
    (see `cdnlab.scenario.watch`)."""
    if data is None or data is False:
        return ()
    known = scenario.program_names()
    if data == "all" or data is True:
        return tuple(known)
    if isinstance(data, str):
        data = [data]
    if not isinstance(data, list):
        raise reader.fail("supervise", "must be `all` or a list of program names",
                          f"known programs: {', '.join(known)}")
    for name in data:
        if name not in known:
            raise reader.fail("supervise", f"unknown program {name!r}",
                              choices(name, known, "programs"))
    return tuple(str(name) for name in data)


def _programs_named_exist(reader: _Reader, scenario: Scenario) -> None:
    """A fault event naming a program the run does not start is refused, with the nearest
    name."""
    known = scenario.program_names()
    for n, event in enumerate(scenario.timeline):
        if event.kind in PROGRAM_EVENTS and event.args["program"] not in known:
            name = event.args["program"]
            raise reader.fail(f"timeline[{n}].{event.kind}", f"unknown program {name!r}",
                              choices(name, known, "programs"))
    clusters = scenario.topology.clusters()
    pulled = scenario.pull_edges()
    for n, event in enumerate(scenario.timeline):
        if event.kind == "fill_cache" and event.args["edge"] not in pulled:
            name = event.args["edge"]
            pushed = any(name in servers for servers in clusters.values())
            raise reader.fail(f"timeline[{n}].fill_cache",
                              f"{name!r} is a push edge: it serves what the fill agent "
                              "placed, it has no cache to fill" if pushed else
                              f"unknown edge server {name!r}",
                              choices(name, pulled, "pull edge servers"))


def _browsers_have_real_titles(reader: _Reader, scenario: Scenario) -> None:
    """Browser viewers decode what they fetch: they play the uploaded (encoded) titles, never
    the synthetic ones, one session each."""
    work = scenario.workload
    if not work.abr.get(BROWSER_ABR):
        return
    if not scenario.content.uploads:
        raise reader.fail("workload.abr.dashjs", "browser viewers need real encoded titles",
                          "add content.uploads (synthetic titles hold no video a browser "
                          "can decode)")
    if work.closed_loop:
        raise reader.fail("workload.closed_loop", "browser viewers play one session each",
                          "drop dashjs from workload.abr or set closed_loop: false")


def _events_within_duration(reader: _Reader, scenario: Scenario) -> None:
    """An event after `duration_s` would wait for a second the run may never reach (it ends
    when the last session does): refused, naming the duration that would hold it."""
    for n, event in enumerate(scenario.timeline):
        if event.at > scenario.duration_s:
            raise reader.fail(f"timeline[{n}].at", f"{event.kind} at {event.at:g} s is after "
                              f"duration_s {scenario.duration_s:g}",
                              f"raise duration_s to at least {event.at:g} or move the event")


def _arrivals_within_duration(reader: _Reader, scenario: Scenario) -> None:
    """`duration_s` is the arrival window: the seed's plan must start every session in it
    (the plan is deterministic, so this is exact, not a guess)."""
    from cdnlab.scenario.workload import plan_sessions

    work = scenario.workload
    if work.process == "uniform" and work.start_s + work.window_s > scenario.duration_s:
        raise reader.fail("workload.arrival.window_s",
                          f"arrivals from {work.start_s:g} s over {work.window_s:g} s end "
                          f"past duration_s {scenario.duration_s:g}",
                          "shorten the window or raise duration_s")
    starts = [s["start_s"] for plan in plan_sessions(scenario).values() for s in plan]
    if starts and max(starts) > scenario.duration_s:
        count = len(starts)
        needed = count / max(scenario.duration_s - work.start_s, 1e-9)
        raise reader.fail("workload.arrival.rate_per_s",
                          f"{count} viewers at {work.rate_per_s:g}/s arrive until "
                          f"{max(starts):.0f} s, past duration_s {scenario.duration_s:g}",
                          f"raise rate_per_s to about {needed * 1.3:.2g} or duration_s")


def resolve_scenario(ref: str | Path) -> Path:
    path = Path(ref)
    if path.is_file():
        return path
    shipped = SCENARIOS_DIR / f"{ref}.yaml"
    if shipped.is_file():
        return shipped
    raise SpecError(str(ref), "", "no such scenario file or shipped scenario",
                    choices(ref, [p.stem for p in SCENARIOS_DIR.glob("*.yaml")],
                            "shipped scenarios"))


def load_scenario(ref: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    path = resolve_scenario(ref)
    return parse_scenario(read_yaml(path), str(path), path.parent, overrides)
