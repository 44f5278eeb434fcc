"""The content steering server, run by the real redirector process on loopback: its manifests
rank clusters exactly as the redirector's DNS answers do for the same client, follow RTT
and health updates made over the REST API, keep a session on its current pathway within
`stick_ms`, demote a pathway the client measured slow, clone a cluster the MPD does not
name, and answer 410, 429 and 400 as DASH-IF CTS 001 and dash.js expect."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from nodes.dns.config import ConfigError, parse_config
from tests.dns.conftest import RunningRedirector, free_port, start_redirector

STEERING = {"ttl": 10, "services": ["video"], "stick_ms": 2, "rate_per_s": 1000,
            "pathways": ["edge_a", "edge_x"], "demote_below_bps": 1_000_000}


def steer(port: int, query: str = "", service: str = "video"
          ) -> tuple[int, dict[str, Any], dict[str, str]]:
    url = f"http://127.0.0.1:{port}/steer/{service}" + (f"?{query}" if query else "")
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


def running(tmp_path: Path, **steering: Any) -> tuple[RunningRedirector, int]:
    port = free_port()
    redirector = start_redirector(tmp_path, {
        "services": {"video": {"policy": "min_rtt", "ttl": 7},
                     "live": {"policy": "min_rtt", "ttl": 7}},
        "steering": STEERING | {"port": port} | steering})
    return redirector, port


def rtts(redirector: RunningRedirector, **rtt_ms: float) -> None:
    for cluster, value in rtt_ms.items():
        assert redirector.rest("PUT", f"/clusters/{cluster}/rtt",
                               {"network": "127.0.0.0/8", "rtt_ms": value})[0] == 200


def dns_cluster(redirector: RunningRedirector) -> str:
    addresses = set(redirector.short("video.cdn.lab.", "A"))
    return {"edge_a": "edge_a", "edge_x": "edge_x"}[
        "edge_a" if addresses == {"10.9.0.2", "10.9.0.3"} else "edge_x"
        if addresses == {"10.9.1.2"} else "?"]


def stop(redirector: RunningRedirector) -> None:
    redirector.process.terminate()
    assert redirector.process.wait(10) == 0, (redirector.directory / "stderr").read_text()


def test_steering_ranks_as_dns_answers_and_follows_updates(tmp_path: Path) -> None:
    redirector, port = running(tmp_path)
    try:
        rtts(redirector, edge_a=5, edge_x=20)
        status, first, headers = steer(port)
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
        assert first["VERSION"] == 1 and first["TTL"] == 10
        assert first["PATHWAY-PRIORITY"] == ["edge_a", "edge_x"] and \
            dns_cluster(redirector) == "edge_a", "one decision for DNS and steering"
        assert "PATHWAY-CLONES" not in first, "both clusters are MPD pathways"
        reload = first["RELOAD-URI"]
        assert reload.startswith("/steer/video?session=s")

        rtts(redirector, edge_a=30)  # the nearest cluster got far: both move
        status, moved, _ = steer(port, reload.partition("?")[2] + '&_DASH_pathway="edge_a"'
                                 "&_DASH_throughput=4000000")
        assert status == 200 and moved["PATHWAY-PRIORITY"] == ["edge_x", "edge_a"]
        assert moved["RELOAD-URI"] == reload, "the session is kept across reloads"
        assert dns_cluster(redirector) == "edge_x"

        rtts(redirector, edge_a=21)  # within stick_ms of the best: the session stays
        _, kept, _ = steer(port, '_DASH_pathway="edge_a"&_DASH_throughput=4000000')
        assert kept["PATHWAY-PRIORITY"] == ["edge_a", "edge_x"]
        _, fresh, _ = steer(port)  # a session with no pathway yet gets the best
        assert fresh["PATHWAY-PRIORITY"] == ["edge_x", "edge_a"]

        # measured slow by the client: demoted below the others
        _, slow, _ = steer(port, '_DASH_pathway="edge_x,edge_a"'
                                 "&_DASH_throughput=500000,300000")
        assert slow["PATHWAY-PRIORITY"] == ["edge_x", "edge_a"], "all slow: none demoted"
        rtts(redirector, edge_a=30)  # not sticky any more, but edge_x measured slow
        _, demoted, _ = steer(port, '_DASH_pathway="edge_a,edge_x"'
                                    "&_DASH_throughput=3000000,500000")
        assert demoted["PATHWAY-PRIORITY"] == ["edge_a", "edge_x"]

        assert redirector.rest("PUT", "/clusters/edge_x/health", {"up": False})[0] == 200
        _, down, _ = steer(port)
        assert down["PATHWAY-PRIORITY"] == ["edge_a"], "a cluster down is not offered"
    finally:
        stop(redirector)
    lines = [e for e in redirector.events("decisions.jsonl") if e["event"] == "steer"]
    assert [e["priority"] for e in lines] == [
        ["edge_a", "edge_x"], ["edge_x", "edge_a"], ["edge_a", "edge_x"],
        ["edge_x", "edge_a"], ["edge_x", "edge_a"], ["edge_a", "edge_x"], ["edge_a"]]
    assert [e["steer_reason"] for e in lines] == [
        "lowest_rtt", "lowest_rtt", "sticky", "lowest_rtt", "lowest_rtt", "demoted",
        "failover"]
    assert lines[1]["reported"] == ["edge_a"] and lines[1]["reported_bps"] == [4000000.0]
    assert lines[1]["session"] == lines[0]["session"] != lines[3]["session"]
    assert all(e["client"] == "127.0.0.1" and e["candidates"] for e in lines)


def test_a_cluster_outside_the_mpd_is_offered_as_a_clone(tmp_path: Path) -> None:
    redirector, port = running(tmp_path, pathways=["edge_a"])
    try:
        rtts(redirector, edge_a=20, edge_x=5)
        _, body, _ = steer(port)
        assert body["PATHWAY-PRIORITY"] == ["edge_x", "edge_a"]
        assert body["PATHWAY-CLONES"] == [{"BASE-ID": "edge_a", "ID": "edge_x",
                                           "URI-REPLACEMENT": {
                                               "HOST": "edge_x.cluster.cdn.lab",
                                               "PARAMS": {}}}]
        assert set(redirector.short("edge_x.cluster.cdn.lab.", "A")) == {"10.9.1.2"}, \
            "the clone's host resolves to its cluster"
    finally:
        stop(redirector)


def test_refusals_are_the_ones_players_understand(tmp_path: Path) -> None:
    redirector, port = running(tmp_path, rate_per_s=2)
    try:
        assert steer(port, service="live")[0] == 410, "not steered: the client stops"
        assert steer(port, service="nope")[0] == 410
        status, body, _ = steer(port, "_DASH_throughput=fast")
        assert status == 400 and "not a number" in body["error"]
        statuses = [steer(port) for _ in range(4)]
        assert [s[0] for s in statuses][:1] == [200] and statuses[-1][0] == 429
        assert int(statuses[-1][2]["Retry-After"]) >= 1
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/steer", timeout=5) as _:
            raise AssertionError("a path without a service is not found")
    except urllib.error.HTTPError as err:
        assert err.code == 404
    finally:
        stop(redirector)


def test_a_bad_steering_section_names_the_field() -> None:
    base = {"zone": "cdn.lab.", "services": {"video": {}},
            "clusters": {"edge_a": {"addresses": ["10.9.0.2"]}}}
    for steering, words in [
            ({"port": 8054, "pathways": ["edge_q"]}, "steering.pathways: 'edge_q' is not"),
            ({"port": 8054, "services": ["live"]}, "live.cdn.lab. is not a service"),
            ({"port": 8054, "ttl": 0}, "steering.ttl 0 is outside"),
            ({"port": 8054, "colour": 1}, "unknown field(s) colour"),
            ({"ttl": 5}, "steering.port is required")]:
        with pytest.raises(ConfigError) as caught:
            parse_config(base | {"steering": steering}, "dns.yaml")
        assert words in str(caught.value), str(caught.value)
    settings = parse_config(base | {"steering": {"port": 8054}}).steering
    assert settings is not None and settings.services is None and settings.ttl_s == 10
