"""A live session following DASH content steering on loopback, against the real redirector
(its steering front end) and two real origins standing for two clusters: the origin's
store publishes steered.mpd (BaseURL per pathway, ContentSteering), the player asks the
steering server before starting and every TTL, moves to the pathway steering ranks first
at the next segment when RTTs change (DNS is not asked again), and falls back to the other
pathway when the one in use dies."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from nodes.common.conventions import STEERED_MPD
from nodes.common.dash import parse_mpd
from nodes.common.ladder import Rung
from nodes.origin.profiles import DEFAULT_LADDER, Profile, TitleSpec
from nodes.origin.store import STEERING, ContentStore
from nodes.origin.synth import SynthOptions, synthesize
from tests.client.test_player_loopback import (
    LIVE,
    LIVE2,
    log_of,
    port_free_on_all,
    put_cluster,
    segments_from,
    stop_all,
    wait_for,
)
from tests.dns.conftest import free_port


def steered_title(store: Path, steer_port: int, pathways: dict[str, str],
                  ladder: tuple[Rung, ...], duration_s: float = 16) -> None:
    """synth-0001 in `store`, 1 s segments, published with steered.mpd naming `pathways`
    (name → host:port), `a` the default, the steering server on loopback."""
    ContentStore(store)
    (store / STEERING).write_text(json.dumps({
        "server_url": f"http://127.0.0.1:{steer_port}/steer/video",
        "pathways": pathways, "default": "a"}))
    spec = TitleSpec(profiles=(Profile("avc", ladder),), segment_s=1.0, audio_kbps=0)
    synthesize(ContentStore(store),
               SynthOptions(titles=1, duration_s=duration_s, spec=spec, seed=9))


def start_steering_redirector(tmp_path: Path, dns_port: int, rest_port: int,
                              steer_port: int) -> subprocess.Popen[bytes]:
    """The real redirector (min_rtt, REST token t) with its steering front end, TTL 1 s,
    clusters a (LIVE) and b (LIVE2); decisions in tmp_path/decisions.jsonl. RTTs given
    over REST stay fresh for a minute (no probe renews them here)."""
    config = tmp_path / "dns.yaml"
    config.write_text(yaml.safe_dump({
        "zone": "cdn.lab.", "listen": {"address": "127.0.0.1", "port": dns_port},
        "services": {"video": {"policy": "min_rtt", "ttl": 30}}, "stale_after_s": 60,
        "clusters": {"a": {"addresses": [LIVE]}, "b": {"addresses": [LIVE2]}},
        "rest": {"port": rest_port, "token": "t"},
        "steering": {"port": steer_port, "ttl": 1, "pathways": ["a", "b"]}}))
    return subprocess.Popen([sys.executable, "-m", "nodes.dns", "--config", str(config),
                             "--decisions", str(tmp_path / "decisions.jsonl")])


def test_a_steered_session_moves_with_the_ranking_and_on_failure(tmp_path: Path) -> None:
    http_port, dns_port, rest_port, steer_port = (port_free_on_all(), free_port(),
                                                  free_port(), free_port())
    store = tmp_path / "store"
    steered_title(store, steer_port, {"a": f"a.cluster.cdn.lab:{http_port}",
                                      "b": f"b.cluster.cdn.lab:{http_port}"},
                  DEFAULT_LADDER[:2])
    steered = parse_mpd((store / "synth-0001" / STEERED_MPD).read_bytes())
    assert steered.steering is not None and steered.steering.query_before_start
    assert [(b.service_location, b.url) for b in steered.base_urls] == [
        ("a", f"http://a.cluster.cdn.lab:{http_port}/synth-0001/"),
        ("b", f"http://b.cluster.cdn.lab:{http_port}/synth-0001/")]
    processes = [start_steering_redirector(tmp_path, dns_port, rest_port, steer_port)]
    processes += [subprocess.Popen(
        [sys.executable, "-m", "nodes.origin", "serve", "--store", str(store), "--address",
         address, "--http-port", str(http_port), "--ingest-port", str(free_port()),
         "--work", str(tmp_path / f"w-{address}")]) for address in (LIVE, LIVE2)]
    events = tmp_path / "players.jsonl"

    def rtt(cluster: str, value: float) -> None:
        put_cluster(rest_port, cluster, "rtt", {"network": "127.0.0.0/8", "rtt_ms": value})

    try:
        time.sleep(1.5)
        rtt("a", 5)
        rtt("b", 20)
        player = subprocess.Popen(
            [sys.executable, "-m", "nodes.client", "--service", "video.cdn.lab", "--resolver",
             f"127.0.0.1:{dns_port}", "--port", str(http_port), "--title", "synth-0001",
             "--manifest", STEERED_MPD, "--algo", "throughput", "--max-buffer", "3",
             "--events", str(events), "--summary", str(tmp_path / "s.json")],
            stderr=subprocess.PIPE, text=True)
        processes.insert(0, player)  # stopped too if the test fails
        wait_for(lambda: segments_from(events, LIVE) >= 2, "pathway a served")
        rtt("a", 40)  # steering ranks b first at its next reload
        wait_for(lambda: segments_from(events, LIVE2) >= 2, "the session moved to pathway b")
        stop_all(processes[-1:])  # b's origin dies: back to a
        _, stderr = player.communicate(timeout=60)
        assert player.returncode == 0, stderr
    finally:
        stop_all(processes)
    log = log_of(events)
    changes = [(e["pathway"], e["reason"]) for e in log if e["event"] == "pathway_change"]
    assert changes == [("a", "start"), ("b", "steering"), ("a", "failure")], changes
    answers = [e for e in log if e["event"] == "steering"]
    assert answers[0]["status"] == 200 and answers[0]["priority"] == ["a", "b"]
    assert any(a.get("priority") == ["b", "a"] for a in answers)
    assert all(a["ttl_s"] == 1 for a in answers if a["status"] == 200)
    first = next(e["t"] for e in log if e["event"] == "segment")
    assert answers[0]["t"] < first, "asked before starting (queryBeforeStart)"
    service = [e for e in log if e["event"] == "resolve" and "host" not in e]
    assert len(service) == 1, "DNS named the service once, for the MPD; steering moved it"
    segments = [e for e in log if e["event"] == "segment"]
    assert all(s["server"] == {"a": LIVE, "b": LIVE2}[s["pathway"]] for s in segments)
    failed = [e for e in log if e["event"] == "request_failed"]
    assert failed and {f["pathway"] for f in failed} == {"b"}
    summary = json.loads((tmp_path / "s.json").read_text())["sessions"][0]
    assert summary["completed"] and summary["segments"] == 16
    steers = [json.loads(line) for line in
              (tmp_path / "decisions.jsonl").read_text().splitlines()
              if '"steer"' in line]
    reported = [s for s in steers if s["reported"]]
    assert reported and set(reported[0]["reported"]) <= {"a", "b"}
    assert all(bps > 0 for s in reported for bps in s["reported_bps"]), \
        "the player reports its measured throughput per pathway"
