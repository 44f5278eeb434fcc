"""The client side of DASH content steering for the Python player, as dash.js 5's
ContentSteeringController and BaseURL selection do it (DASH-IF CTS 001 v1.0 clause 6):

- pathways are the MPD's `BaseURL@serviceLocation`s, the `defaultServiceLocation` first
  until the steering server says otherwise;
- the steering server is asked before the first segment when `queryBeforeStart` is true,
  then again every `TTL` seconds (at `RELOAD-URI` once given), each request carrying
  `_DASH_pathway="a,b"` (the locations fetched from since the last request, highest
  throughput first) and `_DASH_throughput=t1,t2` (the mean of each one's last four
  throughput samples in bit/s, THROUGHPUT_SAMPLES as in dash.js);
- a 410 stops steering; a 429 waits `Retry-After` seconds; any other failure asks again
  after the TTL in force;
- `PATHWAY-PRIORITY` orders the pathways (one not listed is not used), `PATHWAY-CLONES`
  add pathways made from another's URL with `URI-REPLACEMENT.HOST` (and `PARAMS` as query);
- a segment is asked of the first pathway in priority that has not failed lately, so a new
  ranking takes effect at the next segment; a pathway a request failed on is passed over
  for AVOID_S (as dash.js blacklists the service location), the next one used; so is a
  pathway whose edge said it is in duress (CMSD `du`, nodes/client/player.py).

Every change of the pathway in use is reported with its reason, for the session's event
log: `start`; `steering` (the server's ranking changed since the pathway in use was
chosen, even if it changed back since: a pathway left out while its cluster was down and
ranked again once it is back); `failure` (the pathway in use failed); `duress` (its edge
sent CMSD `du`); `retry` (no answer changed the ranking, but a pathway passed over after a
failure or duress is used again once its hold ended).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin, urlsplit

from nodes.common.dash import Presentation

THROUGHPUT_SAMPLES = 4  # dash.js ContentSteeringController
# a server or pathway a request failed on is passed over this long after its last failure
# while another is left (also the player's hold on a failed server, nodes/client/player.py).
# dash.js blacklists a failed service location for the rest of the period (StreamProcessor:
# SERVICE_LOCATION_BASE_URL_BLACKLIST_ADD; BaseURLSelector then selects the next BaseURL);
# a hold keeps a long session from shunning a nearest cluster that came back.
AVOID_S = 10.0


@dataclass
class Pathway:
    name: str
    host: str  # host name (or address) of its BaseURL
    port: int
    prefix: str  # the BaseURL's path, ending in /
    params: dict[str, str] = field(default_factory=dict)  # a clone's PARAMS, as query

    @property
    def host_header(self) -> str:
        return self.host if self.port == 80 else f"{self.host}:{self.port}"

    def path(self, relative: str, query: str = "") -> str:
        """A path under the pathway's BaseURL, with `query` and the clone's PARAMS."""
        joined = "&".join(q for q in (query, urlencode(self.params)) if q)
        return f"{self.prefix}{relative}" + (f"?{joined}" if joined else "")


def _pathway(name: str, url: str, params: dict[str, str] | None = None) -> Pathway:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"pathway {name}: {url!r} is not an http:// URL")
    prefix = parts.path if parts.path.endswith("/") else f"{parts.path}/"
    return Pathway(name, parts.hostname, parts.port or 80, prefix, params or {})


class SteeringClient:
    def __init__(self, presentation: Presentation, mpd_url: str,
                 emit: Callable[..., None]) -> None:
        steering = presentation.steering
        if steering is None:
            raise ValueError("the MPD has no ContentSteering element")
        self.server_url = urljoin(mpd_url, steering.server_url)
        self.emit = emit
        self.pathways = {b.service_location: _pathway(b.service_location, urljoin(mpd_url,
                                                                                  b.url))
                         for b in presentation.base_urls if b.service_location}
        if not self.pathways:
            raise ValueError("the MPD steers but names no BaseURL@serviceLocation")
        default = steering.default_service_location
        self.priority = sorted(self.pathways, key=lambda p: p != default)
        self.query_before_start = steering.query_before_start
        self.ttl_s: float | None = None
        self.reload_url: str | None = None
        self.stopped = False  # a 410: steering ends for this session
        self.current: str | None = None
        self._reranked = False  # a steering answer changed the priority since `current`
        self.used: list[str] = []  # since the last steering request
        self.samples: dict[str, list[float]] = {}
        self.failed_at: dict[str, float] = {}
        self.failed_why: dict[str, str] = {}  # failure | duress

    # -- the request -------------------------------------------------------------------------
    def request_url(self) -> str:
        """The next steering request, with the client's report, as dash.js builds it."""
        url = self.reload_url or self.server_url
        used = sorted(self.used, key=lambda p: -self._mean(p))
        if not used:
            return url
        report = {"_DASH_pathway": f'"{",".join(used)}"',
                  "_DASH_throughput": ",".join(str(int(self._mean(p))) for p in used
                                               if self._mean(p) >= 0)}
        return url + ("&" if "?" in url else "?") + urlencode(report)

    def _mean(self, pathway: str) -> float:
        samples = self.samples.get(pathway)
        return sum(samples) / len(samples) if samples else -1.0

    def answered(self, status: int, body: bytes, retry_after: str | None) -> float | None:
        """Take a steering response; the seconds until the next request (None: never)."""
        self.used = [self.current] if self.current else []
        if status == 410:
            self.stopped = True
            self.emit("steering", status=410, stopped=True)
            return None
        if status == 429:
            wait = float(retry_after) if retry_after and retry_after.isdigit() else \
                self.ttl_s or 10.0
            self.emit("steering", status=429, retry_s=wait)
            return wait
        if status != 200:
            self.emit("steering", status=status, retry_s=self.ttl_s or 10.0)
            return self.ttl_s or 10.0
        try:
            data = json.loads(body)
            if int(data.get("VERSION", 0)) != 1:
                raise ValueError(f"VERSION {data.get('VERSION')!r}")
        except ValueError as err:
            self.emit("steering", status=200, error=f"unusable manifest: {err}")
            return self.ttl_s or 10.0
        if data.get("TTL") is not None:
            self.ttl_s = float(data["TTL"])
        if data.get("RELOAD-URI"):
            self.reload_url = urljoin(self.server_url, str(data["RELOAD-URI"]))
        for clone in data.get("PATHWAY-CLONES") or []:
            self._clone(clone)
        listed = [p for p in data.get("PATHWAY-PRIORITY") or [] if p in self.pathways]
        if listed:
            self._reranked |= listed != self.priority
            self.priority = listed
        self.emit("steering", status=200, priority=self.priority, ttl_s=self.ttl_s)
        return self.ttl_s

    def _clone(self, clone: dict[str, object]) -> None:
        base = self.pathways.get(str(clone.get("BASE-ID")))
        replacement = clone.get("URI-REPLACEMENT")
        if base is None or not clone.get("ID") or not isinstance(replacement, dict) or \
                not replacement.get("HOST"):
            return  # dash.js drops an invalid clone
        host = str(replacement["HOST"])
        url = f"{host}{base.prefix}" if host.startswith("http") else \
            f"http://{host}{base.prefix}"
        params = replacement.get("PARAMS")
        self.pathways[str(clone["ID"])] = _pathway(
            str(clone["ID"]), url, {str(k): str(v) for k, v in params.items()}
            if isinstance(params, dict) else None)

    # -- choosing --------------------------------------------------------------------------
    def choose(self, at: float | None = None) -> Pathway:
        """The pathway for the next request: the first in priority not failed lately
        (all failed: the first); a change of pathway is reported with its reason. `at`
        (a `time.monotonic()` reading, default now): judge the holds as at that moment, the
        one a `peek(at)` looked at, so a hold that ends in between does not send the
        request elsewhere than the one the player capped its choice for (a failure or a
        ranking that comes in between still counts)."""
        now = time.monotonic() if at is None else at
        name = self._first_usable(now)
        if name != self.current:
            reason = "start" if self.current is None else \
                self.failed_why[self.current] if self.current in self.failed_at and \
                now - self.failed_at[self.current] < AVOID_S else \
                "steering" if self._reranked else "retry"
            self.emit("pathway_change", pathway=name, previous=self.current, reason=reason,
                      priority=list(self.priority))
            self.current = name
            self._reranked = False
        if name not in self.used:
            self.used.append(name)
        return self.pathways[name]

    def peek(self, at: float | None = None) -> str:
        """The pathway the next request will use (`choose(at)`), nothing changed or
        reported."""
        return self._first_usable(time.monotonic() if at is None else at)

    def _first_usable(self, now: float) -> str:
        fresh = [p for p in self.priority if now - self.failed_at.get(p, -1e9) >= AVOID_S]
        return (fresh or self.priority)[0]

    def failed(self, pathway: str, why: str = "failure") -> None:
        """Pass the pathway over for AVOID_S: a request failed on it, or its edge is in
        duress."""
        self.failed_at[pathway] = time.monotonic()
        self.failed_why[pathway] = why

    def measured(self, pathway: str, throughput_bps: float) -> None:
        samples = self.samples.setdefault(pathway, [])
        samples.append(throughput_bps)
        del samples[:-THROUGHPUT_SAMPLES]

    def untried(self, tried: set[str]) -> bool:
        return any(p not in tried for p in self.priority)
