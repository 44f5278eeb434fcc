"""A redirector running as its own process on loopback (no root needed: a high port), with
a fresh TSIG key and REST token, for tests with the real dig, nsupdate and dnsperf."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


@dataclass
class RunningRedirector:
    port: int
    rest_port: int
    secret: str
    token: str
    directory: Path
    process: subprocess.Popen[bytes]

    def dig(self, *args: str) -> str:
        return subprocess.run(["dig", "@127.0.0.1", "-p", str(self.port), "+time=2",
                               "+tries=1", *args], capture_output=True, text=True,
                              check=False).stdout

    def short(self, name: str, *args: str) -> list[str]:
        lines = self.dig("+short", name, *args).splitlines()
        return [word for line in lines if not line.startswith(";") for word in line.split()]

    def serial(self) -> int:
        return int(self.short("cdn.lab.", "SOA")[2])

    def nsupdate(self, lines: list[str], secret: str | None = None,
                 signed: bool = True) -> subprocess.CompletedProcess[str]:
        script = "\n".join([f"server 127.0.0.1 {self.port}", "zone cdn.lab.", *lines,
                            "send", ""])
        argv = ["nsupdate"]
        if signed:
            key_file = self.directory / "nsupdate.key"
            key_file.write_text(f'key "cdnlab-key." {{ algorithm hmac-sha256; '
                                f'secret "{secret or self.secret}"; }};\n')
            argv += ["-k", str(key_file)]
        return subprocess.run(argv, input=script, capture_output=True, text=True,
                              check=False, timeout=20)

    def rest(self, method: str, path: str, body: dict[str, Any] | None = None,
             token: str | None = None) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.rest_port}{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token if token is not None else self.token}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def events(self, name: str = "events.jsonl") -> list[dict[str, Any]]:
        path = self.directory / name
        return [json.loads(line) for line in path.read_text().splitlines()] if \
            path.exists() else []


def start_redirector(directory: Path, extra: dict[str, Any] | None = None
                     ) -> RunningRedirector:
    port, rest_port = free_port(), free_port()
    secret = base64.b64encode(os.urandom(32)).decode()
    token = base64.b16encode(os.urandom(8)).decode()
    config = {"zone": "cdn.lab.", "listen": {"address": "127.0.0.1", "port": port},
              "nameserver": {"name": "ns1", "address": "127.0.0.1"},
              "services": {"video": {"policy": "min_rtt", "ttl": 7}},
              "clusters": {"edge_a": {"addresses": ["10.9.0.2", "10.9.0.3"]},
                           "edge_x": {"addresses": ["10.9.1.2"]}},
              "tsig": {"name": "cdnlab-key", "secret": secret},
              "rest": {"port": rest_port, "token": token}, "seed": 3} | (extra or {})
    path = directory / "dns.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen([sys.executable, "-m", "nodes.dns", "--config", str(path),
                                "--events", str(directory / "events.jsonl"),
                                "--decisions", str(directory / "decisions.jsonl")],
                               stderr=open(directory / "stderr", "wb"))  # noqa: SIM115
    running = RunningRedirector(port, rest_port, secret, token, directory, process)
    deadline = time.monotonic() + 10
    while not running.short("cdn.lab.", "SOA"):
        assert process.poll() is None, (directory / "stderr").read_text()
        assert time.monotonic() < deadline, "redirector did not start"
        time.sleep(0.1)
    return running


@pytest.fixture
def redirector(tmp_path: Path) -> Iterator[RunningRedirector]:
    running = start_redirector(tmp_path)
    yield running
    running.process.terminate()
    assert running.process.wait(10) == 0, (tmp_path / "stderr").read_text()
