"""One live DASH session on an emulated host, in real time; many run in one asyncio loop.

resolve the service name (real DNS query, TTL honoured) → fetch the MPD from the chosen
server → per segment: wait while the buffer is full, ask the ABR, re-resolve if the TTL
expired, download over a kept-alive connection (following redirects), add it to the
buffer. A failed request marks the answer stale and re-resolves before retrying. Every
segment is logged: time, representation, bitrate, bytes, download time, throughput, buffer,
server, cluster and the edge's cache-status header.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

from nodes.client.abr import Observations
from nodes.client.algorithms import make_abr
from nodes.client.buffer import PlaybackBuffer
from nodes.client.dnsclient import Resolution, ResolveError, resolve_a
from nodes.client.http import HttpClient, HttpError
from nodes.client.qoe import session_metrics
from nodes.common.conventions import ABR_DEFAULT, MAX_BUFFER_S
from nodes.common.dash import ManifestError, Representation, parse_mpd
from nodes.common.events import EventLog

CACHE_HEADERS = ("x-cache-status", "x-cache")


@dataclass
class SessionSpec:
    id: str
    title: str
    algo: str = ABR_DEFAULT
    abr_params: dict[str, Any] | None = None
    segments: int | None = None  # stop after this many (None: the whole title)
    start_s: float = 0.0  # after the process's start
    codec: str = "avc1"  # codec family of the adaptation set to play
    max_buffer_s: float = MAX_BUFFER_S
    startup_s: float | None = None  # default: one segment
    resume_s: float | None = None


class SessionError(Exception):
    pass


class Session:
    def __init__(self, spec: SessionSpec, service: str, resolver: str, log: EventLog,
                 clusters: dict[str, str], port: int = 80, resolver_port: int = 53,
                 seed: int = 1) -> None:
        self.spec = spec
        self.service = service.rstrip(".")
        self.resolver = resolver
        self.resolver_port = resolver_port
        self.port = port
        self.log = log
        self.clusters = clusters  # server address → cluster name
        self.http = HttpClient()
        self.rng = random.Random(f"{seed}:{spec.id}")
        self.resolution: Resolution | None = None
        self.segment_s: float | None = None  # of the played representation set, once known
        self.ladder_kbps: list[float] | None = None
        self.expires = 0.0
        self.server: str | None = None
        self.metrics: dict[str, Any] | None = None
        self._server_failed = False

    # -- name resolution -------------------------------------------------------------------
    async def resolve(self, why: str) -> str:
        resolution = await resolve_a(self.service, self.resolver, self.resolver_port)
        self.resolution = resolution
        self.expires = time.monotonic() + resolution.ttl
        server = self.rng.choice(resolution.addresses)
        if server != self.server and self.server is not None:
            self.http.forget(self.server, self.port)
        self.server = server
        self.log.emit("resolve", session=self.spec.id, why=why, addresses=resolution.addresses,
                      ttl=resolution.ttl, server=server, cluster=self.clusters.get(server))
        return server

    async def _server(self) -> str:
        if self.server is None:
            return await self.resolve("start")
        if self._server_failed:
            self._server_failed = False
            return await self.resolve("server_failed")
        if time.monotonic() >= self.expires:
            return await self.resolve("ttl_expired")
        return self.server

    async def fetch(self, path: str, attempts: int = 6) -> tuple[Any, str]:
        """GET `path` from the current server; on failure ask DNS again and retry, backing
        off (0.25, 0.5, 1, 2, 4 s) as players do while their buffer lasts."""
        last: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(0.25 * 2 ** (attempt - 1))
            server = await self._server()
            try:
                response = await self.http.get(server, self.port, path, self.service)
            except (OSError, TimeoutError, HttpError, asyncio.IncompleteReadError) as err:
                last = err
            else:
                if response.status < 500:
                    return response, server
                last = HttpError(f"HTTP {response.status}")
            self.log.emit("request_failed", session=self.spec.id, path=path, server=server,
                          error=str(last), attempt=attempt + 1)
            self.http.forget(server, self.port)
            self._server_failed = True  # ask DNS again before retrying
        raise SessionError(f"{path}: {last}")

    # -- playback --------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        await asyncio.sleep(self.spec.start_s)
        started = time.monotonic()

        def clock() -> float:
            return time.monotonic() - started

        self.log.emit("session_start", session=self.spec.id, title=self.spec.title,
                      algo=self.spec.algo)
        abr = make_abr(self.spec.algo, **(self.spec.abr_params or {}))
        try:
            response, _ = await self.fetch(f"/{self.spec.title}/manifest.mpd")
            if response.status != 200:
                raise SessionError(f"MPD: HTTP {response.status}")
            presentation = parse_mpd(response.body)
        except (SessionError, ResolveError, ManifestError) as err:
            return self._end(clock, None, [], str(err))
        sets = [a for a in presentation.sets("video") if a.codec_family == self.spec.codec] \
            or presentation.sets("video")
        reps: list[Representation] = sorted(sets[0].representations, key=lambda r: r.bandwidth)
        bitrates = [r.bandwidth / 1000 for r in reps]
        seg = reps[0].segment_duration_s
        self.segment_s, self.ladder_kbps = seg, bitrates
        total = presentation.segment_count(reps[0])
        count = min(total, self.spec.segments or total)
        buffer = PlaybackBuffer(self.spec.startup_s or seg, self.spec.resume_s or seg)
        seen = Observations()
        chosen: list[float] = []
        error = None
        for index in range(count):
            buffer.advance(clock())
            room_wait = buffer.level_s - (self.spec.max_buffer_s - seg)
            if buffer.playing and room_wait > 0:
                await asyncio.sleep(room_wait)
                buffer.advance(clock())
            choice = abr.choose(seen.state(bitrates, seg, buffer.level_s,
                                           self.spec.max_buffer_s, clock(),
                                           len(buffer.stalls), index, count))
            if choice.wait_s > 0 and buffer.playing:
                await asyncio.sleep(min(choice.wait_s, buffer.level_s))
                buffer.advance(clock())
            rep = reps[choice.quality]
            path = f"/{self.spec.title}/{rep.segment_path(rep.start_number + index)}"
            asked = clock()
            try:
                response, server = await self.fetch(path)
            except (SessionError, ResolveError) as err:
                error = str(err)
                break
            done = clock()
            if response.status != 200:
                error = f"{path}: HTTP {response.status}"
                break
            buffer.add(seg, done)
            size = len(response.body)
            throughput = seen.downloaded(choice.quality, size, response.seconds,
                                         buffer.level_s, done)
            chosen.append(bitrates[choice.quality])
            answered_by = response.server.rsplit(":", 1)[0]
            self.log.emit(
                "segment", session=self.spec.id, segment=index, quality=choice.quality,
                rule=choice.rule, representation=rep.id,
                bitrate_kbps=bitrates[choice.quality], bytes=size,
                start_s=round(asked, 4), download_s=round(response.seconds, 4),
                throughput_kbps=round(throughput, 1), buffer_s=round(buffer.level_s, 3),
                server=answered_by, resolved=server,
                cluster=response.headers.get("x-cluster") or self.clusters.get(answered_by),
                cache=next((response.headers[h] for h in CACHE_HEADERS
                            if h in response.headers), None),
                redirects=response.redirects or None, stalled=bool(buffer.stalls and
                                                                   buffer.stalls[-1][0] >= asked))
        buffer.finish(clock(), media_left=error is not None)
        return self._end(clock, buffer, chosen, error)

    def _end(self, clock: Any, buffer: PlaybackBuffer | None, chosen: list[float],
             error: str | None) -> dict[str, Any]:
        self.http.close()
        stalls = buffer.stalls if buffer else []
        metrics = session_metrics(chosen, stalls, buffer.started_at if buffer else None,
                                  self.segment_s, self.ladder_kbps)
        metrics |= {"session": self.spec.id, "title": self.spec.title, "algo": self.spec.algo,
                    "completed": error is None, "error": error,
                    "wall_s": round(clock(), 3)}
        self.metrics = metrics
        self.log.emit("session_end", **metrics)
        return metrics
