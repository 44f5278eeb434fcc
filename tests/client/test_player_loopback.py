"""A live session on loopback, against the real redirector and nginx: the DNS answer is
followed (round robin over three "clusters"), a dead server makes the player re-resolve
and carry on, an HTTP redirect is followed to the server that has the segment, and the
TTL is honoured. When DNS keeps naming a server that died, the player moves to another
cluster it learned earlier."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from nodes.origin.profiles import DEFAULT_LADDER, Profile, TitleSpec
from nodes.origin.store import ContentStore
from nodes.origin.synth import SynthOptions, synthesize
from tests.dns.conftest import free_port

LIVE, REDIRECTOR, DEAD, LIVE2 = "127.0.0.2", "127.0.0.1", "127.0.0.3", "127.0.0.4"


def port_free_on_all() -> int:
    while True:
        port = free_port()
        try:
            for address in (LIVE, REDIRECTOR, DEAD, LIVE2):
                with socket.socket() as probe:
                    probe.bind((address, port))
        except OSError:
            continue
        return port


def put_cluster(rest_port: int, cluster: str, what: str, body: dict[str, Any]) -> None:
    """A cluster's health, RTT or load set through the redirector's REST API (token t)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{rest_port}/clusters/{cluster}/{what}", method="PUT",
        data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer t", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200


def segments_from(events: Path, server: str) -> int:
    """Video segments the player's log says `server` delivered so far."""
    lines = events.read_text().splitlines() if events.exists() else []
    return sum(1 for x in lines if json.loads(x).get("event") == "segment"
               and json.loads(x)["server"] == server)


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
        process.wait(10)


def log_of(events: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in events.read_text().splitlines()]


def wait_for(ready: Any, what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def accepts(port: int, address: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on address:port (a server that is up)."""
    try:
        socket.create_connection((address, port), timeout=1).close()
    except OSError:
        return False
    return True


def start_dns_and_origin(tmp_path: Path, store: Path, dns_port: int, http_port: int,
                         ttl: int, clusters: dict[str, Any], origins: tuple[str, ...] = (LIVE,),
                         rest: dict[str, Any] | None = None) -> list[subprocess.Popen[bytes]]:
    """The real redirector (round robin over `clusters`, with its REST API if given) and
    an origin serving `store` on each of `origins`, as processes."""
    config = tmp_path / "dns.yaml"
    config.write_text(yaml.safe_dump({
        "zone": "cdn.lab.", "listen": {"address": "127.0.0.1", "port": dns_port},
        "services": {"video": {"policy": "round_robin", "ttl": ttl}}, "clusters": clusters,
        **({"rest": rest} if rest else {})}))
    return [
        subprocess.Popen([sys.executable, "-m", "nodes.dns", "--config", str(config)]),
        *(subprocess.Popen([sys.executable, "-m", "nodes.origin", "serve", "--store",
                            str(store), "--address", address, "--http-port", str(http_port),
                            "--ingest-port", str(free_port()),
                            "--work", str(tmp_path / f"w-{address}")])
          for address in origins)]


def test_failover_redirect_and_ttl(tmp_path: Path) -> None:
    http_port, dns_port = port_free_on_all(), free_port()
    store = tmp_path / "store"
    spec = TitleSpec(profiles=(Profile("avc", DEFAULT_LADDER[:3]),), segment_s=1.0,
                     audio_kbps=0)
    synthesize(ContentStore(store), SynthOptions(titles=1, duration_s=8, spec=spec, seed=9))

    class Redirect(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://{LIVE}:{http_port}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    redirect = ThreadingHTTPServer((REDIRECTOR, http_port), Redirect)
    threading.Thread(target=redirect.serve_forever, daemon=True).start()
    processes = start_dns_and_origin(tmp_path, store, dns_port, http_port, ttl=1, clusters={
        "a_dead": {"addresses": [DEAD]}, "b_live": {"addresses": [LIVE]},
        "c_redirect": {"addresses": [REDIRECTOR]}})
    try:
        time.sleep(1.5)
        events = tmp_path / "players.jsonl"
        done = subprocess.run(
            [sys.executable, "-m", "nodes.client", "--service", "video.cdn.lab", "--resolver",
             f"127.0.0.1:{dns_port}", "--port", str(http_port), "--title", "synth-0001",
             "--algo", "throughput", "--max-buffer", "3", "--events", str(events),
             "--cluster", f"a_dead={DEAD}", "--cluster", f"b_live={LIVE}",
             "--cluster", f"c_redirect={REDIRECTOR}", "--summary", str(tmp_path / "s.json")],
            capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 0, done.stderr
    finally:
        redirect.shutdown()
        for process in processes:
            process.terminate()
            process.wait(10)
    log = [json.loads(line) for line in events.read_text().splitlines()]
    resolves = [e for e in log if e["event"] == "resolve"]
    assert [r["why"] for r in resolves[:2]] == ["start", "server_failed"]
    assert resolves[0]["server"] == DEAD and resolves[1]["server"] == LIVE
    assert all(r["ttl"] == 1 for r in resolves)
    assert any(r["why"] == "ttl_expired" for r in resolves), "re-resolved after the TTL"
    failed = [e for e in log if e["event"] == "request_failed"]
    assert failed and all(f["server"] == DEAD for f in failed)
    segments = [e for e in log if e["event"] == "segment"]
    assert len(segments) == 8
    assert all(s["server"] == LIVE for s in segments), "every byte came from the live one"
    redirected = [s for s in segments if s["redirects"]]
    assert redirected, "some segments were asked of the redirecting server"
    assert all(s["resolved"] == REDIRECTOR and s["cluster"] == "b_live" for s in redirected)
    summary = json.loads((tmp_path / "s.json").read_text())["sessions"][0]
    assert summary["completed"] and summary["segments"] == 8


def test_audio_is_fetched_alongside_video_and_is_required(tmp_path: Path) -> None:
    """A title with audio: both tracks fetched, audio on its own connection while video
    downloads; a missing audio segment ends the session as a missing video one would."""
    http_port, dns_port = port_free_on_all(), free_port()
    store = tmp_path / "store"
    spec = TitleSpec(profiles=(Profile("avc", DEFAULT_LADDER[:3]),), segment_s=1.0,
                     audio_kbps=128)
    synthesize(ContentStore(store), SynthOptions(titles=2, duration_s=6, spec=spec, seed=9))
    content = ContentStore(store)
    audio = content.entry("synth-0002")["audio"][0]  # type: ignore[index]
    missing = audio["media"].replace("$Number%05d$", "00004")  # audio's 4th
    (content.title_dir("synth-0002") / missing).unlink()
    processes = start_dns_and_origin(tmp_path, store, dns_port, http_port, ttl=30,
                                     clusters={"live": {"addresses": [LIVE]}})
    try:
        time.sleep(1.5)
        events = tmp_path / "players.jsonl"
        plan = tmp_path / "plan.yaml"
        plan.write_text(yaml.safe_dump([
            {"id": "whole", "title": "synth-0001", "algo": "throughput"},
            {"id": "video_only", "title": "synth-0001", "algo": "throughput", "audio": False},
            {"id": "no_audio_4", "title": "synth-0002", "algo": "throughput"},
            # 4 segments of 1 s with 2 s of buffer: a session lasts at least 2 s
            {"id": "loop", "title": "synth-0001", "algo": "throughput", "segments": 4,
             "max_buffer_s": 2, "more_titles": ["synth-0001"] * 20, "until_s": 4.0},
        ]))
        done = subprocess.run(
            [sys.executable, "-m", "nodes.client", "--service", "video.cdn.lab", "--resolver",
             f"127.0.0.1:{dns_port}", "--port", str(http_port), "--plan", str(plan),
             "--events", str(events), "--summary", str(tmp_path / "s.json")],
            capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 1, done.stderr
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
    log = [json.loads(line) for line in events.read_text().splitlines()]

    def of(kind: str, session: str) -> list[dict[str, Any]]:
        return [e for e in log if e["event"] == kind and e["session"] == session]

    video, audio = of("segment", "whole"), of("audio_segment", "whole")
    assert len(video) == 6 and len(audio) == 6
    assert all(a["bitrate_kbps"] == 128 and a["server"] == LIVE for a in audio)
    assert audio[0]["start_s"] < video[0]["start_s"] + video[0]["download_s"], \
        "audio was asked for while the first video segment was downloading"
    assert not of("audio_segment", "video_only") and len(of("segment", "video_only")) == 6
    sessions = {s["session"]: s for s in
                json.loads((tmp_path / "s.json").read_text())["sessions"]}
    assert sessions["whole"]["stalls_by_track"] == {"video": 0, "audio": 0}
    assert sessions["video_only"]["stalls_by_track"] == {"video": 0}
    looped = sorted((s for s in sessions if s.startswith("loop")),
                    key=lambda s: int(s.partition(".")[2] or 1))
    assert looped[:2] == ["loop", "loop.2"] and len(looped) <= 3, \
        "a closed-loop viewer plays session after session, and stops at until_s"
    starts = [e["t"] for e in log if e["event"] == "session_start"
              and e["session"].startswith("loop")]
    assert max(starts) - min(starts) < 4.0 + 0.5
    broken = sessions["no_audio_4"]
    assert not broken["completed"] and f"{missing}: HTTP 404" in broken["error"]
    assert len(of("audio_segment", "no_audio_4")) == 3


def test_dns_naming_a_dead_server_moves_the_player_to_a_cluster_it_knows(
        tmp_path: Path) -> None:
    """Cluster b's server answers first; then DNS names only cluster a, whose server dies
    while DNS (without health) keeps naming it: the player asks b's server, which it
    learned from the first answer, and completes (as dash.js moves to the next BaseURL)."""
    http_port, dns_port, rest_port = port_free_on_all(), free_port(), free_port()
    store = tmp_path / "store"
    spec = TitleSpec(profiles=(Profile("avc", DEFAULT_LADDER[:2]),), segment_s=1.0,
                     audio_kbps=0)
    synthesize(ContentStore(store), SynthOptions(titles=1, duration_s=14, spec=spec, seed=9))
    processes = start_dns_and_origin(
        tmp_path, store, dns_port, http_port, ttl=1,
        clusters={"a": {"addresses": [LIVE]}, "b": {"addresses": [LIVE2]}},
        origins=(LIVE, LIVE2), rest={"port": rest_port, "token": "t"})
    origin_a = processes[1]
    events = tmp_path / "players.jsonl"

    def health(cluster: str, up: bool) -> None:
        put_cluster(rest_port, cluster, "health", {"up": up})

    def served_by(server: str) -> bool:
        return segments_from(events, server) > 0

    try:
        time.sleep(1.5)
        health("a", False)
        player = subprocess.Popen(
            [sys.executable, "-m", "nodes.client", "--service", "video.cdn.lab", "--resolver",
             f"127.0.0.1:{dns_port}", "--port", str(http_port), "--title", "synth-0001",
             "--algo", "throughput", "--max-buffer", "3", "--events", str(events),
             "--cluster", f"a={LIVE}", "--cluster", f"b={LIVE2}",
             "--summary", str(tmp_path / "s.json")], stderr=subprocess.PIPE, text=True)
        processes.insert(0, player)  # stopped too if the test fails
        wait_for(lambda: served_by(LIVE2), "b's server served a segment")
        health("a", True)
        health("b", False)
        wait_for(lambda: served_by(LIVE), "the player moved to a at the TTL")
        stop_all([origin_a])
        _, stderr = player.communicate(timeout=60)
        assert player.returncode == 0, stderr
    finally:
        stop_all(processes)
    log = log_of(events)
    failed = [e for e in log if e["event"] == "request_failed"]
    assert failed and all(f["server"] == LIVE for f in failed), failed
    moved = [e for e in log if e["event"] == "resolve" and e.get("from_known")]
    assert moved and all(m["server"] == LIVE2 and m["addresses"] == [LIVE]
                         and m["avoided"] == [LIVE] and m["known_cluster"] == "b"
                         for m in moved), moved
    assert moved[0]["why"] == "server_failed"
    after = [e for e in log if e["event"] == "segment" and e["t"] > failed[0]["t"]]
    assert after and all(s["server"] == LIVE2 for s in after)
    summary = json.loads((tmp_path / "s.json").read_text())["sessions"][0]
    assert summary["completed"] and summary["segments"] == 14, summary
