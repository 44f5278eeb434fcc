"""`cdnlab bench edge`: how many requests per second, and Mbit/s, an edge serves from its
cache, on a miss, and what the origin serves directly, measured in the same run on this
machine (on loopback: no emulated link limits them).

The origin and a pull edge are the real nginx configurations the node programs run
(`nodes/origin/server.py`, `nodes/edge/sites.py`) over a synthetic catalog (sparse files,
so no disk is read); every request is for a segment of one representation (750 kbit/s,
2 s: about 190 kB), so the three phases move objects of one size:

    origin   the origin directly, a hot set of HOT_SET segments, for `seconds`
    hit      the edge, the same hot set, after one pass that cached it, for `seconds`
    miss     the edge, segments never asked before, each once (MISS_REQUESTS of them,
             or fewer if four times `seconds` runs out): each is fetched from the origin
             and cached; its rate is the misses over the time the edge's own access log
             spans from the first one's arrival to the last one's end (wrk keeps waiting
             for its duration after its threads are done, so its own clock would not do)
    cmsd_hit a second pull edge sending CMSD (`nodes/edge/sites.py` with cmsd: njs
             reads the shares file into every response), the same hot set as `hit`
             after one pass, for `seconds`: what CMSD costs a hit is cmsd_hit against hit

The load is wrk (C, epoll; Debian's `wrk`), WRK_THREADS threads × CONNECTIONS kept-alive
connections, each thread walking its own share of the URLs (`edge_paths.lua`). The
ratios say what the cache is worth on this machine: hit/origin near 1 means the edge's
proxy layer costs little; miss/hit is the cost of a miss (an upstream fetch and a cache
write). Ends with `edge: hit_rps=<n> miss_rps=<n> origin_rps=<n> hit_mbps=<n>
cmsd_hit_rps=<n>`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdnlab.errors import CdnlabError
from cdnlab.net.controller import free_port
from nodes.common import cmsd
from nodes.common.ladder import DEFAULT_LADDER
from nodes.common.nginx import Nginx, NginxSite
from nodes.edge.shares import StreamShares
from nodes.edge.sites import LOG_FIELDS, NJS_MODULE, EdgeSite
from nodes.origin.profiles import Profile, TitleSpec
from nodes.origin.server import origin_site_body
from nodes.origin.store import ContentStore
from nodes.origin.synth import SynthOptions, synthesize

HOT_SET = 200
MISS_REQUESTS = 2000
SEGMENTS_PER_TITLE = 30
SEGMENT_S = 2.0
WRK_THREADS = 2
CONNECTIONS = 32
LUA = Path(__file__).with_name("edge_paths.lua")


@dataclass(frozen=True)
class Phase:
    name: str
    requests: int
    bytes: int
    seconds: float
    errors: int
    misses: int  # responses the edge marked MISS

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def mbps(self) -> float:
        return self.bytes * 8 / 1e6 / self.seconds if self.seconds else 0.0


def _catalog(store: Path, titles: int) -> list[str]:
    """Synthetic titles; the URL paths of every segment of their 750 kbit/s rung."""
    spec = TitleSpec(profiles=(Profile("avc", DEFAULT_LADDER[1:2]),), segment_s=SEGMENT_S,
                     audio_kbps=0)
    names = synthesize(ContentStore(store), SynthOptions(
        titles=titles, duration_s=SEGMENTS_PER_TITLE * SEGMENT_S, spec=spec, vbr_sigma=0.0,
        seed=1, prefix="bench"))
    catalog = json.loads((store / "catalog.json").read_text())["titles"]
    paths = []
    for name in names:
        media = catalog[name]["profiles"]["avc"]["representations"][0]["media"]
        paths += [f"/{name}/" + media.replace("$Number%05d$", f"{n:05d}")
                  for n in range(1, SEGMENTS_PER_TITLE + 1)]
    return paths


def _wrk(base: str, paths: list[str], seconds: float, once: bool, work: Path) -> Phase:
    listing = work / "paths.txt"
    listing.write_text("\n".join(paths) + "\n")
    done = subprocess.run(
        ["wrk", "-t", str(WRK_THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds:g}s",
         "--timeout", "10s", "-s", str(LUA), base, "--", str(listing), "1" if once else "0",
         str(WRK_THREADS)],
        capture_output=True, text=True, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("{")), None)
    if done.returncode or line is None:
        raise CdnlabError(f"wrk failed (exit {done.returncode}): "
                          f"{(done.stderr or done.stdout).strip()[-300:]}")
    figures: dict[str, Any] = json.loads(line)
    return Phase("", int(figures["requests"]), int(figures["bytes"]),
                 float(figures["duration_us"]) / 1e6, int(figures["errors"]),
                 int(figures["misses"]))


def _edge(work: Path, name: str, parent: str,
          with_cmsd: bool) -> tuple[Nginx, str, EdgeSite]:
    """A pull edge in front of `parent` on a free loopback port (not started), its URL,
    its site."""
    port = free_port()
    site = EdgeSite(name, "pull", work / name, parent=parent, cache_size_mb=2048,
                    cmsd=with_cmsd, capacity_mbps=100.0, threshold=0.8)
    site.work.mkdir(parents=True, exist_ok=True)
    if with_cmsd:
        site.write_script()
        StreamShares(site.shares_file).publish(100.0, 0.8, 4)  # a file, as in a run
    return Nginx(NginxSite(name, f"127.0.0.1:{port}", site.work, work / f"{name}.jsonl",
                           site.server_body(), site.http_extra(), dict(LOG_FIELDS),
                           master=True, modules=site.modules)), \
        f"http://127.0.0.1:{port}", site


def _carries_cmsd(url: str, shares_file: Path) -> bool:
    """Whether a response of the edge carries the shares its file holds."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return shares_file.read_text().strip() in (response.headers.get(cmsd.DYNAMIC) or "")


def run(seconds: float) -> int:
    if shutil.which("wrk") is None:
        raise CdnlabError("bench edge needs wrk: sudo make setup installs it (Debian's wrk)")
    if not NJS_MODULE.exists():
        raise CdnlabError(f"bench edge needs nginx's JavaScript module {NJS_MODULE} for "
                          "its CMSD phase: sudo make setup installs it (libnginx-mod-http-js)")
    with tempfile.TemporaryDirectory(prefix="cdnlab-bench-edge-") as tmp:
        work = Path(tmp)
        titles = (HOT_SET + MISS_REQUESTS) // SEGMENTS_PER_TITLE + 2
        paths = _catalog(work / "store", titles)
        hot, cold = paths[:HOT_SET], paths[HOT_SET:HOT_SET + MISS_REQUESTS]
        origin_port = free_port()
        origin = Nginx(NginxSite("origin", f"127.0.0.1:{origin_port}", work / "origin",
                                 work / "origin.jsonl",
                                 origin_site_body((work / "store").resolve())))
        edge, edge_url, _ = _edge(work, "edge", f"127.0.0.1:{origin_port}", False)
        signalling, signalling_url, signalling_site = _edge(
            work, "cmsd", f"127.0.0.1:{origin_port}", True)
        origin.start()
        try:
            edge.start()
            try:
                phases = _measure(f"http://127.0.0.1:{origin_port}", edge_url, hot, cold,
                                  seconds, work, work / "edge.jsonl")
            finally:
                edge.stop()
            signalling.start()
            try:
                _wrk(signalling_url, hot, seconds, True, work)  # one pass: cached
                phases["cmsd_hit"] = _named("cmsd_hit", _wrk(signalling_url, hot, seconds,
                                                              False, work))
                sends_cmsd = _carries_cmsd(signalling_url + hot[0],
                                           signalling_site.shares_file)
            finally:
                signalling.stop()
        finally:
            origin.stop()
    _print(phases, seconds)
    # what each phase claims to measure: origin and hits never missed, misses all missed,
    # the CMSD edge's responses carried its shares
    honest = phases["origin"].misses == 0 and phases["hit"].misses == 0 and \
        phases["cmsd_hit"].misses == 0 and phases["miss"].requests == len(cold) and sends_cmsd
    return 0 if honest and all(p.requests and not p.errors for p in phases.values()) else 1


def _named(name: str, phase: Phase) -> Phase:
    return Phase(name, phase.requests, phase.bytes, phase.seconds, phase.errors, phase.misses)


def _measure(origin: str, edge: str, hot: list[str], cold: list[str], seconds: float,
             work: Path, edge_log: Path) -> dict[str, Phase]:
    phases = {"origin": _wrk(origin, hot, seconds, False, work)}
    _wrk(edge, hot, seconds, True, work)  # one pass: the hot set is now cached
    phases["hit"] = _wrk(edge, hot, seconds, False, work)
    asked = _wrk(edge, cold, seconds * 4, True, work)
    wanted = set(cold)
    misses = [r for r in map(json.loads, edge_log.read_text().splitlines())
              if r["path"] in wanted and r["cache"] == "MISS"]
    span = max(r["time"] for r in misses) - min(r["time"] - r["duration_s"] for r in misses) \
        if misses else 0.0
    phases["miss"] = Phase("miss", len(misses), sum(r["bytes"] for r in misses), span,
                           asked.errors, len(misses))
    return {name: _named(name, p) for name, p in phases.items()}


def _print(phases: dict[str, Phase], seconds: float) -> None:
    origin = phases["origin"]
    print(f"edge: nginx origin and pull edge on loopback; wrk {WRK_THREADS} threads × "
          f"{CONNECTIONS} connections; ~190 kB segments; {seconds:g} s a phase "
          f"(miss: {MISS_REQUESTS} new segments at most)")
    print(f"{'phase':<8}{'requests':>10}{'MISS':>7}{'errors':>8}{'req/s':>10}{'Mbit/s':>10}"
          f"{'vs origin':>11}")
    for name in ("origin", "hit", "miss", "cmsd_hit"):
        phase = phases[name]
        ratio = phase.rps / origin.rps if origin.rps else float("nan")
        print(f"{name:<8}{phase.requests:>10}{phase.misses:>7}{phase.errors:>8}"
              f"{phase.rps:>10.0f}{phase.mbps:>10.0f}{ratio:>11.2f}")
    print(f"edge: hit_rps={phases['hit'].rps:.0f} miss_rps={phases['miss'].rps:.0f} "
          f"origin_rps={origin.rps:.0f} hit_mbps={phases['hit'].mbps:.0f} "
          f"cmsd_hit_rps={phases['cmsd_hit'].rps:.0f}")
