"""The edge's live load, sampled every interval and published three ways: `load.json`
(served by nginx at `/load`), a `load` event in the node's log, the overload flag file
nginx answers 302 on while it exists, and the duress flag (CMSD `du`, when the edge sends
CMSD) that exists while the cluster is over its threshold.

    egress_mbps       bytes the host sent on its interfaces (/proc/net/dev, as on the wire)
    connections       active client connections (nginx stub_status)
    requests_per_s    requests handled, from stub_status
    hit_ratio,        share of requests (and of bytes) served from the edge, over the last
    byte_hit_ratio    interval and since start (`*_total`), from the access log
    storage_bytes     bytes held in the cache or the filled store
    utilisation       egress_mbps / capacity_mbps — what the DNS redirector's load means
    span_s            the seconds the sample covers, up to its time
    utilisation_window  egress over the last `window_s` (the scenario's segment duration)
    window_s            over capacity, and the seconds it covers: a cluster's load over the
                        time in which each playing session asks for about one segment
    cluster_utilisation_window, cluster_capacity_mbps
                        the same for the cluster: this server and its siblings that answer

Overloaded = utilisation above `threshold` or connections above `max_connections`. The
overload flag is raised only while the cluster the redirects go to is under its own
threshold (its `/load`): redirecting to an overloaded cluster would only move the overload.
The duress flag exists while the cluster's `utilisation_window` is above `duress_above`
(the cluster's threshold in a scenario) or this server's connections above
`max_connections`, with no condition on others: it tells the player, who chooses where to
go. The cluster's (this server's and the `sibling_load_urls` that answer: their egress over
their capacity, `cluster_utilisation_window`), because a cluster's servers share its
uplink: one server carrying most of its sessions is not a cluster under duress. Judged over
a segment's time, not one sample's, because segments arrive in bursts: a server whose
sessions fit its capacity still swings from idle to over it from one second to the next.
A `capacity_mbps` file beside the load file, when present, replaces the capacity from the
next sample on (a scenario's `cluster_capacity` event writes it).
With CMSD, each sample also publishes the shares nginx's responses carry (etp, mb: the
cluster's capacity in force per video stream of the cluster, `nodes/edge/shares.py`), and
adds `streams` (this server's), `cluster_streams`, `etp_kbps` and `mb_kbps` to the sample.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any

from nodes.common.conventions import SHED_ABOVE
from nodes.common.events import EventLog, new_lines
from nodes.edge.shares import StreamShares

SERVED = {"HIT", "STALE", "REVALIDATED", "UPDATING"}
FETCHED = {"MISS", "EXPIRED", "BYPASS"}


def tx_bytes() -> int:
    """Bytes sent by this network namespace's interfaces, loopback aside."""
    total = 0
    for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
        name, _, counters = line.partition(":")
        if name.strip() != "lo":
            total += int(counters.split()[8])
    return total


def directory_bytes(path: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(directory, name)).st_blocks * 512
    return total


class SentWindow:
    """The send rate over the last `window_s`, from samples of the bytes sent so far taken
    every `interval_s`: the window reaches back as many whole intervals as it holds (at
    least one), to the sample that began them."""

    def __init__(self, window_s: float, interval_s: float) -> None:
        self._samples: deque[tuple[float, int]] = deque(
            maxlen=max(round(window_s / interval_s), 1) + 1)

    def add(self, t: float, sent: int) -> tuple[float, float]:
        """Take the sample at `t`; (Mbit/s sent over the window up to it, the window's
        seconds)."""
        self._samples.append((t, sent))
        began, sent_then = self._samples[0]
        span = max(t - began, 1e-6)
        return (sent - sent_then) * 8 / span / 1e6, span


def cluster_figures(own: dict[str, Any], siblings: list[dict[str, Any]]) -> dict[str, Any]:
    """The cluster's load from this server's sample and its siblings' latest: egress over
    the window summed over capacity summed, and (with CMSD) the streams of all of them."""
    servers = [own, *siblings]
    capacity = sum(float(s["capacity_mbps"]) for s in servers)
    figures: dict[str, Any] = {
        "cluster_utilisation_window": round(sum(
            float(s["utilisation_window"]) * float(s["capacity_mbps"]) for s in servers)
            / capacity, 4),
        "cluster_capacity_mbps": round(capacity, 6)}
    if "streams" in own:
        figures["cluster_streams"] = sum(int(s.get("streams") or 0) for s in servers)
    return figures


class LoadMonitor(threading.Thread):
    def __init__(self, cluster: str, access_log: Path, load_file: Path, flag: Path,
                 storage: Path, log: EventLog, capacity_mbps: float,
                 threshold: float = SHED_ABOVE, max_connections: int = 0,
                 interval_s: float = 1.0,
                 status_url: str = "http://127.0.0.1/nginx_status",
                 redirect_load_url: str | None = None,
                 duress_flag: Path | None = None, duress_above: float | None = None,
                 shares: StreamShares | None = None, window_s: float | None = None,
                 sibling_load_urls: tuple[str, ...] = ()) -> None:
        super().__init__(name="load-monitor", daemon=True)
        self.cluster = cluster
        self.access_log = access_log
        self.load_file = load_file
        self.flag = flag
        self.storage = storage
        self.log = log
        self.capacity_mbps = capacity_mbps
        self.threshold = threshold
        self.max_connections = max_connections
        self.interval_s = interval_s
        self.status_url = status_url
        self.redirect_load_url = redirect_load_url  # where overload redirects go: its /load
        self.duress_flag = duress_flag
        self.duress_above = threshold if duress_above is None else duress_above
        self.capacity_file = load_file.with_name("capacity_mbps")
        self.shares = shares
        self._window = SentWindow(window_s or interval_s, interval_s)
        self.sibling_load_urls = sibling_load_urls  # the cluster's other servers' /load
        self.stopping = threading.Event()
        self._offset = 0
        self._totals = {"hits": 0, "requests": 0, "hit_bytes": 0, "bytes": 0}
        self.latest: dict[str, Any] = {}

    def _status(self) -> tuple[int, int]:
        """(active connections, requests handled so far) from stub_status."""
        with urllib.request.urlopen(self.status_url, timeout=1.0) as response:
            lines = response.read().decode().splitlines()
        active = int(lines[0].split(":")[1])
        requests = int(lines[2].split()[2])
        return active, requests

    def _new_requests(self) -> dict[str, int]:
        counts = {"hits": 0, "requests": 0, "hit_bytes": 0, "bytes": 0}
        lines, self._offset = new_lines(self.access_log, self._offset)
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if self.shares is not None:
                self.shares.add(record)
            cache = record.get("cache") or ""
            if cache not in SERVED | FETCHED:
                continue
            counts["requests"] += 1
            counts["bytes"] += int(record.get("bytes", 0))
            if cache in SERVED:
                counts["hits"] += 1
                counts["hit_bytes"] += int(record.get("bytes", 0))
        return counts

    def _target_has_room(self) -> bool:
        """Whether the cluster overload redirects go to is under its own threshold (a
        target without a load endpoint, the origin, always has room)."""
        if not self.redirect_load_url:
            return True
        try:
            with urllib.request.urlopen(self.redirect_load_url, timeout=0.5) as response:
                target = json.loads(response.read())
            return float(target["utilisation"]) < float(target["threshold"])
        except (OSError, ValueError, KeyError, TypeError):
            return True

    def publish_shares(self) -> None:
        """The shares before the first sample (nginx serves from the start): this
        server's capacity, no stream yet."""
        if self.shares is not None:
            self.shares.publish(self._capacity(), self.duress_above, 0)

    def _siblings(self) -> list[dict[str, Any]]:
        """The figures `cluster_figures` adds up from the latest sample of each other
        server of the cluster that answers."""
        found = []
        for url in self.sibling_load_urls:
            try:
                with urllib.request.urlopen(url, timeout=0.3) as response:
                    sample = json.loads(response.read())
                found.append({"capacity_mbps": float(sample["capacity_mbps"]),
                              "utilisation_window": float(sample["utilisation_window"]),
                              "streams": int(sample.get("streams") or 0)})
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return found

    def _capacity(self) -> float:
        """The capacity in force: the file's, once a cut wrote one, else the configured."""
        with contextlib.suppress(OSError, ValueError):
            value = float(self.capacity_file.read_text())
            if value > 0:
                return value
        return self.capacity_mbps

    def run(self) -> None:
        last_t, last_tx = time.monotonic(), tx_bytes()
        self._window.add(last_t, last_tx)
        try:
            _active, last_requests = self._status()
        except OSError:
            last_requests = 0
        overloaded = False
        while not self.stopping.wait(self.interval_s):
            now, sent = time.monotonic(), tx_bytes()
            try:
                active, requests = self._status()
            except OSError:
                continue
            span = max(now - last_t, 1e-6)
            egress = (sent - last_tx) * 8 / span / 1e6
            new = self._new_requests()
            for key, value in new.items():
                self._totals[key] += value
            totals = self._totals
            capacity = self._capacity()
            window_mbps, window = self._window.add(now, sent)
            sample = {
                "cluster": self.cluster, "egress_mbps": round(egress, 3),
                "connections": max(active - 1, 0),  # our own status request aside
                "requests_per_s": round(max(requests - last_requests - 1, 0) / span, 2),
                "hit_ratio": _ratio(new["hits"], new["requests"]),
                "byte_hit_ratio": _ratio(new["hit_bytes"], new["bytes"]),
                "hit_ratio_total": _ratio(totals["hits"], totals["requests"]),
                "byte_hit_ratio_total": _ratio(totals["hit_bytes"], totals["bytes"]),
                "storage_bytes": directory_bytes(self.storage),
                "utilisation": round(egress / capacity, 4),
                "capacity_mbps": capacity, "threshold": self.threshold,
                "span_s": round(span, 3),
                "utilisation_window": round(window_mbps / capacity, 4),
                "window_s": round(window, 3),
            }
            if self.shares is not None:
                sample["streams"] = self.shares.count(time.time())
            sample |= cluster_figures(sample, self._siblings())
            if self.shares is not None:
                sample |= self.shares.publish(sample["cluster_capacity_mbps"],
                                              self.duress_above, sample["cluster_streams"])
            now_over = sample["utilisation"] > self.threshold or (
                self.max_connections > 0 and sample["connections"] > self.max_connections)
            sample["overloaded"] = now_over
            duress = sample["cluster_utilisation_window"] > self.duress_above or (
                self.max_connections > 0 and sample["connections"] > self.max_connections)
            if self.duress_flag is not None and duress != self.duress_flag.exists():
                if duress:
                    self.duress_flag.touch()
                else:
                    self.duress_flag.unlink(missing_ok=True)
                self.log.emit("duress_on" if duress else "duress_off",
                              cluster_utilisation_window=sample["cluster_utilisation_window"],
                              connections=sample["connections"])
            if now_over and not self._target_has_room():
                sample["redirect_blocked"] = "the redirect target is over its threshold"
                now_over = False
            if now_over != overloaded:
                if now_over:
                    self.flag.touch()
                else:
                    self.flag.unlink(missing_ok=True)
                overloaded = now_over
                self.log.emit("overload_on" if now_over else "overload_off",
                              utilisation=sample["utilisation"],
                              connections=sample["connections"])
            tmp = self.load_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(sample))
            os.replace(tmp, self.load_file)
            self.log.emit("load", **sample)
            self.latest = sample
            last_t, last_tx, last_requests = now, sent, requests
        self.flag.unlink(missing_ok=True)
        if self.duress_flag is not None:
            self.duress_flag.unlink(missing_ok=True)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
