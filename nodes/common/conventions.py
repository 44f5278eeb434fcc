"""Names and defaults the engine and the node programs share, each spelled here once.

The engine (`cdnlab`) builds configurations and validates scenarios with these; the node
programs use them as their own defaults. Either side imports this module, never the
other's internals. Registries that hold the code (ABR classes, DNS policy functions) live
with their node program and are checked against the names here by the unit tests.
"""

from __future__ import annotations

from pathlib import Path

# -- DNS: the zone, the service name, the redirector's defaults ------------------------
ZONE = "cdn.lab."
SERVICE_LABEL = "video"
SERVICE = f"{SERVICE_LABEL}.{ZONE}"  # the name every viewer resolves
TSIG_KEY_NAME = "cdnlab-key."
DNS_REST_PORT = 8053
STEERING_PORT = 8054  # the redirector's content steering server (nodes/steering)
DNS_TTL_S = 5  # of the service's answers: how long a viewer keeps its cluster
STALE_AFTER_S = 10.0  # an RTT or load record older than this no longer ranks a cluster
SPILL_GAIN = 0.5  # the spill controller's step toward its target share (nodes/dns/spill.py)
SPILL_MAX_SHARE = 0.9
LOAD_THRESHOLD = 0.8  # utilisation above which DNS spills a share of a cluster's answers
SHED_ABOVE = 1.0  # utilisation above which an edge itself answers 302 (over its capacity)
DNS_POLICIES = ("min_rtt", "min_rtt_spill", "coverage_zone", "round_robin")
# the redirector's answer under a scenario's `routing: anycast`: the anycast address, as the
# records of a cluster of this name (the engine sets it; not a scenario's dns.policy)
ANYCAST = "anycast"
DNS_POLICY = "min_rtt_spill"

# -- Probes --------------------------------------------------------------------------------
PROBE_INTERVAL_S = 1.0  # between rounds of RTT measurement (and load reports)
PROBE_METHODS = ("icmp", "tcp")  # echo, or a SYN to the HTTP port
PROBE_METHOD = "icmp"

# -- Viewers -----------------------------------------------------------------------------
ABR_ALGORITHMS = ("throughput", "bba", "bola", "mpc", "dynamic", "fixed")
ABR_DEFAULT = "bola"
# CPU niceness of browser viewers' Chromium: on a small machine the emulator's timers,
# delay processes and servers come first, and the viewer still gets its fair share
BATCH_NICE = 10
# ffmpeg transcodes run in SCHED_IDLE: on CPU time nothing else wants, taken from them the
# moment a timer, server or player wakes (at nice 10 they delayed a 1 ms sleep's wake-up by
# 2.4-3.2 ms p99; in SCHED_IDLE by 0.06-0.09 ms; README, "Timers that fire on time").
# Niceness and SCHED_IDLE count against other sessions' programs only because a run
# switches the kernel's autogroups off (cdnlab/net/autogroups.py)
TRANSCODE_IDLE = True
# a viewer that is dash.js itself in headless Chromium (nodes/browser), its ABR dash.js's own
BROWSER_ABR = "dashjs"
AUDIO_KBPS = 128  # a title's AAC audio unless its spec says otherwise (0: no audio)
MAX_BUFFER_S = 30.0  # a player's buffer target (dash.js's bufferTimeAtTopQuality is 30 s)

# -- Servers -------------------------------------------------------------------------------
HTTP_PORT = 80  # every origin and edge server, and what players and TCP probes connect to
STEERED_MPD = "steered.mpd"  # a title's MPD with content steering, beside manifest.mpd
ORIGIN_HTTP_PORT = HTTP_PORT
ORIGIN_INGEST_PORT = 8080
SYNTH_PREFIX = "synth-"
# what a timeline `origin_fault` can make the origin answer, each switched on while a flag
# file exists in its work directory's `faults/` (nginx tests it per request: no reload)
ORIGIN_FAULT_STATUSES = (500, 502, 503, 504)


def origin_fault_flag(fault_dir: Path, status: int | None = None,
                      slow_kbps: int | None = None) -> Path:
    """The flag file of an origin fault: an error status, or responses capped at a rate."""
    return fault_dir / (f"fault-{status}" if status is not None else f"fault-slow-{slow_kbps}")


def title_names(count: int, prefix: str = SYNTH_PREFIX) -> list[str]:
    """The names `synth` gives `count` synthetic titles, most popular first."""
    width = max(4, len(str(count)))
    return [f"{prefix}{n:0{width}d}" for n in range(1, count + 1)]
