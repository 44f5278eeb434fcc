"""The REST API (JSON over HTTP, `Authorization: Bearer <token>`), the same operations as
DNS UPDATE plus reading the whole state. Names may be relative to the zone.

    GET    /state                         zone serial, records, clusters, RTT table, services
    POST   /records   {name, type, ttl, rdata: […]}   add RRs
    PUT    /records   {name, type, ttl, rdata: […]}   replace the RRset
    DELETE /records   {name[, type[, rdata]]}          delete RRs, an RRset, or the name
    POST   /batch     {ops: [{action, name, type, ttl, rdata}]}  all or nothing
    PUT    /clusters/<c>/rtt     {network: CIDR, rtt_ms}
    PUT    /clusters/<c>/load    {load}
    PUT    /clusters/<c>/health  {up: bool}

Answers: 200 {serial, changed}; 400 with the reason (and the DNS RCODE it maps to) for a
body or field that cannot be read; 401 without the token; 404 for other paths and unknown
clusters; 411 for a write without Content-Length; 413 for a body over 1 MiB. A refused
request changes nothing (a batch is all or nothing). A bug answers 500 with its reason
rather than dropping the connection.
"""

from __future__ import annotations

import hmac
import json
import math
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from nodes.common.httpjson import JsonHandler
from nodes.common.records import record_name
from nodes.dns.redirector import Redirector
from nodes.dns.zone import ACTIONS, Op, ZoneError

MAX_BODY = 1 << 20


class RestError(Exception):
    def __init__(self, status: int, message: str, rcode: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.rcode = rcode


def state_document(redirector: Redirector) -> dict[str, Any]:
    zone = redirector.zone
    view = zone.view
    rtt: dict[str, dict[str, float]] = {}
    for entry in view.networks:
        rtt[str(entry.network)] = {c: r.value for c, r in entry.rtt.items()}
    return {
        "zone": zone.origin, "serial": zone.serial,
        "services": {n: {"policy": s.policy, "ttl": s.ttl}
                     for n, s in redirector.config.services.items()},
        "clusters": {n: {"addresses": list(c.addresses), "up": c.up,
                         "load": c.load.value if c.load else None, "threshold": c.threshold}
                     for n, c in view.clusters.items()},
        "rtt_ms": rtt,
        "records": [{"name": n, "type": t, "ttl": r.ttl, "rdata": list(r.rdatas),
                     "updated": r.updated} for (n, t), r in sorted(zone.rrsets.items())],
    }


def _name(redirector: Redirector, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise RestError(400, "name must be a non-empty string")
    return name if name.endswith(".") else f"{name}.{redirector.config.zone}"


def _op(redirector: Redirector, action: Any, body: Any) -> Op:
    if not isinstance(body, dict):
        raise RestError(400, f"an operation must be a JSON object, not {body!r:.60}")
    if action not in ACTIONS:
        raise RestError(400, f"unknown action {action!r:.60} (known: {', '.join(ACTIONS)})")
    rdata = body.get("rdata", [])
    if isinstance(rdata, str):
        rdata = [rdata]
    if not isinstance(rdata, list) or not all(
            isinstance(r, str) or (_finite(r) and not isinstance(r, bool)) for r in rdata):
        raise RestError(400, "rdata must be a list of strings")
    ttl = body.get("ttl", 0)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 2**31 - 1:
        raise RestError(400, "ttl must be a whole number of seconds, 0 to 2147483647")
    rtype = body.get("type", "ANY")
    if not isinstance(rtype, str) or not rtype.isalnum():
        raise RestError(400, "type must be a record type such as A or TXT")
    return Op(action, _name(redirector, body.get("name")), rtype.upper(), ttl,
              tuple(str(r) for r in rdata))


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _measure(body: dict[str, Any], field: str) -> float:
    """A finite, non-negative number (an RTT or a load); 400 otherwise."""
    value = body.get(field)
    if isinstance(value, bool) or not _finite(value) or value < 0:
        raise RestError(400, f"{field} must be a finite number ≥ 0, not {value!r:.40}")
    return float(value)


def _cluster_op(redirector: Redirector, cluster: str, what: str, body: dict[str, Any]) -> Op:
    zone = redirector.config.zone
    if cluster not in redirector.zone.view.clusters:
        raise RestError(404, f"no such cluster {cluster!r:.60}")
    if what == "rtt":
        value = _measure(body, "rtt_ms")
        try:
            name = record_name("rtt", zone, cluster, str(body.get("network")))
        except ValueError as err:
            raise RestError(400, f"network must be a CIDR such as 10.0.1.0/24: {err}") from err
    elif what == "load":
        value = _measure(body, "load")
        name = record_name("load", zone, cluster)
    elif what == "health":
        if not isinstance(body.get("up"), bool):
            raise RestError(400, "up must be true or false")
        return Op("replace", record_name("health", zone, cluster), "TXT", 0,
                  ("up" if body["up"] else "down",))
    else:
        raise RestError(404, f"no such cluster resource {what!r:.60}")
    return Op("replace", name, "TXT", 0, (f"{value:g}",))


class RestHandler(JsonHandler):
    redirector: Redirector
    token: str

    def _body(self) -> dict[str, Any]:
        given = self.headers.get("Content-Length")
        if given is None:
            self.close_connection = True
            raise RestError(411, "a write needs a Content-Length header")
        try:
            length = int(given)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise RestError(400, f"Content-Length {given!r:.40} is not a length")
        if length > MAX_BODY:
            self.close_connection = True
            raise RestError(413, f"the body is over {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as err:
            raise RestError(400, f"body is not JSON: {err}") from err
        if not isinstance(body, dict):
            raise RestError(400, "body must be a JSON object")
        return body

    def _authorised(self) -> None:
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            raise RestError(401, "missing or wrong token (Authorization: Bearer <token>)")

    def _route(self, method: str) -> None:
        try:
            self._authorised()
            body = self._body() if method != "GET" else {}
            path = self.path.split("?")[0].rstrip("/")
            parts = path.strip("/").split("/")
            if method == "GET" and path == "/state":
                self._reply(200, state_document(self.redirector))
                return
            if path == "/records" and method in ("POST", "PUT", "DELETE"):
                if method == "DELETE":
                    action = "delete_rr" if body.get("rdata") else (
                        "delete_rrset" if body.get("type") else "delete_name")
                else:
                    action = "add" if method == "POST" else "replace"
                ops = [_op(self.redirector, action, body)]
            elif path == "/batch" and method == "POST":
                raw_ops = body.get("ops")
                if not isinstance(raw_ops, list) or not raw_ops:
                    raise RestError(400, "ops must be a non-empty list")
                ops = [_op(self.redirector, o.get("action") if isinstance(o, dict) else None, o)
                       for o in raw_ops]
            elif len(parts) == 3 and parts[0] == "clusters" and method == "PUT":
                ops = [_cluster_op(self.redirector, parts[1], parts[2], body)]
            else:
                raise RestError(404, f"no such resource: {method} {path}")
            before = self.redirector.zone
            after = self.redirector.commit(ops, f"rest {self.client_address[0]}")
            self._reply(200, {"serial": after.serial, "changed": after is not before})
        except ZoneError as err:
            self._reply(400, {"error": err.message, "rcode": err.rcode})
        except RestError as err:
            self._reply(err.status, {"error": err.message})
        except Exception as err:  # a bug: answer it, and log it, rather than drop the client
            self.redirector.log.emit("rest_error", path=self.path[:200], error=repr(err))
            self.close_connection = True
            self._reply(500, {"error": f"internal error: {err!r:.200}"})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _not_allowed(self) -> None:
        self.close_connection = True
        self._reply(405, {"error": f"{self.command} is not a method of this API "
                                   "(GET, POST, PUT, DELETE)"})

    do_HEAD = do_PATCH = do_OPTIONS = _not_allowed


def start_rest(redirector: Redirector, address: str, port: int,
               token: str) -> ThreadingHTTPServer:
    handler = type("BoundRestHandler", (RestHandler,), {"redirector": redirector,
                                                        "token": token})
    server = ThreadingHTTPServer((address, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="rest", daemon=True).start()
    return server
