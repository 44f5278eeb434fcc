"""`cdnlab run`: a scenario replayed on a real network, start to finish.

    network   Emulation of the topology (links the timeline reshapes are boxed; the
              controller if asked)
    content   synthetic titles in the origin's store
    services  origin; edge servers (pull, or push with the fill agent in its window);
              the DNS redirector; one probe per cluster (RTT, and load from its edge);
              the recursive resolvers the scenario names (unbound), each client's
              resolv.conf listing its own; each checked healthy before the next
    warm-up   until the redirector holds an RTT for every cluster and client network
    workload  player processes per client host, sessions from the plan; the timeline
              thread applies events (faults on named programs among them); a health watch
              marks a cluster down in DNS when its servers stop (as a CDN's monitoring
              does), and up again
    programs  from the network's start to the results, every exit of a program the run
              started is recorded as it happens, and `supervise` restarts
              (`cdnlab.scenario.watch`)
    monitor   from the network's start to the results, the emulator's invariants
              (CPU, timer lateness, the run's own CPU share) every second
              (`cdnlab.measure.monitor`); the delay processes log their own lateness
    results   fidelity (RTT) measured before teardown; events and logs kept in the
              bundle; summary, plots and report written from them

Ctrl-C, SIGTERM or a failure stop everything cleanly and still write what there is.
Scenario second 0 is when the workload starts; `scenario_epoch` in run.json says when.
"""

from __future__ import annotations

import json
import platform
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from cdnlab.errors import CdnlabError
from cdnlab.measure import fidelity
from cdnlab.measure.counters import LinkCounters
from cdnlab.measure.monitor import RunMonitor, queue_targets
from cdnlab.net.emulation import Emulation
from cdnlab.net.shaping.base import run_in
from cdnlab.scenario.health import HealthWatch
from cdnlab.scenario.spec import PROGRAM_EVENTS, Scenario, Upload, isp_of
from cdnlab.scenario.timeline import Timeline
from cdnlab.scenario.watch import ProgramWatch
from cdnlab.scenario.workload import plan_sessions
from cdnlab.services.base import NodeProgram, ServiceError, run_program
from cdnlab.services.client import BrowserService, ClientService, PlayerProgram
from cdnlab.services.dns import DnsService, client_networks
from cdnlab.services.edge import EdgeService
from cdnlab.services.fill import FillService
from cdnlab.services.origin import OriginService
from cdnlab.services.probe import ProbeService
from cdnlab.services.resolver import ResolverService, write_resolv_conf
from nodes.common.conventions import (
    ANYCAST,
    BROWSER_ABR,
    HTTP_PORT,
    SERVICE,
    SERVICE_LABEL,
    STEERED_MPD,
    STEERING_PORT,
    ZONE,
    origin_fault_flag,
)
from nodes.common.events import EventLog
from nodes.common.records import record_name

# A bound on waiting for the first RTT of every (client network, cluster) pair, not a
# pause: a run goes on as soon as they are in (a few seconds here; slower on the QEMU
# tier's emulated CPU, where every process starts at a tenth of the speed).
WARM_UP_LIMIT_S = 90.0
ORIGIN_HOST = "origin"
DNS_HOST = "dns"  # DnsService's host


@dataclass
class Watchers:
    """What runs beside the workload and is stopped with it."""
    fill: FillService | None
    counters: LinkCounters
    health: HealthWatch


def results_dir(scenario: Scenario, out: Path | None) -> Path:
    """The bundle's directory, absolute: node programs (nginx's -p and -c) are given paths
    under it and resolve relative ones from their own working directory."""
    if out is None:
        out = Path("results") / f"{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return out.resolve()


class Run:
    def __init__(self, scenario: Scenario, out: Path | None = None,
                 tty: bool | None = None, cpu_awake: str = "auto",
                 shaping: str = "auto") -> None:
        self.scenario = scenario
        self.cpu_awake = cpu_awake
        self.shaping = shaping
        self.bundle = results_dir(scenario, out)
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.phase = "starting"
        self.players: list[PlayerProgram] = []
        self.edges: dict[str, list[EdgeService]] = {}
        self.resolvers: dict[str, ResolverService] = {}
        self.interrupted: str | None = None
        self.fault_timers: list[threading.Timer] = []  # the ends of faults under way

    def say(self, text: str) -> None:
        print(f"[{self.scenario.name}] {text}", flush=True)

    # -- the run -----------------------------------------------------------------------------
    def execute(self) -> Path:
        scenario = self.scenario
        if self.bundle.exists() and any(self.bundle.iterdir()):
            raise CdnlabError(f"{self.bundle} exists and is not empty: choose another --out")
        self.bundle.mkdir(parents=True, exist_ok=True)
        run_dir = self.bundle / "run"
        run_dir.mkdir()
        started = time.time()
        meta: dict[str, Any] = {"scenario": scenario.raw, "name": scenario.name,
                                "source": scenario.source, "seed": scenario.seed,
                                "started": started, "isp_of": {
                                    c: isp_of(scenario.topology, c)
                                    for c in scenario.topology.by_role("client")}}
        try:
            with Emulation(scenario.topology, shaping=self.shaping, run_dir=run_dir,
                           seed=scenario.seed,
                           dynamic_links=scenario.dynamic_links(),
                           controller=scenario.controller, cpu_awake=self.cpu_awake,
                           machines=scenario.topology.machines) as emu:
                meta |= {"shaping": emu.shaping, "datapath": emu.datapath, "epoch": emu.t0,
                         "cpu_awake": emu.awake.describe(), "autogroups": emu.autogroups,
                         "route_differences": emu.route_differences,
                         "bgp": emu.bgp.describe() if emu.bgp is not None else None,
                         "cluster_of_ip": {emu.ip(s): c for c, servers in
                                           scenario.topology.clusters().items()
                                           for s in servers},
                         "modes": {c: scenario.cdn.mode_of(c)
                                   for c in scenario.topology.clusters()},
                         "placement": emu.placement.describe() | {
                             "tunnels": emu.tunnels} if emu.placement else None}
                try:
                    self._run(emu, meta)
                except KeyboardInterrupt:
                    self.interrupted = "interrupted"
                    self.say("interrupted: stopping and writing what there is")
                finally:
                    self._stop_players()
                    meta["cpu_awake"] = emu.awake.describe()  # `watch` may have changed it
        finally:
            meta |= self._environment()
            meta["interrupted"] = self.interrupted
            meta["ended"] = time.time()
            self._keep_logs(run_dir)
            (self.bundle / "run.json").write_text(json.dumps(meta, indent=1, default=str))
        return self.bundle

    def _run(self, emu: Emulation, meta: dict[str, Any]) -> None:
        """The stages in order; each is one method below."""
        log = EventLog(Path(emu.run_dir) / "events" / "engine.jsonl", "engine", emu.t0)
        self.say(f"network up: {self.scenario.topology.name} "
                 f"({fidelity.setup_text(emu.shaping, emu.datapath, emu.awake.describe())})")
        if emu.placement is not None:
            self.say(f"placement on {len(emu.placement.machines)} machines "
                     "(Mininet Cluster Edition):")
            for line in emu.placement.lines():
                self.say(line)
        cgroup = emu.ledger.cgroup if emu.ledger is not None else None
        monitor = RunMonitor(Path(emu.run_dir) / "events" / "fidelity.jsonl", emu.t0,
                             cgroup.path if cgroup is not None else None, emu.awake.pinned,
                             ledger=emu.ledger, queues=queue_targets(emu.links))
        monitors = [monitor] + [  # a split run's other machines, each sampled there
            RunMonitor(Path(emu.run_dir) / "events" / f"fidelity.{server}.jsonl", emu.t0,
                       Path(emu.machines.cgroups[server]) if emu.machines.cgroups.get(server)
                       else None, ledger=emu.ledger,
                       queues=queue_targets(emu.links, server), machine=server,
                       machines=emu.machines)
            for server in (emu.machines.shells if emu.machines is not None else ())]
        for each in monitors:
            each.start()
        watch = ProgramWatch(emu, EventLog(Path(emu.run_dir) / "events" / "programs.jsonl",
                                           "watch", emu.t0), frozenset(self.scenario.supervise))
        watch.start()
        monitors_and_watch: list[Any] = [*monitors, watch]
        try:
            store = self._content(emu)
            origin = self._origin(emu, store, log)
            self._edges(emu, origin)
            dns = self._dns(emu)
            self._resolvers(emu, dns, log)
            self._warm_up(emu, dns)
            epoch = self._start_clock(emu, meta, log)
            watchers = self._watchers(emu, dns, store, epoch, log)
            timeline = self._workload(emu, dns, origin, epoch, log)
            try:
                self._wait(emu, timeline, epoch, watchers)
            finally:
                self._results(emu, meta, timeline, watchers, log, monitors_and_watch)
        finally:
            for each in monitors_and_watch:
                each.stop()
            watch.log.close()

    # -- the stages --------------------------------------------------------------------------
    def _content(self, emu: Emulation) -> Path:
        """Synthetic titles, made by the origin program in its own store."""
        self.phase = "content"
        content = self.scenario.content
        store = Path(emu.run_dir) / "store"
        spec = self._title_spec(emu, "synth")
        steering = ["--steering", json.dumps(self._steering(emu))] \
            if self.scenario.routing.steering else []
        run_program(emu, ORIGIN_HOST, "nodes.origin", [
            "synth", "--store", str(store), "--titles", str(content.titles),
            "--duration", f"{content.title_s:g}", "--spec", str(spec),
            "--seed", str(self.scenario.seed), *steering], "content synthesis")
        return store

    def _steering(self, emu: Emulation) -> dict[str, Any]:
        """What the store writes into every steered MPD: the redirector's steering server
        and one pathway per cluster, named by its `<cluster>.cluster.<zone>` record."""
        clusters = list(self.scenario.topology.clusters())
        return {"server_url": f"http://{emu.ip(DNS_HOST)}:{STEERING_PORT}/steer/"
                              f"{SERVICE_LABEL}",
                "pathways": {c: record_name("cluster", ZONE, c).rstrip(".") for c in clusters},
                "default": clusters[0]}

    def _origin(self, emu: Emulation, store: Path, log: EventLog) -> OriginService:
        """The origin serving the store; then the content section's uploads, through it."""
        self.phase = "services"
        origin = OriginService(emu, store, slow_kbps=self.scenario.origin_slow_rates())
        origin.start()
        if self.scenario.content.uploads:
            self.phase = "uploads"
            self._uploads(emu, origin, log)
        return origin

    def _edges(self, emu: Emulation, origin: OriginService) -> None:
        """Every server of every cluster, in the cluster's mode."""
        self.phase = "services"
        cdn = self.scenario.cdn
        clusters = self.scenario.topology.clusters()
        for cluster, servers in clusters.items():
            redirect = self._overflow_target(emu, cluster, clusters, origin)
            self.edges[cluster] = [EdgeService(
                emu, server, cdn.mode_of(cluster), parent=f"{origin.address}:{HTTP_PORT}",
                redirect_to=redirect, cache_size_mb=cdn.cache_mb,
                capacity_mbps=cdn.capacity_mbps, threshold=cdn.shed_above,
                cmsd=self.scenario.routing.cmsd, duress_above=cdn.threshold,
                window_s=max(self.scenario.content.segment_s, 1.0),
                siblings=tuple(s for s in servers if s != server))
                for server in servers]
            for edge in self.edges[cluster]:
                if edge.host in self.scenario.filled_edges():
                    edge.own_cache_filesystem(cdn.cache_mb)
                edge.start()

    def _dns(self, emu: Emulation) -> DnsService:
        """The redirector, and one probe per cluster feeding it RTTs and load."""
        scenario = self.scenario
        clusters = scenario.topology.clusters()
        anycast = scenario.topology.anycast if scenario.routing.anycast else None
        dns = DnsService(emu, policy=ANYCAST if anycast else scenario.dns.policy,
                         ttl=scenario.dns.ttl,
                         stale_after_s=scenario.dns.stale_after_s, extra={
                             "spill": {"gain": scenario.dns.spill_gain,
                                       "max_share": scenario.dns.spill_max_share},
                             "clusters": {c: {"addresses": [emu.ip(s) for s in servers],
                                              "threshold": scenario.cdn.threshold}
                                          for c, servers in clusters.items()}
                             | ({ANYCAST: {"addresses": [anycast.address]}} if anycast
                                else {}),
                             **({"steering": {"port": STEERING_PORT,
                                              "ttl": scenario.routing.steering_ttl_s,
                                              "pathways": list(clusters)}}
                                if scenario.routing.steering else {})})
        dns.start()
        for cluster in clusters:
            ProbeService(emu, dns, cluster, scenario.probes.interval_s, scenario.probes.method,
                         load=True).start()
        return dns

    def _resolvers(self, emu: Emulation, dns: DnsService, log: EventLog) -> None:
        """The scenario's recursive resolvers, each answering before the next starts, and
        each client's resolver configuration listing its own."""
        dns_settings = self.scenario.dns
        for resolver in dns_settings.resolvers:
            service = ResolverService(emu, resolver.name, emu.ip(dns.host), resolver.ecs)
            service.start()
            service.wait_ready()
            self.resolvers[resolver.name] = service
        for client, names in dns_settings.nameservers.items():
            write_resolv_conf(self._resolv_conf(emu, client), [emu.ip(n) for n in names])
        if dns_settings.resolvers:
            log.emit("resolvers", resolvers={r.name: {
                "kind": r.kind, "ecs": r.ecs, "address": emu.ip(r.name),
                "clients": list(r.clients), "fallback": r.fallback}
                for r in dns_settings.resolvers}, nameservers={
                c: list(n) for c, n in dns_settings.nameservers.items()})

    @staticmethod
    def _resolv_conf(emu: Emulation, host: str) -> Path:
        return Path(emu.run_dir) / "work" / host / "resolv.conf"

    def _resolver(self, name: str, up: bool) -> None:
        """A timeline `resolver_down` / `resolver_up`: stop it, or start it afresh."""
        if not up:
            self.resolvers[name].stop()
            return
        fresh = self.resolvers[name].again()
        fresh.start()
        fresh.wait_ready()
        self.resolvers[name] = fresh

    def _start_clock(self, emu: Emulation, meta: dict[str, Any], log: EventLog) -> float:
        """Scenario second 0: now. The true RTT matrix is recorded at once."""
        epoch = time.time()
        meta["scenario_epoch"] = epoch
        log.emit("scenario_start", epoch=epoch)
        self._record_rtts(emu, log)
        return epoch

    def _watchers(self, emu: Emulation, dns: DnsService, store: Path, epoch: float,
                  log: EventLog) -> Watchers:
        """What runs beside the workload: the push fill in its window, the link counters,
        and the health watch."""
        cdn = self.scenario.cdn
        fill = None
        if cdn.any_push and cdn.fill is not None:
            offset = epoch - emu.t0
            pushed = [e for c, es in self.edges.items() if cdn.mode_of(c) == "push"
                      for e in es]
            fill = FillService(emu, store, pushed, self.scenario.content.title_list(),
                               cdn.fill.start_s + offset, cdn.fill.end_s + offset,
                               cdn.fill.rate_mbps, cdn.fill.capacity_mb)
            fill.start()
        counters = LinkCounters(emu, log)
        counters.start()
        routing = self.scenario.routing
        health = HealthWatch(dns, self.edges, log, emu.bgp if routing.anycast else None,
                             routing.withdraw_above, routing.hold_s)
        health.start()
        return Watchers(fill, counters, health)

    def _workload(self, emu: Emulation, dns: DnsService, origin: OriginService, epoch: float,
                  log: EventLog) -> Timeline:
        """Player processes for every planned session, and the timeline's thread."""
        self.phase = "workload"
        plans = plan_sessions(self.scenario)
        timeline = Timeline(self.scenario.timeline, emu, epoch, log,
                            {"cluster_down": lambda c: self._cluster(emu, dns, c, False),
                             "cluster_up": lambda c: self._cluster(emu, dns, c, True),
                             "cluster_capacity": lambda a: self._capacity(emu, a),
                             "surge": lambda a: self._surge(emu, dns, a),
                             "resolver_down": lambda r: self._resolver(r, False),
                             "resolver_up": lambda r: self._resolver(r, True),
                             "upload": lambda u: self._uploads(emu, origin, log, (u,)),
                             **{kind: lambda a, k=kind: self._program_fault(emu, k, a)
                                for kind in PROGRAM_EVENTS},
                             "origin_fault": lambda a: self._origin_fault(origin, a, log),
                             "dns_drop": lambda a: self._dns_drop(emu, dns, a, log),
                             "fill_cache": lambda a: self._fill_cache(a, log)},
                            lambda: self._record_rtts(emu, log))
        timeline.start()  # first: an event at second 0 must not wait for players to start
        for host, sessions in plans.items():
            self._players(emu, dns, host, sessions, "")
        self.say(f"workload: {sum(len(p) for p in plans.values())} viewers on {len(plans)} "
                 f"hosts, {len(self.scenario.timeline)} timeline events")
        return timeline

    def _wait(self, emu: Emulation, timeline: Timeline, epoch: float,
              watchers: Watchers) -> None:
        """Until every player is done and every event applied, or the bound on a run."""
        scenario = self.scenario
        deadline = epoch + scenario.duration_s + self._session_bound_s()
        last_line = 0.0
        while time.time() < deadline:
            if all(not p.running for p in self.players) and not timeline.is_alive():
                return
            if emu.controller is not None:
                emu.controller.check()
            if time.time() - last_line > (2.0 if self.tty else 10.0):
                last_line = time.time()
                running = sum(1 for p in self.players if p.running)
                self.say(f"t={time.time() - epoch:6.1f} s  player processes running "
                         f"{running}/{len(self.players)}  {watchers.counters.line()}")
            time.sleep(0.5)
        self.interrupted = "timed out"

    def _results(self, emu: Emulation, meta: dict[str, Any], timeline: Timeline,
                 watchers: Watchers, log: EventLog, monitors: list[Any]) -> None:
        """Everything stopped; the monitors' and the program watch's watch ended; fidelity
        (RTT) measured on the network as it ends (a pair that missed, once more)."""
        timeline.stopping.set()
        for timer in self.fault_timers:
            timer.cancel()
        for monitor in monitors:
            monitor.stop()
        watchers.health.stopping.set()
        self._stop_players()
        if watchers.fill is not None:
            watchers.fill.stop()
        watchers.counters.stop()
        self.phase = "results"
        report = fidelity.end_check(emu)
        (Path(emu.run_dir) / "events" / "fidelity.json").write_text(
            json.dumps(report.to_dict(), indent=1))
        meta["timeline_errors"] = timeline.errors
        log.close()

    # -- pieces ------------------------------------------------------------------------------
    def _overflow_target(self, emu: Emulation, cluster: str, clusters: dict[str, list[str]],
                         origin: OriginService) -> str:
        """Where an overloaded (or, in push mode, missing) request goes: the nearest other
        cluster in pull mode, the origin in push mode."""
        others = [c for c in clusters if c != cluster]
        if self.scenario.cdn.mode_of(cluster) == "push" or not others:
            return origin.url
        first = clusters[cluster][0]
        nearest = min(others, key=lambda c: emu.paths.expected_rtt_ms(first, clusters[c][0]))
        return f"http://{emu.ip(clusters[nearest][0])}"

    def _title_spec(self, emu: Emulation, name: str) -> Path:
        """The scenario's ladder, segment length and audio as a title spec file for the
        origin."""
        content = self.scenario.content
        path = Path(emu.run_dir) / "masters" / f"{name}-spec.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump({"segment_s": content.segment_s,
                                        "audio_kbps": content.audio_kbps,
                                        "profiles": {"avc": [str(r) for r in content.ladder]}}))
        return path

    def _uploads(self, emu: Emulation, origin: OriginService, log: EventLog,
                 uploads: tuple[Upload, ...] | None = None) -> None:
        """Each master is generated on its uploader host, then uploaded over HTTP to the
        origin's ingest endpoint, which transcodes and publishes it (the content section's
        before viewing starts; a timeline `upload` at its second)."""
        spec = self._title_spec(emu, "upload")
        for upload in self.scenario.content.uploads if uploads is None else uploads:
            master = spec.parent / f"{upload.title}.mp4"
            started = time.monotonic()
            run_program(emu, upload.uploader, "nodes.origin", [
                "testsrc", str(master), "--seconds", f"{upload.seconds:g}",
                "--size", upload.size], f"test master of {upload.title}")
            run_program(emu, upload.uploader, "nodes.uploader", [
                str(master), "--to", origin.ingest_url, "--title", upload.title,
                "--spec", str(spec)], f"upload of {upload.title}")
            log.emit("upload_done", title=upload.title, uploader=upload.uploader,
                     bytes=master.stat().st_size,
                     seconds=round(time.monotonic() - started, 3))
            self.say(f"uploaded {upload.title} from {upload.uploader}: transcoded and "
                     f"published in {time.monotonic() - started:.1f} s")

    def _warm_up(self, emu: Emulation, dns: DnsService) -> None:
        networks = client_networks(emu)
        clusters = emu.topology.clusters()
        deadline = time.monotonic() + WARM_UP_LIMIT_S
        missing: list[str] = []
        while time.monotonic() < deadline:
            _status, state = dns.rest("GET", "/state")
            table = state.get("rtt_ms", {})
            missing = [f"{net}→{cluster}" for net in networks for cluster in clusters
                       if cluster not in table.get(net, {})]
            if not missing:
                return
            time.sleep(0.5)
        raise CdnlabError(f"the probes did not report every cluster's RTT within "
                          f"{WARM_UP_LIMIT_S:.0f} s; missing: {', '.join(missing)}")

    def _record_rtts(self, emu: Emulation, log: EventLog) -> None:
        clusters = emu.topology.clusters()
        matrix = {client: {c: round(emu.paths.expected_rtt_ms(servers[0], client), 3)
                           for c, servers in clusters.items()}
                  for client in emu.topology.by_role("client")}
        log.emit("rtt_matrix", matrix=matrix,
                 clients={emu.ip(c): c for c in emu.topology.by_role("client")})

    def _players(self, emu: Emulation, dns: DnsService, host: str,
                 sessions: list[dict[str, Any]], tag: str) -> None:
        """The host's Python players in one process, its browser viewers in another."""
        with_resolvers = host in self.scenario.dns.nameservers
        resolv_conf = self._resolv_conf(emu, host) if with_resolvers else None
        routing = self.scenario.routing
        sessions = [s | ({"manifest": STEERED_MPD} if routing.steering else {})
                    | ({"cmsd": True} if routing.cmsd else {}) for s in sessions]
        python = [s for s in sessions if s["algo"] != BROWSER_ABR]
        browsers = [s for s in sessions if s["algo"] == BROWSER_ABR]
        started: list[PlayerProgram] = []
        if python:
            started.append(ClientService(emu, host, [emu.ip(dns.host)], SERVICE, python, tag,
                                         resolv_conf))
        if browsers:
            # a browser reads the host's resolver configuration: its resolvers, else the
            # redirector itself
            if not with_resolvers:
                write_resolv_conf(self._resolv_conf(emu, host), [emu.ip(dns.host)])
            content = self.scenario.content
            for session in browsers:
                session |= {"segment_s": content.segment_s,
                            "timeout_s": self._session_bound_s()}
            started.append(BrowserService(emu, host, SERVICE, browsers,
                                          self._resolv_conf(emu, host), tag))
        for players in started:
            players.start()
            self.players.append(players)

    def _session_bound_s(self) -> float:
        """The longest a session may take: four times its media, and a minute."""
        scenario = self.scenario
        return scenario.workload.segments * scenario.content.segment_s * 4 + 60

    def _surge(self, emu: Emulation, dns: DnsService, args: dict[str, Any]) -> None:
        tag = f"-surge{sum(1 for p in self.players if '-surge' in p.name) + 1}"
        plans = plan_sessions(self.scenario, args["viewers"], args["segments"], tag.strip("-"))
        for host, sessions in plans.items():
            self._players(emu, dns, host, sessions, tag)

    def _cluster(self, emu: Emulation, dns: DnsService, cluster: str, up: bool) -> None:
        servers = self.edges[cluster]
        if not up:
            for server in servers:
                server.stop()
            return
        restarted = []
        for server in servers:
            fresh = server.again()
            fresh.start()
            restarted.append(fresh)
        self.edges[cluster] = restarted

    def _capacity(self, emu: Emulation, args: dict[str, Any]) -> None:
        """A cluster's capacity cut (or raised) to `mbps`: the rate of its uplink toward
        the network, and the capacity its servers' load monitors divide by (shared
        equally), so utilisation, DNS's load, CMSD's duress and the overload redirect all
        see the cut."""
        cluster, mbps = args["cluster"], float(args["mbps"])
        uplink = emu.topology.uplinks(cluster)[0]
        direction = "a_to_b" if uplink.a == cluster else "b_to_a"
        link = emu.link(uplink.a, uplink.b)
        emu.changes.set_shape(uplink.a, uplink.b, direction,
                              link.shapes[direction].with_changes(rate=mbps))
        for server in self.edges[cluster]:
            server.set_capacity(mbps / len(self.edges[cluster]))

    def _program_fault(self, emu: Emulation, kind: str, args: dict[str, Any]) -> None:
        """A timeline fault on the node program named (its latest start, for one a
        cluster_up or a restart started again)."""
        name = args["program"]
        program = next((p for p in reversed(emu.services)
                        if isinstance(p, NodeProgram) and p.name == name), None)
        if program is None:
            raise ServiceError(f"no program {name!r} has started")
        if kind == "kill_program":
            program.send(signal.Signals[f"SIG{args.get('signal', 'KILL')}"], kind)
        elif kind == "stop_program":
            program.send(signal.SIGTERM, kind)
        elif kind == "pause_program":
            program.send(signal.SIGSTOP, kind)
        elif kind == "resume_program":
            program.resume()
            program.injected = None
        else:  # restart_program: stopped first if it still runs
            program.stop()
            program.restart()

    def _origin_fault(self, origin: OriginService, args: dict[str, Any], log: EventLog) -> None:
        """The origin answers an error status (or slowly) for `seconds`: its flag file
        exists that long (nodes/common/conventions.py)."""
        flag = origin_fault_flag(origin.fault_dir, args.get("status"), args.get("slow_kbps"))
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.touch()
        self._for_a_while("origin_fault", args, lambda: flag.unlink(missing_ok=True), log)

    def _dns_drop(self, emu: Emulation, dns: DnsService, args: dict[str, Any],
                  log: EventLog) -> None:
        """The redirector's host drops DNS over UDP for `seconds` (an iptables rule in its
        namespace, deleted after; the namespace goes with the run in any case)."""
        rule = "INPUT -p udp --dport 53 -j DROP"
        node = emu.node(dns.host)
        run_in(node, f"iptables -w -I {rule}")
        self._for_a_while("dns_drop", args, lambda: run_in(node, f"iptables -w -D {rule}"),
                          log)

    def _fill_cache(self, args: dict[str, Any], log: EventLog) -> None:
        """A pull edge's cache filesystem full for `seconds` (its own tmpfs: EdgeService);
        the fault's end records the cache writes nginx failed meanwhile."""
        edge = next(e for servers in self.edges.values() for e in servers
                    if e.host == args["edge"])
        failed_before = edge.cache_writes_failed()
        left = edge.fill_cache()

        def undo() -> dict[str, Any]:
            edge.free_cache()
            return {"cache_writes_failed": edge.cache_writes_failed() - failed_before,
                    "bytes_left": left}

        self._for_a_while("fill_cache", args, undo, log)

    def _for_a_while(self, kind: str, args: dict[str, Any], undo: Callable[[], Any],
                     log: EventLog) -> None:
        def end() -> None:
            try:
                measured = undo()
                log.emit("fault_end", kind=kind, args=args,
                         **(measured if isinstance(measured, dict) else {}))
            except Exception as err:  # the run goes on; the record says it did not end
                log.emit("fault_end_failed", kind=kind, args=args, error=str(err))

        timer = threading.Timer(float(args["seconds"]), end)
        timer.daemon = True
        self.fault_timers.append(timer)
        timer.start()

    def _stop_players(self) -> None:
        for players in self.players:
            players.stop()

    def _keep_logs(self, run_dir: Path) -> None:
        for name in ("events", "logs"):
            source = run_dir / name
            if source.is_dir():
                target = self.bundle / name
                if target.exists():
                    shutil.rmtree(target)
                shutil.move(str(source), str(target))
        shutil.rmtree(run_dir, ignore_errors=True)

    def _environment(self) -> dict[str, Any]:
        versions = {}
        for package in ("cdnlab", "dnslib", "dnspython", "scapy", "os-ken", "ffmpeg-python"):
            try:
                versions[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                versions[package] = None
        return {"kernel": platform.release(), "python": platform.python_version(),
                "versions": versions}
