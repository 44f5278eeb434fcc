"""Live DASH players on two_isp_ixp with synthetic titles served by nginx on the edge
servers and the redirector choosing the cluster: ABR behaviour at 10 and 1 Mbit/s and
after a step-down, a DNS change followed after its TTL, and 50 concurrent sessions."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdnlab.measure import fidelity
from cdnlab.net.emulation import Emulation
from cdnlab.services.client import ClientService
from cdnlab.services.dns import DnsService, client_networks
from cdnlab.services.origin import OriginService
from cdnlab.topology import load_topology
from cdnlab.traces import BandwidthTrace
from nodes.origin.profiles import DEFAULT_LADDER, Profile, TitleSpec
from nodes.origin.store import ContentStore
from nodes.origin.synth import SynthOptions, synthesize
from tests.net.conftest import alive, recorded_processes

pytestmark = pytest.mark.root

SEGMENT_S = 2.0
SEGMENTS = 20
TTL_S = 2
SESSION = {"segments": SEGMENTS, "max_buffer_s": 12.0}
TOP, LOW = 4300.0, 750.0


def true_rtts(emu: Emulation) -> dict[tuple[str, str], float]:
    """What the probes would measure: each cluster's RTT to each client network."""
    clusters = emu.topology.clusters()
    return {(cluster, net): emu.paths.expected_rtt_ms(servers[0], emu.plan.owner(address))
            for net, address in client_networks(emu).items()
            for cluster, servers in clusters.items()}


@pytest.fixture
def cdn(nothing_left_behind: None) -> Iterator[tuple[Emulation, DnsService]]:
    """two_isp_ixp with 20 synthetic titles (2 s segments) on every edge server, and the
    redirector holding the true RTTs (min_rtt, TTL 2 s)."""
    with Emulation(load_topology("two_isp_ixp")) as emu:
        store = Path(emu.run_dir) / "store"
        spec = TitleSpec(profiles=(Profile("avc", DEFAULT_LADDER),), segment_s=SEGMENT_S,
                         audio_kbps=0)
        synthesize(ContentStore(store), SynthOptions(titles=20, duration_s=SEGMENT_S * SEGMENTS,
                                                     spec=spec, seed=4))
        for servers in emu.topology.clusters().values():
            for server in servers:
                OriginService(emu, store, host=server).start()
        dns = DnsService(emu, policy="min_rtt", ttl=TTL_S, stale_after_s=3600)
        dns.start()
        dns.set_rtts(true_rtts(emu))
        processes = recorded_processes(emu)
        yield emu, dns
    assert alive(processes) == []


def players(emu: Emulation, dns: DnsService, host: str,
            sessions: list[dict[str, Any]]) -> ClientService:
    service = ClientService(emu, host, [emu.ip(dns.host)], "video.cdn.lab", sessions)
    service.start()
    return service


def segments_of(service: ClientService) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event in service.player_events():
        if event["event"] == "segment":
            found.setdefault(event["session"], []).append(event)
    return found


def test_abr_follows_the_link_rate(cdn: tuple[Emulation, DnsService]) -> None:
    emu, dns = cdn
    for client, mbps in (("a1", 10), ("b1", 10), ("a2", 1), ("b2", 1)):
        access = emu.topology.links_of(client)[0]
        for direction in ("a_to_b", "b_to_a"):
            shaped = emu.link(access.a, access.b)
            emu.changes.set_shape(access.a, access.b, direction,
                          shaped.shapes[direction].with_changes(rate=float(mbps)))
    step_at = 16.0
    step = BandwidthTrace(((0.0, 10.0), (step_at, 1.0)), period_s=3600.0, source="step")
    replay_started = time.time()
    for client in ("a3", "b3"):
        access = emu.topology.links_of(client)[0]
        emu.changes.replay(access.a, access.b, step, "both", loop=False)
    plan = {"a1": "throughput", "b1": "bola", "a2": "throughput", "b2": "bola",
            "a3": "throughput", "b3": "bola"}
    services = {host: players(emu, dns, host, [SESSION | {"id": f"{host}-{algo}",
                                                         "title": "synth-0003",
                                                         "algo": algo}])
                for host, algo in plan.items()}
    results = {host: service.wait(120)["sessions"][0] for host, service in services.items()}
    failed = [r for r in results.values() if not r["completed"]]
    assert not failed, failed
    logs = {host: next(iter(segments_of(service).values()))
            for host, service in services.items()}
    for host in ("a1", "b1"):  # 10 Mbit/s: the top rung, never a stall
        assert TOP in [s["bitrate_kbps"] for s in logs[host]], (host, logs[host])
        assert results[host]["rebuffer_count"] == 0, results[host]
    for host in ("a2", "b2"):  # 1 Mbit/s: at or below 750 kbit/s throughout
        assert max(s["bitrate_kbps"] for s in logs[host]) <= LOW, (host, logs[host])
    step_t = replay_started - emu.t0 + step_at
    for host in ("a3", "b3"):  # down within three segments of the step
        log = logs[host]
        before = [s for s in log if s["t"] <= step_t]
        after = [s for s in log if s["t"] - s["download_s"] >= step_t][:3]
        assert before and after, (host, step_t, log)
        assert min(s["bitrate_kbps"] for s in after) < before[-1]["bitrate_kbps"], (host, log)
    for host, log in logs.items():  # every segment came from the client's nearest cluster
        nearest = "edge_a" if host.startswith("a") else "edge_x"
        assert {s["cluster"] for s in log} == {nearest}, host
        assert all(s["bytes"] > 0 and s["throughput_kbps"] > 0 for s in log)


def test_fifty_sessions_follow_a_dns_change_and_fidelity_holds(
        cdn: tuple[Emulation, DnsService]) -> None:
    emu, dns = cdn
    algos = itertools.cycle(["throughput", "bba", "bola", "mpc", "dynamic"])
    clients = emu.topology.by_role("client")
    plan: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
    for n in range(50):
        host = clients[n % len(clients)]
        plan[host].append(SESSION | {"id": f"v{n:02d}", "title": f"synth-{n % 20 + 1:04d}",
                                     "algo": next(algos), "start_s": 0.1 * n})
    services = [players(emu, dns, host, sessions) for host, sessions in plan.items()]
    time.sleep(12)
    # edge_a becomes far for ISP A's network: its clients must move to edge_x
    a_network = str(emu.plan.interface("a1", emu.topology.links_of("a1")[0].index)
                    .address.network)
    dns.set_rtts({("edge_a", a_network): 100.0})
    changed_t = time.time() - emu.t0
    summaries = [service.wait(180) for service in services]
    sessions = [s for summary in summaries for s in summary["sessions"]]
    assert len(sessions) == 50 and all(s["completed"] for s in sessions), \
        [s for s in sessions if not s["completed"]]
    for metrics in sessions:
        assert metrics["segments"] == SEGMENTS
        assert {"startup_s", "rebuffer_s", "avg_bitrate_kbps", "switches", "qoe"} <= set(metrics)
    edge_x = {emu.ip(s) for s in emu.topology.clusters()["edge_x"]}
    edge_a = {emu.ip(s) for s in emu.topology.clusters()["edge_a"]}
    moved = 0
    for service in services:
        if not service.host.startswith("a"):
            continue
        for session, log in segments_of(service).items():
            for segment in log:
                asked = segment["t"] - segment["download_s"]
                if asked > changed_t + TTL_S + 0.5:
                    assert segment["server"] in edge_x, (session, segment, changed_t)
                    moved += 1
                elif segment["t"] < changed_t:
                    assert segment["server"] in edge_a, (session, segment)
    assert moved > 0, "some segments were fetched after the change"
    clusters = emu.topology.clusters()
    report = fidelity.rtt_remeasured_on_miss(
        emu, fidelity.measure_rtt(emu, [(c, clusters["edge_x"][0]) for c in clients]))
    for sample in report:
        assert abs(sample.error_ms) <= max(1.0, 0.05 * sample.expected_ms), sample
