"""The push fill agent at the origin (`python -m nodes.origin fill --plan FILE`): places
titles on push-mode edge clusters during an off-peak window, at a capped rate.

Per cluster, the titles to place are taken in the plan's popularity ranking while they fit
the cluster's storage (sizes from the catalog). From the window's start (scenario seconds
after --epoch) every file of every chosen title is PUT to each server's fill endpoint —
segments first, the MPD last, so a title appears complete or not at all — through a token
bucket at the cluster's rate cap. Each file goes with its SHA-256; a file the server
already holds is skipped, a partial one resumed from the byte the server has. A broken
connection is retried (resuming) until the window closes. Events: `fill_start`,
`fill_title`, `fill_error`, `fill_done` (bytes, seconds, measured Mbit/s, complete or not).

Plan (YAML):
    store: /path/to/origin/store
    window: {start_s: 10, end_s: 300}
    ranking: [title, …]                   # most popular first
    clusters:
      - {name: edge_a, servers: ["10.0.3.2:8081", …], capacity_mb: 500, rate_mbps: 20}
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodes.common.conventions import STEERED_MPD
from nodes.common.events import EventLog
from nodes.common.files import sha256_file

CHUNK = 1 << 15
PARALLEL = 8  # files in flight per cluster


class WindowClosed(Exception):
    pass


class TokenBucket:
    """`rate` bytes per second with a small burst; `take(n)` sleeps until n are available."""

    def __init__(self, rate_bytes_s: float, burst: float = 256 * 1024) -> None:
        self.rate = rate_bytes_s
        self.burst = burst
        self.tokens = burst
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def take(self, amount: int) -> None:
        with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
                self.at = now
                if self.tokens >= amount:
                    self.tokens -= amount
                    return
                time.sleep((amount - self.tokens) / self.rate)


@dataclass(frozen=True)
class ClusterPlan:
    name: str
    servers: tuple[str, ...]
    capacity_bytes: int
    rate_mbps: float


def title_files(entry: dict[str, Any], steered: bool = False) -> list[str]:
    """Every file of a title, relative to the store: segments first, the MPDs last
    (with `steered`, the steered MPD too)."""
    title = entry["title"]
    files: list[str] = []
    reps = [r for p in entry["profiles"].values() for r in p["representations"]] + \
        entry.get("audio", [])
    for rep in reps:
        files.append(f"{title}/{rep['init']}")
        start = int(rep.get("start_number", 1))
        for k in range(len(rep["segment_bytes"])):
            media = rep["media"].replace("$Number%05d$", f"{start + k:05d}")
            files.append(f"{title}/{media}")
    files.append(f"{title}/manifest.mpd")
    if steered:
        files.append(f"{title}/{STEERED_MPD}")
    return files


def choose_titles(catalog: dict[str, Any], ranking: list[str], capacity: int) -> list[str]:
    chosen, used = [], 0
    for title in ranking:
        entry = catalog["titles"].get(title)
        if entry is None:
            continue
        size = int(entry["bytes"]) + 16 * 1024  # the MPD and some slack
        if used + size <= capacity:
            chosen.append(title)
            used += size
    return chosen


class ClusterFill:
    def __init__(self, plan: ClusterPlan, store: Path, titles: list[str],
                 catalog: dict[str, Any], deadline: float, log: EventLog) -> None:
        self.plan = plan
        self.store = store
        self.titles = titles
        self.catalog = catalog
        self.deadline = deadline
        self.log = log
        self.bucket = TokenBucket(plan.rate_mbps * 1e6 / 8)
        self.sent = 0
        self.skipped = 0
        self._count = threading.Lock()
        self._local = threading.local()

    def _connection(self, server: str) -> http.client.HTTPConnection:
        """This worker's kept-alive connection to `server` (no handshake or slow start per
        file)."""
        held: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault(
            "connections", {})
        if server not in held:
            host, port = server.rsplit(":", 1)
            held[server] = http.client.HTTPConnection(host, int(port), timeout=10)
        return held[server]

    def _drop(self, server: str) -> None:
        conn = self._local.__dict__.get("connections", {}).pop(server, None)
        if conn is not None:
            conn.close()

    def _status(self, server: str, path: str) -> dict[str, Any]:
        conn = self._connection(server)
        conn.request("GET", f"/fill-status/{path}")
        return dict(json.loads(conn.getresponse().read()))

    def _put(self, server: str, path: str, local: Path, digest: str, offset: int) -> None:
        total = local.stat().st_size
        conn = self._connection(server)
        conn.putrequest("PUT", f"/fill/{path}")
        conn.putheader("Content-Length", str(total - offset))
        conn.putheader("Content-Range", f"bytes {offset}-{max(total - 1, offset)}/{total}")
        conn.putheader("X-SHA256", digest)
        conn.endheaders()
        with local.open("rb") as source:
            source.seek(offset)
            while block := source.read(CHUNK):
                if time.time() > self.deadline:
                    raise WindowClosed()
                self.bucket.take(len(block))
                conn.send(block)
                with self._count:
                    self.sent += len(block)
        response = conn.getresponse()
        answer = json.loads(response.read() or b"{}")
        if response.status not in (200, 201) or not answer.get("complete"):
            raise OSError(f"{server} answered {response.status}: {answer}")

    def send_file(self, server: str, path: str) -> None:
        local = self.store / path
        digest = sha256_file(local)
        delay = 0.2
        while True:
            if time.time() > self.deadline:
                raise WindowClosed()
            try:
                status = self._status(server, path)
                if status.get("complete"):
                    with self._count:
                        self.skipped += local.stat().st_size
                    return
                self._put(server, path, local, digest, int(status.get("size", 0)))
                return
            except (OSError, http.client.HTTPException, ValueError) as err:
                self._drop(server)
                self.log.emit("fill_error", cluster=self.plan.name, server=server, path=path,
                              error=str(err))
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def run(self) -> dict[str, Any]:
        started = time.time()
        complete = True
        try:
            with ThreadPoolExecutor(PARALLEL, thread_name_prefix=f"fill-{self.plan.name}") \
                    as pool:
                for title in self.titles:
                    files = title_files(self.catalog["titles"][title],
                                        (self.store / title / STEERED_MPD).exists())
                    for server in self.plan.servers:
                        title_started = time.time()
                        # segments in parallel (the bucket sets the pace; round trips
                        # overlap), then the MPD: the title appears when it is complete
                        for future in [pool.submit(self.send_file, server, path)
                                       for path in files[:-1]]:
                            future.result()
                        self.send_file(server, files[-1])
                        self.log.emit("fill_title", cluster=self.plan.name, server=server,
                                      title=title,
                                      seconds=round(time.time() - title_started, 3))
        except WindowClosed:
            complete = False
        seconds = time.time() - started
        result = {"cluster": self.plan.name, "titles": self.titles, "bytes": self.sent,
                  "skipped_bytes": self.skipped, "seconds": round(seconds, 3),
                  "rate_mbps": round(self.sent * 8 / seconds / 1e6, 3) if seconds else 0.0,
                  "cap_mbps": self.plan.rate_mbps, "complete": complete}
        self.log.emit("fill_done", **result)
        return result


def run_fill(plan: dict[str, Any], log: EventLog, epoch: float) -> list[dict[str, Any]]:
    store = Path(plan["store"])
    catalog = json.loads((store / "catalog.json").read_text())
    window = plan.get("window") or {}
    start = epoch + float(window.get("start_s", 0))
    deadline = epoch + float(window.get("end_s", 1e9))
    ranking = list(plan.get("ranking") or sorted(catalog["titles"]))
    fills = []
    for cluster in plan["clusters"]:
        spec = ClusterPlan(cluster["name"], tuple(cluster["servers"]),
                           int(float(cluster.get("capacity_mb", 1e6)) * 1e6),
                           float(cluster.get("rate_mbps", 100)))
        titles = choose_titles(catalog, ranking, spec.capacity_bytes)
        fills.append(ClusterFill(spec, store, titles, catalog, deadline, log))
    wait = start - time.time()
    if wait > 0:
        log.emit("fill_waiting", seconds=round(wait, 3))
        time.sleep(wait)
    for fill in fills:
        log.emit("fill_start", cluster=fill.plan.name, titles=fill.titles,
                 servers=list(fill.plan.servers), cap_mbps=fill.plan.rate_mbps,
                 bytes=sum(int(catalog["titles"][t]["bytes"]) for t in fill.titles))
    results: list[dict[str, Any]] = [{} for _ in fills]

    def work(index: int) -> None:
        results[index] = fills[index].run()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(fills))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
