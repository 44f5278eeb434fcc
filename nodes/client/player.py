"""One live DASH session on an emulated host, in real time; many run in one asyncio loop.

resolve the service name (real DNS queries to the host's nameservers, in turn as glibc asks
them; TTL honoured) → fetch the MPD from the chosen
server → two tracks at once, as a browser fetches them: video (per segment: wait while its
buffer is full, ask the ABR, re-resolve if the TTL expired, download over a kept-alive
connection, following redirects) and, when the MPD has audio, audio on a second
connection; playback stalls when either buffer runs dry. A failed request marks the answer
stale and re-resolves before retrying; a re-resolution that fails keeps the last answer
(`resolve_kept`) and asks again after a back-off. A server a request failed on is avoided
for a while: when DNS (or the kept answer) names only avoided servers, the next server the
session learned from an earlier answer is asked instead, as dash.js moves to the next
BaseURL once a service location failed; a request gives up only when every known server
has failed it. A failed session records why (`failure`, `nodes/client/failures.py`).
Every segment is logged (`segment` for video, `audio_segment`): time, representation,
bitrate, bytes, download time, buffer, server, cluster and the edge's cache-status
header; video segments also the ABR rule and throughput. Every request carries Common
Media Client Data in query mode (CTA-5004, as dash.js sends it: `nodes/common/cmcd.py`),
so edges can group requests by session, object type, buffer and bitrate.

An MPD with content steering (`steered.mpd`: BaseURLs per pathway and a ContentSteering
element) is followed instead of DNS for segments: `nodes/client/steering.py` asks the
steering server (before the start when the MPD says so, then every TTL), and each segment
goes to the pathway ranked first that has not failed lately; pathway hosts are resolved
by DNS like the service name. Segments then carry their `pathway`, and every change of
pathway is a `pathway_change` event with its reason.

A session with `cmsd` reads the server data edges send (CTA-5006, `nodes/common/cmsd.py`)
on every segment response, as dash.js does with `streaming.cmsd.enabled`: `mb` caps the
video bitrate the ABR may choose (the audio bitrate taken off, no cap when no rung fits:
dash.js AbrController._filterByCmsdMaxBitrate). Each cluster's `mb` is kept until a later
response of that cluster replaces it, and caps the segments asked of that cluster: CTA-5006
names the server each CMSD-Dynamic member comes from, and a cluster's share says nothing of
another's, so a session back on a cluster it left in duress starts within the share that
cluster last gave it (dash.js keeps one mb for all servers: one that returns brings the
other cluster's),
and `du` (duress) makes the session leave that cluster at the next segment: the pathway
is passed over as after a failure (steering), or the server avoided and DNS asked again
(DNS routing). Under DNS routing a new answer that is due is asked for before the cap, so
the cap is always the cluster's the segment goes to. Each duress seen is a `cmsd_duress`
event; segments carry the `cmsd` data.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from nodes.client import failures
from nodes.client.abr import Observations
from nodes.client.algorithms import make_abr
from nodes.client.buffer import AUDIO, VIDEO, PlaybackBuffer
from nodes.client.dnsclient import Resolution, ResolveError, StubConfig, resolve
from nodes.client.failures import Failure
from nodes.client.http import HttpClient, HttpError
from nodes.client.qoe import session_metrics
from nodes.client.steering import AVOID_S, SteeringClient
from nodes.common import cmcd, cmsd
from nodes.common.conventions import ABR_DEFAULT, MAX_BUFFER_S
from nodes.common.dash import ManifestError, Presentation, Representation, parse_mpd
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
    audio: bool = True  # fetch the MPD's audio track alongside video, when it has one
    # a closed-loop viewer: after this session, one per title of `more_titles` in turn,
    # while fewer than `until_s` seconds have passed since the process started
    more_titles: list[str] | None = None
    until_s: float | None = None
    manifest: str = "manifest.mpd"  # the title's MPD (steered.mpd: with content steering)
    steering: bool = True  # follow the MPD's ContentSteering when it has one
    cmsd: bool = False  # honour the edges' CMSD: mb caps the bitrate, du moves away


class SessionError(Exception):
    def __init__(self, message: str, reason: str = failures.OTHER) -> None:
        super().__init__(message)
        self.reason = reason

# after a failed re-resolution the last answer is kept and asked again this much later,
# doubling per failure up to the last (a stub resolver's back-off; serve-stale, RFC 8767
# section 4, keeps an expired answer in use while the authority cannot be reached)
RESOLVE_RETRY_S = (1.0, 2.0, 4.0, 8.0)

# the request back-off doubles from 0.25 s up to the last step's 4 s (a failed server is
# passed over for AVOID_S, nodes/client/steering.py)
RETRY_BACKOFF_S = (0.25, 0.5, 1.0, 2.0, 4.0)
STEERING_RETRY_S = 10.0  # a failed steering request before any TTL was given


class Session:
    def __init__(self, spec: SessionSpec, service: str, stub: StubConfig, log: EventLog,
                 clusters: dict[str, str], port: int = 80, seed: int = 1) -> None:
        self.spec = spec
        self.service = service.rstrip(".")
        self.stub = stub
        self.port = port
        self.log = log
        self.clusters = clusters  # server address → cluster name
        self.http = HttpClient()
        self.audio_http = HttpClient()  # a second connection, as browsers fetch audio
        self.rng = random.Random(f"{seed}:{spec.id}")
        self.resolution: Resolution | None = None
        self.segment_s: float | None = None  # of the played representation set, once known
        self.ladder_kbps: list[float] | None = None
        self.expires = 0.0
        self.server: str | None = None
        self.metrics: dict[str, Any] | None = None
        self._server_failed = False
        self._leave_why = "server_failed"  # why the next segment asks DNS again
        self._mb_kbps: dict[str, float] = {}  # cluster → the mb it last suggested (CMSD)
        self._cluster_at: dict[str, str] = {}  # pathway or server → the cluster it reached
        self._audio_kbps = 0.0  # the audio track's bitrate (taken off mb)
        self._resolving = asyncio.Lock()
        self._stopped = False  # a track failed: the other stops too
        self._last_kbps: float | None = None  # the last video segment's throughput
        self._resolve_failures = 0  # re-resolutions failed in a row (the last answer kept)
        self.steering: SteeringClient | None = None  # the MPD steers: pathways, not DNS
        self.steering_http = HttpClient()
        self._hosts: dict[str, tuple[tuple[str, ...], float]] = {}  # pathway host → A, until
        self._pathways: dict[str, str] = {}  # server address → the pathway it served
        self._host_address: dict[str, str] = {}  # pathway host → the address it uses
        self.known: list[str] = []  # every server DNS named to this session, as learned
        self.failed_at: dict[str, float] = {}  # server → its last failed request (monotonic)

    # -- name resolution -------------------------------------------------------------------
    async def resolve(self, why: str) -> str:
        """The service's addresses asked for afresh; a server among them. When that fails
        and an earlier answer exists, that answer is kept (`resolve_kept`) and asked again
        after a back-off, as a stub resolver with a cache keeps serving it."""
        try:
            resolution = await resolve(self.service, self.stub, self._resolver_failed)
        except ResolveError as err:
            if self.server is None:
                raise
            retry_s = RESOLVE_RETRY_S[min(self._resolve_failures, len(RESOLVE_RETRY_S) - 1)]
            self._resolve_failures += 1
            self.expires = time.monotonic() + retry_s
            self.server, avoided = self._pick((self.server,))
            self.log.emit("resolve_kept", session=self.spec.id, why=why, error=str(err),
                          server=self.server, retry_s=retry_s, **avoided)
            return self.server
        self._resolve_failures = 0
        self.resolution = resolution
        self.expires = time.monotonic() + resolution.ttl
        self.known += [a for a in resolution.addresses if a not in self.known]
        # the connections to a server DNS no longer names stay open: the other track may be
        # mid-transfer on one (both close with the session)
        server, avoided = self._pick(resolution.addresses)
        self.server = server
        self.log.emit("resolve", session=self.spec.id, why=why, addresses=resolution.addresses,
                      ttl=resolution.ttl, server=server, cluster=self.clusters.get(server),
                      resolver=resolution.server, **avoided)
        return server

    def _avoided(self, server: str) -> bool:
        failed = self.failed_at.get(server)
        return failed is not None and time.monotonic() - failed < AVOID_S

    def _pick(self, named: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
        """A server among those DNS named (at random, as a stub resolver orders an
        RRset), not one avoided; when all are avoided, the first other server learned from
        an earlier answer that is not; when none is left, DNS's choice after all. With the
        fields a log line adds when a failed server was passed over."""
        usable = [a for a in named if not self._avoided(a)]
        if usable:
            server = self.rng.choice(usable)
            passed = [a for a in named if a not in usable]
            return server, {"avoided": passed} if passed else {}
        other = next((a for a in self.known if not self._avoided(a)), None)
        if other is None:
            return self.rng.choice(named), {"avoided": [], "all_failed": True}
        return other, {"avoided": list(named), "from_known": True,
                       "known_cluster": self.clusters.get(other)}

    def _untried(self, tried: set[str], tries_left: int) -> bool:
        """Whether a request that failed on `tried` can still move to a known server it
        has not tried; at most one more try per known server."""
        return tries_left > 0 and any(a not in tried and not self._avoided(a)
                                      for a in self.known)

    def _resolver_failed(self, resolver: str, why: str) -> None:
        self.log.emit("resolver_failed", session=self.spec.id, resolver=resolver, error=why)

    async def _server(self) -> str:
        async with self._resolving:  # both tracks ask; one query answers both
            if self.server is None:
                return await self.resolve("start")
            if self._server_failed:
                self._server_failed = False
                why, self._leave_why = self._leave_why, "server_failed"
                return await self.resolve(why)
            if time.monotonic() >= self.expires:
                return await self.resolve("ttl_expired")
            return self.server

    async def fetch(self, path: str, http: HttpClient | None = None,
                    attempts: int = 6, keep_body: bool = True) -> tuple[Any, str]:
        """GET `path` (with its query) from the current server; on failure ask DNS again
        and retry (on another known server when DNS names only failed ones: `_pick`),
        backing off (RETRY_BACKOFF_S) as players do while their buffer lasts (a resolution
        that fails with no earlier answer is retried the same way). It gives up after
        `attempts` tries once every known server failed it. Logs and errors name the
        path without its query."""
        http = http or self.http
        named = path.partition("?")[0]
        last: Exception | None = None
        attempt = 0
        tried: set[str] = set()  # servers this request failed on
        while attempt < attempts or self._untried(tried, attempts + len(self.known) - attempt):
            if attempt:
                await asyncio.sleep(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S)) - 1])
            attempt += 1
            try:
                server = await self._server()
            except ResolveError as err:  # no answer yet to fall back on: retried the same
                last = err
                self.log.emit("request_failed", session=self.spec.id, path=named,
                              server=None, error=str(err), attempt=attempt)
                continue
            try:
                response = await http.get(server, self.port, path, self.service,
                                          keep_body)
            except (OSError, TimeoutError, HttpError, asyncio.IncompleteReadError) as err:
                last = err
            else:
                if response.status < 500:
                    self.failed_at.pop(server, None)
                    return response, server
                last = HttpError(f"HTTP {response.status}")
            self.log.emit("request_failed", session=self.spec.id, path=named, server=server,
                          error=str(last), attempt=attempt)
            http.forget(server, self.port)
            self.failed_at[server] = time.monotonic()
            tried.add(server)
            self._server_failed = True  # ask DNS again before retrying
        raise SessionError(f"{named}: {last}", failures.reason_of(last))

    # -- playback --------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        await asyncio.sleep(self.spec.start_s)
        started = time.monotonic()

        def clock() -> float:
            return time.monotonic() - started

        self.log.emit("session_start", session=self.spec.id, title=self.spec.title,
                      algo=self.spec.algo)
        try:
            mpd_path = f"/{self.spec.title}/{self.spec.manifest}"
            response, _ = await self.fetch(f"{mpd_path}?"
                                           + cmcd.query(self._cmcd({"ot": "m"})))
            if response.status != 200:
                raise SessionError(f"MPD: HTTP {response.status}",
                                   failures.reason_of(None, response.status))
            presentation = parse_mpd(response.body)
            if presentation.steering is not None and self.spec.steering:
                self.steering = SteeringClient(
                    presentation, f"http://{self.service}{mpd_path}",
                    lambda event, **fields: self.log.emit(event, session=self.spec.id,
                                                          **fields))
        except (SessionError, ResolveError, ManifestError) as err:
            return self._end(clock, None, [], _failure(err))
        except ValueError as err:  # an MPD that steers without pathways
            return self._end(clock, None, [], Failure(failures.BAD_MANIFEST, str(err)))
        reloads = None
        if self.steering is not None:  # asked at once; before starting if the MPD says so
            wait = await self._steer() if self.steering.query_before_start else 0.0
            reloads = asyncio.create_task(self._steer_every(wait))
        try:
            return await self._play(presentation, clock)
        finally:
            if reloads is not None:
                reloads.cancel()

    async def _play(self, presentation: Presentation,
                    clock: Callable[[], float]) -> dict[str, Any]:
        sets = [a for a in presentation.sets("video") if a.codec_family == self.spec.codec] \
            or presentation.sets("video")
        reps: list[Representation] = sorted(sets[0].representations, key=lambda r: r.bandwidth)
        self.segment_s = reps[0].segment_duration_s
        self.ladder_kbps = [r.bandwidth / 1000 for r in reps]
        total = presentation.segment_count(reps[0])
        count = min(total, self.spec.segments or total)
        audio = [a for a in presentation.sets("audio") if self.spec.audio]
        audio_rep = min(audio[0].representations, key=lambda r: r.bandwidth) if audio else None
        self._audio_kbps = audio_rep.bandwidth / 1000 if audio_rep else 0.0
        buffer = PlaybackBuffer(self.spec.startup_s or self.segment_s,
                                self.spec.resume_s or self.segment_s,
                                (VIDEO, AUDIO) if audio_rep else (VIDEO,))
        chosen: list[float] = []
        fetches = [self._video(reps, count, buffer, clock, chosen)]
        if audio_rep is not None:
            media_s = count * self.segment_s
            audio_count = min(presentation.segment_count(audio_rep),
                              math.ceil(media_s / audio_rep.segment_duration_s - 1e-6))
            fetches.append(self._audio(audio_rep, audio_count, buffer, clock))
        errors = [e for e in await asyncio.gather(*fetches) if e]
        buffer.finish(clock(), media_left=bool(errors))
        return self._end(clock, buffer, chosen, errors[0] if errors else None)

    async def _video(self, reps: list[Representation], count: int, buffer: PlaybackBuffer,
                     clock: Callable[[], float], chosen: list[float]) -> Failure | None:
        """The video track: per segment, room in the buffer, the ABR's choice (it sees the
        video buffer, as dash.js's rules do), the download; the error that ended it."""
        abr = make_abr(self.spec.algo, **(self.spec.abr_params or {}))
        seen = Observations()
        stalls_seen = 0
        seg, bitrates = reps[0].segment_duration_s, [r.bandwidth / 1000 for r in reps]
        for index in range(count):
            if self._stopped:
                return None
            await self._room(buffer, VIDEO, seg, clock)
            choice = abr.choose(seen.state(bitrates, seg, buffer.level_of(VIDEO),
                                           self.spec.max_buffer_s, clock(),
                                           len(buffer.stalls), index, count))
            if choice.wait_s > 0 and buffer.playing:
                await asyncio.sleep(min(choice.wait_s, buffer.level_of(VIDEO)))
                buffer.advance(clock())
            if self.steering is None and self.spec.cmsd:
                await self._answer_before_cap()
            decided = time.monotonic()  # the pathway asked is the one capped for
            quality = self._capped(choice.quality, bitrates, decided)
            rep = reps[quality]
            starved = len(buffer.stalls) > stalls_seen
            stalls_seen = len(buffer.stalls)
            got = await self._download(rep, index, buffer, VIDEO, clock, self.http, {
                "ot": "v", "br": round(rep.bandwidth / 1000), "tb": round(bitrates[-1]),
                "mtp": self._last_kbps and round(self._last_kbps, -2), "bs": starved},
                decided)
            if isinstance(got, Failure):
                return got
            response, server, asked = got
            level = buffer.level_of(VIDEO)
            throughput = seen.downloaded(quality, response.size, response.seconds,
                                         level, clock())
            self._last_kbps = throughput
            chosen.append(bitrates[quality])
            capped = {"abr_quality": choice.quality} if quality != choice.quality else {}
            self.log.emit(
                "segment", session=self.spec.id, segment=index, quality=quality,
                rule=choice.rule, representation=rep.id,
                bitrate_kbps=bitrates[quality], bytes=response.size,
                start_s=round(asked, 4), download_s=round(response.seconds, 4),
                throughput_kbps=round(throughput, 1), buffer_s=round(level, 3),
                **self._delivery(response, server), **capped,
                **self._server_data(response, server, VIDEO),
                stalled=bool(buffer.stalls and buffer.stalls[-1][0] >= asked))
        return None

    async def _audio(self, rep: Representation, count: int, buffer: PlaybackBuffer,
                     clock: Callable[[], float]) -> Failure | None:
        """The audio track, fetched alongside video on its own connection (as a browser
        fetches each SourceBuffer's segments): its one representation (the lowest-bandwidth
        one when the MPD offers several), whenever its buffer has room."""
        seg = rep.segment_duration_s
        for index in range(count):
            if self._stopped:
                return None
            await self._room(buffer, AUDIO, seg, clock)
            got = await self._download(rep, index, buffer, AUDIO, clock, self.audio_http,
                                       {"ot": "a", "br": round(rep.bandwidth / 1000)})
            if isinstance(got, Failure):
                return got
            response, server, asked = got
            self.log.emit(
                "audio_segment", session=self.spec.id, segment=index, representation=rep.id,
                bitrate_kbps=rep.bandwidth / 1000, bytes=response.size,
                start_s=round(asked, 4), download_s=round(response.seconds, 4),
                buffer_s=round(buffer.level_of(AUDIO), 3), **self._delivery(response, server),
                **self._server_data(response, server, AUDIO))
        return None

    async def _room(self, buffer: PlaybackBuffer, track: str, seg: float,
                    clock: Callable[[], float]) -> None:
        """Wait while the track's buffer has no room for another segment."""
        buffer.advance(clock())
        room_wait = buffer.level_of(track) - (self.spec.max_buffer_s - seg)
        if buffer.playing and room_wait > 0:
            await asyncio.sleep(room_wait)
            buffer.advance(clock())

    def _cmcd(self, data: dict[str, Any]) -> dict[str, Any]:
        """The session's own keys beside a request's."""
        return {"sid": self.spec.id, "cid": self.spec.title, "sf": "d", "st": "v"} | data

    async def _download(self, rep: Representation, index: int, buffer: PlaybackBuffer,
                        track: str, clock: Callable[[], float], http: HttpClient,
                        request: dict[str, Any], decided: float | None = None
                        ) -> tuple[Any, str, float] | str:
        """One segment into the track's buffer: (response, server asked, when asked), or the
        error that ends the session (and stops the other track). `request`: its CMCD keys
        (the buffer, duration, startup and next-object keys are added here); `decided`:
        when its quality was capped for the pathway steering ranked first then."""
        path = f"/{self.spec.title}/{rep.segment_path(rep.start_number + index)}"
        asked = clock()
        data = self._cmcd(request | {
            "bl": round(buffer.level_of(track) * 10) * 100,
            "d": round(rep.segment_duration_s * 1000), "su": not buffer.playing,
            "nor": rep.segment_path(rep.start_number + index + 1)})
        try:
            # a segment's size and timing are what a player needs: its bytes are not kept
            if self.steering is not None:
                response, server = await self._fetch_steered(
                    rep.segment_path(rep.start_number + index), cmcd.query(data), http,
                    decided=decided)
            else:
                response, server = await self.fetch(f"{path}?{cmcd.query(data)}", http,
                                                    keep_body=False)
        except (SessionError, ResolveError) as err:
            self._stopped = True
            return _failure(err)
        if response.status != 200:
            self._stopped = True
            return Failure(failures.reason_of(None, response.status),
                           f"{path}: HTTP {response.status}")
        buffer.add(rep.segment_duration_s, clock(), track)
        return response, server, asked

    # -- content steering (nodes/client/steering.py) ---------------------------------------
    async def _steer(self) -> float | None:
        """One request to the steering server; the seconds until the next (None: never)."""
        steering = self.steering
        assert steering is not None
        url = urlsplit(steering.request_url())
        server = None
        try:
            server = await self._address_of(url.hostname or "", "steering")
            response = await self.steering_http.get(
                server, url.port or 80, url.path + (f"?{url.query}" if url.query else ""),
                url.netloc)
        except (OSError, TimeoutError, HttpError, asyncio.IncompleteReadError,
                ResolveError) as err:
            if server is not None:
                self.steering_http.forget(server, url.port or 80)
            self.log.emit("steering", session=self.spec.id, status=None, error=str(err))
            return steering.ttl_s or STEERING_RETRY_S
        return steering.answered(response.status, response.body,
                                 response.headers.get("retry-after"))

    async def _steer_every(self, wait: float | None) -> None:
        """Ask the steering server again after each answer's TTL until steering stops."""
        while wait is not None and not self._stopped:
            await asyncio.sleep(wait)
            wait = await self._steer()

    async def _address_of(self, host: str, why: str) -> str:
        """An address of a pathway's (or the steering server's) host: itself when it is an
        address, else from DNS, kept for the answer's TTL (and past it when DNS fails). One
        of the answer's addresses, drawn once and kept while the answer names it and no
        request to it failed, as a browser keeps its connections to one address of a host:
        each server of a cluster then sees a session's every request or none."""
        try:
            ipaddress.IPv4Address(host)
            return host
        except ValueError:
            pass
        known = self._hosts.get(host)
        if known is None or time.monotonic() >= known[1]:
            try:
                resolution = await resolve(host, self.stub, self._resolver_failed)
            except ResolveError:
                if known is None:
                    raise
                return self._kept_address(host, known[0])
            known = self._hosts[host] = (resolution.addresses,
                                         time.monotonic() + resolution.ttl)
            self.log.emit("resolve", session=self.spec.id, why=why, host=host,
                          addresses=resolution.addresses, ttl=resolution.ttl,
                          resolver=resolution.server)
        return self._kept_address(host, known[0])

    def _kept_address(self, host: str, addresses: tuple[str, ...]) -> str:
        kept = self._host_address.get(host)
        if kept not in addresses:
            kept = self._host_address[host] = self.rng.choice(addresses)
        return kept

    async def _fetch_steered(self, relative: str, query: str, http: HttpClient,
                             attempts: int = 6, decided: float | None = None
                             ) -> tuple[Any, str]:
        """GET a segment from the pathway steering ranks first (as at `decided`, for the
        first attempt); on failure the next one (the failed pathway is passed over for a
        while), backing off as `fetch` does, until every pathway has failed it and
        `attempts` are spent."""
        steering = self.steering
        assert steering is not None
        last: Exception | None = None
        tried: set[str] = set()
        attempt = 0
        while attempt < attempts or (steering.untried(tried)
                                     and attempt < attempts + len(steering.priority)):
            if attempt:
                await asyncio.sleep(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S)) - 1])
            attempt += 1
            pathway = steering.choose(decided if attempt == 1 else None)
            server = None
            try:
                server = await self._address_of(pathway.host, "pathway")
                response = await http.get(server, pathway.port, pathway.path(relative, query),
                                          pathway.host_header, keep_body=False)
            except (OSError, TimeoutError, HttpError, asyncio.IncompleteReadError,
                    ResolveError) as err:
                last = err
            else:
                if response.status < 500:
                    if response.size and response.seconds > 0:
                        steering.measured(pathway.name, response.size * 8 / response.seconds)
                    self._pathways[server] = pathway.name
                    return response, server
                last = HttpError(f"HTTP {response.status}")
            self.log.emit("request_failed", session=self.spec.id, path=f"/{relative}",
                          server=server, pathway=pathway.name, error=str(last),
                          attempt=attempt)
            if server is not None:
                http.forget(server, pathway.port)
            self._host_address.pop(pathway.host, None)
            steering.failed(pathway.name)
            tried.add(pathway.name)
        raise SessionError(f"/{relative}: {last}", failures.reason_of(last))

    # -- CMSD (nodes/common/cmsd.py) ---------------------------------------------------------
    def _next_cluster(self, at: float | None = None) -> str | None:
        """The cluster the next segment will be asked of, when known: the pathway
        steering will use (`peek(at)`), or the server DNS gave (None once it is being
        left)."""
        if self.steering is not None:
            return self._cluster_at.get(self.steering.peek(at))
        if self.server is None or self._server_failed:
            return None
        return self._cluster_at.get(self.server) or self.clusters.get(self.server)

    async def _answer_before_cap(self) -> None:
        """DNS routing with CMSD: where a new answer is due (the TTL expired, or the
        server is being left), ask for it before the cap, so that the `mb` capping a segment
        is that of the cluster the segment is then asked of (not the one the session is
        leaving). A failure is left to the request, which retries it (`fetch`)."""
        with contextlib.suppress(ResolveError):
            await self._server()

    def _capped(self, quality: int, bitrates: list[float], at: float | None = None) -> int:
        """The ABR's choice under the `mb` of the cluster asked next (as at `at`), the audio
        bitrate taken off; uncapped when no rung fits (dash.js
        AbrController._filterByCmsdMaxBitrate)."""
        cluster = self._next_cluster(at)
        mb = self._mb_kbps.get(cluster) if cluster is not None else None
        if mb is None:
            return quality
        fits = [i for i, kbps in enumerate(bitrates) if kbps <= mb - self._audio_kbps]
        return min(quality, fits[-1]) if fits else quality

    def _server_data(self, response: Any, server: str, track: str) -> dict[str, Any]:
        """Take a segment response's CMSD-Dynamic (a session with `cmsd`): keep `mb` (a
        video response's), and on `du` leave the cluster at the next segment. The fields
        the segment's log line adds."""
        if not self.spec.cmsd:
            return {}
        named, params = cmsd.nearest_member(response.headers)
        data = {k: v for k, v in params.items() if k in ("etp", "mb", "du")}
        pathway = self._pathways.get(server) if self.steering else None
        cluster = str(named) if named else response.headers.get("x-cluster")
        if cluster:
            self._cluster_at[pathway or server] = cluster
            if track == VIDEO and isinstance(data.get("mb"), int | float):
                self._mb_kbps[cluster] = float(data["mb"])
        if data.get("du") is True:
            if self.steering is not None and pathway is not None:
                self.steering.failed(pathway, "duress")
            else:
                self.failed_at[server] = time.monotonic()
                self._server_failed, self._leave_why = True, "duress"
            self.log.emit("cmsd_duress", session=self.spec.id, track=track, server=server,
                          pathway=pathway, cluster=response.headers.get("x-cluster"))
        return {"cmsd": data} if data else {}

    def _delivery(self, response: Any, server: str) -> dict[str, Any]:
        """Who delivered a segment: the server that answered, the one DNS gave, its cluster
        and the edge's cache status."""
        answered_by = response.server.rsplit(":", 1)[0]
        steered = {"pathway": self._pathways.get(server)} if self.steering else {}
        return {**steered, "server": answered_by, "resolved": server,
                "cluster": response.headers.get("x-cluster") or self.clusters.get(answered_by),
                "cache": next((response.headers[h] for h in CACHE_HEADERS
                               if h in response.headers), None),
                "redirects": response.redirects or None}

    def _end(self, clock: Any, buffer: PlaybackBuffer | None, chosen: list[float],
             error: Failure | None) -> dict[str, Any]:
        self.http.close()
        self.audio_http.close()
        self.steering_http.close()
        stalls = buffer.stalls if buffer else []
        metrics = session_metrics(chosen, stalls, buffer.started_at if buffer else None,
                                  self.segment_s, self.ladder_kbps)
        metrics |= {"session": self.spec.id, "title": self.spec.title, "algo": self.spec.algo,
                    "completed": error is None, "error": error and error.detail,
                    "failure": error and error.reason,
                    "stalls_by_track": buffer.stalls_by_track() if buffer else {},
                    "wall_s": round(clock(), 3)}
        self.metrics = metrics
        self.log.emit("session_end", **metrics)
        return metrics


def _failure(error: Exception) -> Failure:
    reason = error.reason if isinstance(error, SessionError) else failures.reason_of(error)
    return Failure(reason, str(error))
