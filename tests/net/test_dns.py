"""The redirector and the probes on two_isp_ixp: probes measure every cluster→client-network
RTT within max(1 ms, 10 %) of the path's configured RTT (ICMP and TCP SYN), every client
resolves to its lowest-RTT cluster, and raising a link's delay flips the answer within two
probe intervals plus one TTL. And a probe pushes the load an edge endpoint reports."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cdnlab.net.emulation import Emulation
from cdnlab.net.shaping.base import run_in
from cdnlab.services.dns import DnsService, client_networks
from cdnlab.services.probe import ProbeService
from cdnlab.topology import load_topology
from tests.dns.conftest import start_redirector
from tests.json_endpoint import serve_json
from tests.net.conftest import alive, recorded_processes

pytestmark = pytest.mark.root

INTERVAL_S = 1.0
TTL_S = 2


def state(emu: Emulation, dns: DnsService) -> dict[str, Any]:
    out = run_in(emu.node(dns.host), f"{sys.executable} -m nodes.common.fetch "
                                     f"--header 'Authorization: Bearer {dns.token}' "
                                     f"{dns.rest_url}/state")
    return dict(json.loads(json.loads(out)["text"] or "{}"))


def test_probes_feed_the_redirector_and_answers_follow_rtt(nothing_left_behind: None) -> None:
    topology = load_topology("two_isp_ixp")
    dynamic = topology.link("isp_a", "edge_a")
    with Emulation(topology, dynamic_links={dynamic.name}) as emu:
        dns = DnsService(emu, ttl=TTL_S)
        dns.start()
        clusters = topology.clusters()
        for cluster in clusters:  # edge_x measures with TCP SYNs, the others with ICMP echo
            ProbeService(emu, dns, cluster, interval_s=INTERVAL_S,
                         method="tcp" if cluster == "edge_x" else "icmp").start()
        processes = recorded_processes(emu)  # hosts, shaping, and the node programs
        networks = client_networks(emu)
        deadline = time.monotonic() + 20
        while True:
            current = state(emu, dns)
            table = current.get("rtt_ms", {})
            if all(len(table.get(net, {})) == len(clusters) for net in networks):
                break
            assert time.monotonic() < deadline, f"probes did not report: {current}"
            time.sleep(0.5)
        time.sleep(3 * INTERVAL_S)  # a few rounds of smoothing
        table = state(emu, dns)["rtt_ms"]
        for network, client in networks.items():
            owner = emu.plan.owner(client)
            for cluster, servers in clusters.items():
                expected = emu.paths.expected_rtt_ms(servers[0], owner)
                measured = table[network][cluster]
                assert abs(measured - expected) <= max(1.0, 0.1 * expected), \
                    (cluster, network, measured, expected)
        for client in topology.by_role("client"):
            lowest = min(clusters, key=lambda c: emu.paths.expected_rtt_ms(clusters[c][0], client))
            assert dns.resolve(client) == [emu.ip(s) for s in clusters[lowest]], client
        assert dns.resolve("a1") == [emu.ip(s) for s in clusters["edge_a"]]

        # edge_a moves 38 ms further from ISP A's clients: edge_x (13 ms) is now nearest
        link = emu.link("isp_a", "edge_a")
        changed = time.monotonic()
        for direction in ("a_to_b", "b_to_a"):
            emu.changes.set_shape("isp_a", "edge_a", direction,
                          link.shapes[direction].with_changes(delay=20.0))
        while dns.resolve("a1") != [emu.ip(s) for s in clusters["edge_x"]]:
            assert time.monotonic() - changed < 2 * INTERVAL_S + TTL_S + 5, "never flipped"
            time.sleep(0.1)
        flipped_after = time.monotonic() - changed
        assert flipped_after <= 2 * INTERVAL_S + TTL_S, flipped_after
        assert dns.resolve("b1") == [emu.ip(s) for s in clusters["edge_x"]]
        time.sleep(0.6)  # the decision log is written every half second
        decisions = [json.loads(line) for line in dns.decisions_path.read_text().splitlines()]
        mine = [d for d in decisions if d["client"] == emu.ip("a1")]
        assert mine[0]["cluster"] == "edge_a" and mine[-1]["cluster"] == "edge_x"
        assert all(d["reason"] == "lowest_rtt" for d in mine)
        assert {c["cluster"] for c in mine[-1]["candidates"]} == set(clusters)
    assert alive(processes) == []


def test_a_probe_pushes_rtt_and_its_clusters_load(tmp_path: Path) -> None:
    """On loopback (raw sockets need root): one round, signed, with the load of a cluster
    of two servers read over HTTP from stand-ins for their load endpoints: the cluster's
    egress over its capacity (12.3 of 20 Mbit/s), not its first server's."""
    endpoints = [serve_json({"utilisation": egress / 10, "egress_mbps": egress,
                             "capacity_mbps": 10.0}) for egress in (9.3, 3.0)]
    running = start_redirector(tmp_path)
    try:
        (tmp_path / "key").write_text(running.secret)
        done = subprocess.run(
            [sys.executable, "-m", "nodes.probe", "--cluster", "edge_a", "--dns",
             f"127.0.0.1:{running.port}", "--zone", "cdn.lab.", "--key-name", "cdnlab-key",
             "--key-file", str(tmp_path / "key"), "--target", "127.0.0.0/8=127.0.0.1",
             "--rounds", "1", *[f"--load-url=http://127.0.0.1:{e.server_address[1]}/load"
                                for e in endpoints],
             "--events", str(tmp_path / "probe.jsonl")],
            capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 0, done.stderr
        event = json.loads((tmp_path / "probe.jsonl").read_text().splitlines()[-1])
        assert event["rcode"] == "NOERROR" and event["load"] == 0.615
        assert 0 <= event["raw_ms"]["127.0.0.0/8"] < 5
        status, current = running.rest("GET", "/state")
        assert status == 200
        assert current["clusters"]["edge_a"]["load"] == pytest.approx(0.615)
        assert "127.0.0.0/8" in current["rtt_ms"]
    finally:
        for endpoint in endpoints:
            endpoint.shutdown()
        running.process.terminate()
        running.process.wait(10)
