"""dash.js 5 in headless Chromium following content steering and CMSD, on loopback: a real
title (ffmpeg) published with steered.mpd, two real nginx pull edges (clusters a and b,
CMSD on) in front of one origin, the real redirector's steering front end ranking them by
the RTTs given over its REST API. Chromium maps the names to the loopback addresses
(`--host-rules`) instead of asking DNS. The viewer plays to dash.js's end event; it starts
on a, moves to b when the steering server ranks b first (dash.js's own steering, its
requests carrying _DASH_pathway), and leaves b for a at the next segment once b's responses
say `du` (the page's interceptors, as the Python player does)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from nodes.common.conventions import STEERED_MPD
from nodes.origin.ingest import ingest_file
from nodes.origin.profiles import parse_title_spec
from nodes.origin.store import STEERING, ContentStore
from nodes.origin.testsource import make_test_master
from tests.client.test_player_cmsd import edge
from tests.client.test_player_loopback import (
    LIVE,
    LIVE2,
    accepts,
    log_of,
    put_cluster,
    stop_all,
    wait_for,
)
from tests.client.test_player_steering import start_steering_redirector
from tests.dns.conftest import free_port

SPEC = {"segment_s": 2, "audio_kbps": 64,
        "profiles": {"avc": ["150k@160x90", "400k@320x180"]}}


def fragments(raw: Path) -> list[dict[str, Any]]:
    """The video fragments the page reported so far."""
    if not raw.exists():
        return []
    found = []
    for line in raw.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("kind") == "fragment" and event.get("media_type") == "video":
            found.append(event)
    return found


def test_dashjs_follows_steering_and_leaves_on_duress(tmp_path: Path) -> None:
    ports = {"a": free_port(), "b": free_port()}
    origin_port, dns_port, rest_port, steer_port = (free_port(), free_port(), free_port(),
                                                    free_port())
    store = ContentStore(tmp_path / "store")
    (store.root / STEERING).write_text(json.dumps({
        "server_url": f"http://127.0.0.1:{steer_port}/steer/video",
        "pathways": {c: f"{c}.cluster.cdn.lab:{p}" for c, p in ports.items()},
        "default": "a"}))
    master = make_test_master(tmp_path / "master.mp4", 20.0)
    ingest_file(store, master, "film", parse_title_spec(SPEC))
    assert (store.root / "film" / STEERED_MPD).exists()
    processes = [
        start_steering_redirector(tmp_path, dns_port, rest_port, steer_port),
        subprocess.Popen([sys.executable, "-m", "nodes.origin", "serve", "--store",
                          str(store.root), "--address", "127.0.0.1", "--http-port",
                          str(origin_port), "--ingest-port", str(free_port()), "--work",
                          str(tmp_path / "o")]),
        edge(tmp_path, "a", ports["a"], origin_port, max_connections=0),
        edge(tmp_path, "b", ports["b"], origin_port, max_connections=4)]
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump([{"id": "v1", "title": "film", "manifest": STEERED_MPD,
                                     "cmsd": True, "max_buffer_s": 4, "segment_s": 2,
                                     "timeout_s": 90}]))
    raw = tmp_path / "client-browser-v1.dashjs.jsonl"
    crowd: list[socket.socket] = []
    try:
        wait_for(lambda: all((tmp_path / f"edge-{c}" / "nginx.pids").exists() for c in ports),
                 "the edges serve")
        wait_for(lambda: accepts(origin_port), "the origin serves")
        wait_for(lambda: (tmp_path / "decisions.jsonl").exists(), "the redirector runs")
        for cluster, rtt_ms in (("a", 5), ("b", 20)):
            put_cluster(rest_port, cluster, "rtt", {"network": "127.0.0.0/8", "rtt_ms": rtt_ms})
        viewer = subprocess.Popen(
            [sys.executable, "-m", "nodes.browser", "--service", f"video.cdn.lab:{ports['a']}",
             "--plan", str(plan), "--work", str(tmp_path / "work"), "--raw-dir", str(tmp_path),
             "--host-rules", f"MAP video.cdn.lab {LIVE}, MAP a.cluster.cdn.lab {LIVE}, "
                             f"MAP b.cluster.cdn.lab {LIVE2}",
             "--events", str(tmp_path / "players.jsonl"),
             "--summary", str(tmp_path / "summary.json")],
            stderr=subprocess.PIPE, text=True)
        wait_for(lambda: sum(f.get("service_location") == "a" for f in fragments(raw)) >= 2,
                 "dash.js plays from pathway a", 60)
        put_cluster(rest_port, "a", "rtt", {"network": "127.0.0.0/8", "rtt_ms": 40})
        wait_for(lambda: any(f.get("service_location") == "b" for f in fragments(raw)),
                 "dash.js moved to b when steering ranked it first", 30)
        crowd = [socket.create_connection((LIVE2, ports["b"])) for _ in range(4)]
        _, stderr = viewer.communicate(timeout=120)
        assert viewer.returncode == 0, stderr
    finally:
        for connection in crowd:
            connection.close()
        stop_all(processes)
    kinds = [json.loads(line)["kind"] for line in raw.read_text().splitlines()]
    assert "ended" in kinds and "error" not in kinds, kinds[-5:]
    log = log_of(tmp_path / "players.jsonl")
    changes = [(e["pathway"], e["reason"]) for e in log if e["event"] == "pathway_change"]
    assert changes[:3] == [("a", "start"), ("b", "steering"), ("a", "duress")], changes
    assert any(e["event"] == "cmsd_duress" and e["pathway"] == "b" for e in log)
    answers = [e for e in log if e["event"] == "steering"]
    assert answers[0]["priority"] == ["a", "b"] and ["b", "a"] in \
        [a["priority"] for a in answers]
    # dash.js's steering requests reported the pathways it used (DASH-IF CTS 001 6.2)
    steers = [json.loads(line) for line in
              (tmp_path / "decisions.jsonl").read_text().splitlines() if '"steer"' in line]
    assert any(s["reported"] for s in steers), steers[-3:]
    summary = json.loads((tmp_path / "summary.json").read_text())["sessions"][0]
    assert summary["completed"], summary
