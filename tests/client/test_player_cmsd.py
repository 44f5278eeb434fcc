"""CMSD from real nginx edges to the Python player, on loopback: two pull edges (clusters a
and b, CMSD on) in front of one origin, a steered title, the real redirector ranking a
first. Once the session plays from a, two more viewers' connections open on edge a, over
its `--max-connections 1` (on loopback the monitor's egress, which counts only real
interfaces, stays 0): its monitor raises the duress flag, its next response says `du`,
and the player moves to pathway b at the next segment. Edge b's `mb` (its threshold's
share per video stream it carries) caps the bitrate the ABR may choose there, also when
the session comes back to b after retrying a: each cluster's own mb caps the segments
asked of it. The headers themselves are checked too: object type, etp and mb as the
edge's capacity says before any stream."""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from nodes.common import cmsd
from nodes.common.conventions import STEERED_MPD
from nodes.origin.profiles import DEFAULT_LADDER
from tests.client.test_player_loopback import (
    LIVE,
    LIVE2,
    accepts,
    log_of,
    port_free_on_all,
    put_cluster,
    segments_from,
    stop_all,
    wait_for,
)
from tests.client.test_player_steering import start_steering_redirector, steered_title
from tests.dns.conftest import free_port

THRESHOLD = 0.5
CAPACITY_MBPS = {"a": 1.0, "b": 8.0}  # b's mb: at most 4000 kbit/s, under the top rung


def edge(tmp_path: Path, cluster: str, port: int, origin_port: int,
         max_connections: int, address: str = "0.0.0.0") -> subprocess.Popen[bytes]:
    """A real pull edge with CMSD on, in tmp_path/edge-<cluster>, on address:port."""
    return subprocess.Popen([
        sys.executable, "-m", "nodes.edge", "serve", "--cluster", cluster, "--mode", "pull",
        "--parent", f"127.0.0.1:{origin_port}", "--work", str(tmp_path / f"edge-{cluster}"),
        "--address", address, "--port", str(port), "--cmsd", "--interval", "0.5",
        "--capacity-mbps", f"{CAPACITY_MBPS[cluster]:g}", "--threshold", f"{THRESHOLD:g}",
        "--max-connections", str(max_connections)])


def headers_of(url: str) -> dict[str, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        response.read()
        return {k.lower(): v for k, v in response.headers.items()}


def assert_within_their_clusters_mb(segments: list[dict[str, Any]]) -> dict[str, int]:
    """Each segment's bitrate fits the mb its cluster's last video response carried (when a
    rung fits); each cluster's last mb."""
    ladder = [r.kbps for r in DEFAULT_LADDER]
    last_mb: dict[str, int] = {}
    for segment in segments:
        mb = last_mb.get(segment["cluster"])
        if mb is not None and any(kbps <= mb for kbps in ladder):
            assert segment["bitrate_kbps"] <= mb, (mb, segment)
        last_mb[segment["cluster"]] = segment["cmsd"]["mb"]
    return last_mb


def test_duress_moves_the_session_and_mb_caps_it(tmp_path: Path) -> None:
    ports = {"a": free_port(), "b": free_port()}
    origin_port, dns_port, rest_port, steer_port = (free_port(), free_port(), free_port(),
                                                    free_port())
    store = tmp_path / "store"
    steered_title(store, steer_port, {c: f"{c}.cluster.cdn.lab:{p}" for c, p in ports.items()},
                  DEFAULT_LADDER)
    processes = [
        start_steering_redirector(tmp_path, dns_port, rest_port, steer_port),
        subprocess.Popen([sys.executable, "-m", "nodes.origin", "serve", "--store", str(store),
                          "--address", "127.0.0.1", "--http-port", str(origin_port),
                          "--ingest-port", str(free_port()), "--work", str(tmp_path / "o")]),
        edge(tmp_path, "a", ports["a"], origin_port, max_connections=1),
        edge(tmp_path, "b", ports["b"], origin_port, max_connections=0)]
    events = tmp_path / "players.jsonl"
    try:
        wait_for(lambda: all((tmp_path / f"edge-{c}" / "nginx.pids").exists() for c in ports),
                 "the edges serve")
        wait_for(lambda: accepts(origin_port), "the origin serves")  # else the edge says 502
        mpd = headers_of(f"http://{LIVE}:{ports['a']}/synth-0001/{STEERED_MPD}")
        assert cmsd.decode_static(mpd["cmsd-static"]) == {"ot": "m", "sf": "d", "st": "v"}
        (name, params), = cmsd.decode_dynamic(mpd["cmsd-dynamic"])
        # one connection open (this one): etp the whole capacity, mb its threshold's share
        assert name == "a" and params == {"etp": 1000, "mb": 500}, params
        assert "CMSD-Dynamic" in mpd["access-control-expose-headers"]
        init_name = next((store / "synth-0001").glob("init-*")).name
        init = headers_of(f"http://{LIVE2}:{ports['b']}/synth-0001/{init_name}")
        assert cmsd.decode_static(init["cmsd-static"])["ot"] == "i"
        wait_for(lambda: (tmp_path / "decisions.jsonl").exists(), "the redirector runs")
        for cluster, rtt_ms in (("a", 5), ("b", 20)):
            put_cluster(rest_port, cluster, "rtt", {"network": "127.0.0.0/8", "rtt_ms": rtt_ms})
        player = subprocess.Popen(
            [sys.executable, "-m", "nodes.client", "--service", "video.cdn.lab", "--resolver",
             f"127.0.0.1:{dns_port}", "--port", str(ports["a"]), "--title", "synth-0001",
             "--manifest", STEERED_MPD, "--algo", "throughput", "--max-buffer", "3",
             "--cmsd", "--events", str(events), "--summary", str(tmp_path / "s.json")],
            stderr=subprocess.PIPE, text=True)
        processes.insert(0, player)  # stopped too if the test fails
        wait_for(lambda: segments_from(events, LIVE) >= 2, "pathway a served")
        crowd = [socket.create_connection((LIVE, ports["a"])) for _ in range(2)]
        _, stderr = player.communicate(timeout=90)
        for connection in crowd:
            connection.close()
        assert player.returncode == 0, stderr
    finally:
        stop_all(processes)
    log = log_of(events)
    segments = [e for e in log if e["event"] == "segment"]
    assert [s["pathway"] for s in segments[:2]] == ["a", "a"]
    assert all(s["cmsd"]["etp"] > 0 for s in segments), "every segment carries CMSD"
    # duress: the segment after the first one that said `du` comes from b
    said = next(i for i, s in enumerate(segments) if s["cmsd"].get("du"))
    assert segments[said]["cluster"] == "a"
    assert segments[said + 1]["pathway"] == "b", segments[said + 1]
    changes = [(e["pathway"], e["reason"]) for e in log if e["event"] == "pathway_change"]
    assert changes[:2] == [("a", "start"), ("b", "duress")], changes
    duress = [e for e in log if e["event"] == "cmsd_duress"]
    assert duress and duress[0]["pathway"] == "a" and duress[0]["cluster"] == "a"
    # mb: each choice fits the mb its cluster's last video response carried (when a rung
    # fits), and on b (mb about 4000) the throughput rule's choice of the top rung (4300)
    # was capped
    last_mb = assert_within_their_clusters_mb(segments)
    capped = [s for s in segments if "abr_quality" in s]
    assert any(s["pathway"] == "b" and s["abr_quality"] > s["quality"] for s in capped), \
        [(s["pathway"], s["quality"], s["cmsd"]) for s in segments]
    # back on b after a said `du` again (its hold over, the session retried a): the first
    # segment is capped by b's own last mb, not by a's (one stream's share of a's 1 Mbit/s,
    # 500, would have capped it to the lowest rung)
    back = [(before, s) for before, s in itertools.pairwise(segments)
            if before["cluster"] == "a" and s["cluster"] == "b" and "cmsd" in before]
    again = [(before, s) for before, s in back if s is not segments[said + 1]]
    assert again, [(s["pathway"], s["bitrate_kbps"]) for s in segments]
    before, first = again[0]
    assert first.get("abr_quality", first["quality"]) > first["quality"], (before, first)
    assert before["cmsd"]["mb"] < first["bitrate_kbps"] <= last_mb["b"], (before, first)


def test_mb_follows_the_capacity_in_force(tmp_path: Path) -> None:
    """A scenario's capacity cut writes the edge's `capacity_mbps` file (cdnlab/services/
    edge.py set_capacity); from the monitor's next sample its responses' etp and mb are
    shares of the capacity in force, not of the one it started with."""
    port, origin_port = free_port(), free_port()
    store = tmp_path / "store"
    steered_title(store, free_port(), {"a": f"a.cluster.cdn.lab:{port}"}, DEFAULT_LADDER)
    processes = [
        subprocess.Popen([sys.executable, "-m", "nodes.origin", "serve", "--store", str(store),
                          "--address", "127.0.0.1", "--http-port", str(origin_port),
                          "--ingest-port", str(free_port()), "--work", str(tmp_path / "o")]),
        edge(tmp_path, "a", port, origin_port, max_connections=0)]
    url = f"http://{LIVE}:{port}/synth-0001/{STEERED_MPD}"
    try:
        wait_for(lambda: (tmp_path / "edge-a" / "nginx.pids").exists(), "the edge serves")
        wait_for(lambda: accepts(origin_port), "the origin serves")
        assert cmsd.nearest(headers_of(url)) == {"etp": 1000, "mb": 500}
        (tmp_path / "edge-a" / "capacity_mbps").write_text("0.25\n")
        wait_for(lambda: cmsd.nearest(headers_of(url)) == {"etp": 250, "mb": 125},
                 "etp and mb of the cut capacity", timeout_s=5)
    finally:
        stop_all(processes)


def test_under_dns_the_cap_is_the_mb_of_the_cluster_asked(tmp_path: Path) -> None:
    """DNS routing (TTL 1 s, the real redirector's min_rtt ranking moved over REST): the
    session plays from a (mb 500), then b (mb about 4000), then a again. Each segment's
    bitrate fits the mb its own cluster last said: on coming back to a, the new answer is
    asked for before the cap, so the first segment is capped by a's 500 and not by the b
    the session is leaving."""
    port, origin_port, dns_port, rest_port = (port_free_on_all(), free_port(), free_port(),
                                              free_port())
    store = tmp_path / "store"
    steered_title(store, free_port(), {"a": f"a.cluster.cdn.lab:{port}"}, DEFAULT_LADDER,
                  duration_s=30)
    config = tmp_path / "dns.yaml"
    config.write_text(yaml.safe_dump({
        "zone": "cdn.lab.", "listen": {"address": "127.0.0.1", "port": dns_port},
        "services": {"video": {"policy": "min_rtt", "ttl": 1}}, "stale_after_s": 60,
        "clusters": {"a": {"addresses": [LIVE]}, "b": {"addresses": [LIVE2]}},
        "rest": {"port": rest_port, "token": "t"}}))
    processes = [
        subprocess.Popen([sys.executable, "-m", "nodes.dns", "--config", str(config)]),
        subprocess.Popen([sys.executable, "-m", "nodes.origin", "serve", "--store", str(store),
                          "--address", "127.0.0.1", "--http-port", str(origin_port),
                          "--ingest-port", str(free_port()), "--work", str(tmp_path / "o")]),
        edge(tmp_path, "a", port, origin_port, max_connections=0, address=LIVE),
        edge(tmp_path, "b", port, origin_port, max_connections=0, address=LIVE2)]
    events = tmp_path / "players.jsonl"

    def nearest(a_ms: int, b_ms: int) -> None:
        for cluster, rtt_ms in (("a", a_ms), ("b", b_ms)):
            put_cluster(rest_port, cluster, "rtt", {"network": "127.0.0.0/8", "rtt_ms": rtt_ms})

    try:
        wait_for(lambda: all((tmp_path / f"edge-{c}" / "nginx.pids").exists() for c in "ab"),
                 "the edges serve")
        wait_for(lambda: accepts(origin_port) and accepts(rest_port), "origin and redirector")
        nearest(5, 20)
        player = subprocess.Popen(
            [sys.executable, "-m", "nodes.client", "--service", "video.cdn.lab", "--resolver",
             f"127.0.0.1:{dns_port}", "--port", str(port), "--title", "synth-0001",
             "--algo", "throughput", "--max-buffer", "3", "--cmsd", "--cluster", f"a={LIVE}",
             "--cluster", f"b={LIVE2}", "--events", str(events),
             "--summary", str(tmp_path / "s.json")], stderr=subprocess.PIPE, text=True)
        processes.insert(0, player)  # stopped too if the test fails
        wait_for(lambda: segments_from(events, LIVE) >= 3, "a served")
        nearest(20, 5)
        wait_for(lambda: segments_from(events, LIVE2) >= 3, "b served")
        nearest(5, 20)
        _, stderr = player.communicate(timeout=90)
        assert player.returncode == 0, stderr
    finally:
        stop_all(processes)
    segments = [e for e in log_of(events) if e["event"] == "segment"]
    clusters = [c for c, _ in itertools.groupby(s["cluster"] for s in segments)]
    assert clusters == ["a", "b", "a"], clusters
    last_mb = assert_within_their_clusters_mb(segments)
    ladder = [r.kbps for r in DEFAULT_LADDER]
    assert last_mb["a"] < min(ladder[1:]) <= last_mb["b"], last_mb
