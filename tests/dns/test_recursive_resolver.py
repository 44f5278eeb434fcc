"""The resolver node program (real unbound) in front of the real redirector, on loopback:
it answers recursive queries for the zone from the redirector and then from its cache for
the answer's TTL, sends EDNS Client Subnet only when told to, refuses names outside the
zone, and reports unbound's own counters. The players' stub resolver asks nameservers in
turn as glibc does."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from nodes.client.dnsclient import StubConfig, read_resolv_conf, resolve
from nodes.resolver.unbound_conf import ResolverConfig, render
from tests.dns.conftest import RunningRedirector, free_port


def start_resolver(tmp_path: Path, name: str, address: str, authority: int,
                   ecs: bool) -> tuple[subprocess.Popen[bytes], int, Path]:
    port, events = free_port(), tmp_path / f"{name}.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "nodes.resolver", "serve", "--address", address, "--port",
         str(port), "--authority", f"127.0.0.1:{authority}", "--work", str(tmp_path / name),
         "--events", str(events), "--interval", "0.3", *(["--ecs"] if ecs else [])],
        stderr=open(tmp_path / f"{name}.stderr", "wb"))  # noqa: SIM115
    deadline = time.monotonic() + 20
    while not (events.exists() and '"ready"' in events.read_text()):
        assert process.poll() is None, (tmp_path / f"{name}.stderr").read_text()
        assert time.monotonic() < deadline, "unbound did not answer"
        time.sleep(0.1)
    return process, port, events


def dig(address: str, port: int, *args: str) -> str:
    return subprocess.run(["dig", f"@{address}", "-p", str(port), "+time=2", "+tries=1",
                           *args], capture_output=True, text=True, check=False).stdout


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_unbound_caches_for_the_ttl_and_sends_the_client_subnet_when_told(
        redirector: RunningRedirector, tmp_path: Path) -> None:
    started = [start_resolver(tmp_path, "plain", "127.0.0.21", redirector.port, False),
               start_resolver(tmp_path, "ecs", "127.0.0.22", redirector.port, True)]
    try:
        (_, plain, plain_events), (_, ecs, ecs_events) = started
        for _ in range(3):
            assert "video.cdn.lab.\t" in dig("127.0.0.21", plain, "video.cdn.lab", "A")
            assert "video.cdn.lab.\t" in dig("127.0.0.22", ecs, "video.cdn.lab", "A")
        assert "status: REFUSED" in dig("127.0.0.21", plain, "example.org", "A"), \
            "names outside the zone never leave the emulated network"
        time.sleep(1.0)  # the next stats events
    finally:
        for process, _, _ in started:
            process.terminate()
            assert process.wait(10) == 0
    redirector.process.terminate()  # its decision log is written out at exit
    assert redirector.process.wait(10) == 0
    decisions = [a for a in redirector.events("decisions.jsonl") if a["event"] == "answer"]
    plain_asks = [a for a in decisions if a["client"] == "127.0.0.21"]
    ecs_asks = [a for a in decisions if a["client"] == "127.0.0.22"]
    assert len(plain_asks) == 1 and plain_asks[0]["subnet"] is None, "cached for the TTL"
    assert len(ecs_asks) == 1 and ecs_asks[0]["subnet"] == "127.0.0.0/24", \
        "the asking client's /24 (RFC 7871 §11.1's default source prefix)"
    final = {name: [e for e in lines(path) if e["event"] == "stats"][-1]
             for name, path in (("plain", plain_events), ("ecs", ecs_events))}
    # (the REFUSED name is answered locally too, so it may count as a cache hit)
    assert final["plain"]["cache_hits"] >= 2 and final["plain"]["ecs_queries"] == 0
    assert final["ecs"]["ecs_queries"] >= 3 and final["ecs"]["ecs_cache_hits"] == 2
    assert final["plain"]["final"] and final["ecs"]["final"]


def test_a_config_unbound_rejects_and_an_overlong_socket_path_are_named(
        tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="longer than a Unix socket path"):
        render(ResolverConfig("127.0.0.1", "cdn.lab.", "127.0.0.1", work=tmp_path / ("x" * 120)))
    done = subprocess.run([sys.executable, "-m", "nodes.resolver", "serve", "--address",
                           "not-an-address", "--authority", "127.0.0.1", "--work",
                           str(tmp_path / "bad")], capture_output=True, text=True,
                          check=False, timeout=30)
    assert done.returncode == 2 and "unbound rejects" in done.stderr


def test_the_stub_resolver_asks_nameservers_in_turn_as_glibc_does(
        redirector: RunningRedirector) -> None:
    stub = read_resolv_conf("# a comment\nnameserver 127.0.0.9\nnameserver 127.0.0.1\n"
                            "nameserver 127.0.0.10\nnameserver 127.0.0.11\n"
                            "options timeout:1 attempts:3 rotate\n")
    assert stub == StubConfig((("127.0.0.9", 53), ("127.0.0.1", 53), ("127.0.0.10", 53)),
                              1.0, 3), "three nameservers at most, options read"
    failed: list[str] = []
    live = StubConfig((("127.0.0.9", free_port()), ("127.0.0.1", redirector.port)), 1.0, 2)
    answer = asyncio.run(resolve("video.cdn.lab", live, lambda s, _why: failed.append(s)))
    assert answer.server == "127.0.0.1" and answer.addresses and failed == ["127.0.0.9"]
    with pytest.raises(ValueError, match="no nameserver"):
        read_resolv_conf("options timeout:1\n")
