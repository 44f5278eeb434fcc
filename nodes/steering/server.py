"""The steering server's HTTP front end, run by the redirector's program beside its UDP, TCP
and REST front ends, so steering reads the very zone snapshot DNS answers from (the probes'
RTT and load updates reach both at once) and decides with the same policy code.

    GET /steer/<service>?session=ID&_DASH_pathway="a,b"&_DASH_throughput=t1,t2

Answers (DASH-IF CTS 001 clause 7 and dash.js's ContentSteeringController):
200 the steering manifest (`nodes/steering/manifest.py`), its RELOAD-URI carrying the
session (a new one is given when the request has none); 410 Gone for a service that is
not steered (the client stops asking); 429 with Retry-After when more than `rate_per_s`
requests a second arrive (the client asks again after that many seconds); 503 with
Retry-After when no cluster is up; 400 for a query it cannot read; 404 for other paths.
Every answer is logged in the decision log as a `steer` line: the client, session, what it
reported, the priority given and the policy's decision with its candidates.
CORS headers let a browser's player read the manifest from another origin.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, urlsplit

from nodes.dns.redirector import Redirector
from nodes.steering.manifest import QueryError, SteeringSettings, manifest, rank, read_query

PATH = "/steer/"


class RateLimit:
    """A token bucket: `rate` requests a second, bursts of as many."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        """0 when a request may be answered, else the seconds until one may."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


class SteeringServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, redirector: Redirector, settings: SteeringSettings) -> None:
        super().__init__((settings.address, settings.port), SteeringHandler)
        self.redirector = redirector
        self.settings = settings
        self.limit = RateLimit(settings.rate_per_s)
        self.sessions = itertools.count(1)


class SteeringHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SteeringServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_OPTIONS(self) -> None:  # a browser's preflight
        self._send(204, b"", {"Access-Control-Allow-Methods": "GET, OPTIONS",
                              "Access-Control-Max-Age": "86400"})

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if not parts.path.startswith(PATH) or "/" in parts.path[len(PATH):]:
            self._json(404, {"error": f"no steering at {parts.path}; ask {PATH}<service>"})
            return
        redirector, settings = self.server.redirector, self.server.settings
        name = parts.path[len(PATH):]
        service = name if name.endswith(".") else f"{name}.{redirector.config.zone}"
        if service not in redirector.config.services or \
                (settings.services is not None and service not in settings.services):
            self._json(410, {"error": f"{service} is not steered here"})
            return
        wait = self.server.limit.take()
        if wait > 0:
            self._json(429, {"error": "too many steering requests"},
                       {"Retry-After": str(max(1, math.ceil(wait)))})
            return
        try:
            reported, session = read_query(parts.query)
        except QueryError as err:
            self._json(400, {"error": str(err)})
            return
        session = session or f"s{next(self.server.sessions)}"
        client = self.client_address[0]
        decision = redirector.decide(service, int(ipaddress.IPv4Address(client)))
        ranking = rank(decision, reported, settings)
        redirector.decisions.answer(client, None, service, decision, event="steer", more={
            "session": session, "priority": list(ranking.priority), "steer_reason":
            ranking.reason, "reported": list(reported.pathways),
            "reported_bps": list(reported.throughput_bps)})
        if not ranking.priority:
            self._json(503, {"error": "no cluster is up"},
                       {"Retry-After": str(settings.ttl_s)})
            return
        reload_uri = f"{PATH}{quote(name)}?session={quote(session)}"
        self._json(200, manifest(ranking, settings, reload_uri, redirector.config.zone))

    def _json(self, status: int, body: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode(),
                   {"Content-Type": "application/json", "Cache-Control": "no-store",
                    **(headers or {})})

    def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in {"Access-Control-Allow-Origin": "*",
                           "Access-Control-Expose-Headers": "Retry-After", **headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start_steering(redirector: Redirector, settings: SteeringSettings) -> SteeringServer:
    server = SteeringServer(redirector, settings)
    threading.Thread(target=server.serve_forever, name="steering", daemon=True).start()
    redirector.log.emit("steering_ready", address=settings.address, port=settings.port,
                        ttl_s=settings.ttl_s)
    return server
