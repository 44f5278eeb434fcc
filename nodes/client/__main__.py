"""`python -m nodes.client --service NAME (--resolver ADDR[:PORT]… | --resolv-conf FILE)
(--title T | --plan FILE) …`

Runs DASH sessions in one asyncio loop until they are done; each writes `resolve` (with the
nameserver that answered), `resolver_failed`, `segment`, `audio_segment`, `request_failed`,
`session_start` and `session_end` (with its QoE metrics) events, and `--summary FILE` gets
every session's metrics as one JSON document. A plan is a YAML/JSON list of sessions: {id,
title, algo, abr_params, segments, start_s, codec, max_buffer_s, audio, more_titles,
until_s} (the last two: a closed-loop viewer). Exits 0 when every session completed, 1
otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from nodes.client.algorithms import ALGORITHMS
from nodes.client.dnsclient import StubConfig, read_resolv_conf
from nodes.client.player import Session, SessionSpec
from nodes.common.conventions import ABR_DEFAULT, HTTP_PORT, MAX_BUFFER_S
from nodes.common.events import EventLog, stderr_line


def parse_clusters(values: list[str]) -> dict[str, str]:
    """`edge_a=10.0.1.2,10.0.1.3` … → address → cluster."""
    found: dict[str, str] = {}
    for value in values:
        name, sep, addresses = value.partition("=")
        if not sep:
            raise ValueError(f"--cluster {value!r}: expected NAME=ADDR[,ADDR…]")
        for address in addresses.split(","):
            found[address.strip()] = name
    return found


def load_plan(args: argparse.Namespace) -> list[SessionSpec]:
    if args.plan:
        raw: Any = yaml.safe_load(Path(args.plan).read_text())
        if not isinstance(raw, list) or not raw:
            raise ValueError(f"{args.plan}: a plan is a non-empty list of sessions")
        specs = []
        for n, item in enumerate(raw):
            try:
                specs.append(SessionSpec(**({"id": f"s{n}"} | item)))
            except TypeError as err:
                raise ValueError(f"{args.plan}: session {n}: {err}") from None
    else:
        if not args.title:
            raise ValueError("give --title or --plan")
        specs = [SessionSpec(f"{args.node}-{n}", args.title, args.algo, None, args.segments,
                             n * args.stagger, args.codec, args.max_buffer,
                             manifest=args.manifest, cmsd=args.cmsd)
                 for n in range(args.sessions)]
    for spec in specs:
        if spec.algo not in ALGORITHMS:
            raise ValueError(f"session {spec.id}: unknown ABR {spec.algo!r} "
                             f"(known: {', '.join(ALGORITHMS)})")
    return specs


def stub_config(args: argparse.Namespace) -> StubConfig:
    """The nameservers: a resolv.conf (as the host's stub resolver reads it), else the
    `--resolver` addresses in order (2 s timeout, 2 attempts)."""
    if args.resolv_conf:
        return read_resolv_conf(Path(args.resolv_conf).read_text())
    if not args.resolver:
        raise ValueError("give --resolver ADDR[:PORT] or --resolv-conf FILE")
    servers = []
    for value in args.resolver:
        address, _, port = value.partition(":")
        servers.append((address, int(port or 53)))
    return StubConfig(tuple(servers), timeout_s=2.0, attempts=2)


async def run_all(specs: list[SessionSpec], args: argparse.Namespace, log: EventLog,
                  clusters: dict[str, str], stub: StubConfig) -> list[dict[str, Any]]:
    started = time.monotonic()

    async def viewer(spec: SessionSpec) -> list[dict[str, Any]]:
        """One viewer: its session, then (closed loop) the next ones until `until_s`."""
        played = [await Session(spec, args.service, stub, log, clusters, port=args.port,
                                seed=args.seed).run()]
        for number, title in enumerate(spec.more_titles or [], start=2):
            if spec.until_s is None or time.monotonic() - started >= spec.until_s:
                break
            following = replace(spec, id=f"{spec.id}.{number}", title=title, start_s=0.0,
                                more_titles=None, until_s=None)
            played.append(await Session(following, args.service, stub, log, clusters,
                                        port=args.port, seed=args.seed).run())
        return played

    return [m for played in await asyncio.gather(*(viewer(s) for s in specs)) for m in played]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes.client", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", required=True, help="e.g. video.cdn.lab")
    parser.add_argument("--resolver", action="append", default=[],
                        help="a nameserver, ADDR[:PORT]; repeat for a second one")
    parser.add_argument("--resolv-conf", help="nameservers and options from this file")
    parser.add_argument("--title")
    parser.add_argument("--plan", help="YAML/JSON list of sessions")
    parser.add_argument("--algo", default=ABR_DEFAULT)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--segments", type=int)
    parser.add_argument("--stagger", type=float, default=0.0, help="seconds between starts")
    parser.add_argument("--port", type=int, default=HTTP_PORT, help="the servers' HTTP port")
    parser.add_argument("--codec", default="avc1")
    parser.add_argument("--manifest", default="manifest.mpd",
                        help="the MPD's name in the title (steered.mpd: content steering)")
    parser.add_argument("--cmsd", action="store_true",
                        help="honour the edges' CMSD (mb caps the bitrate, du moves away)")
    parser.add_argument("--max-buffer", type=float, default=MAX_BUFFER_S)
    parser.add_argument("--cluster", action="append", default=[],
                        help="NAME=ADDR[,ADDR…]: name the cluster of a server in logs")
    parser.add_argument("--events")
    parser.add_argument("--summary")
    parser.add_argument("--node", default="client")
    parser.add_argument("--epoch", type=float)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        specs = load_plan(args)
        clusters = parse_clusters(args.cluster)
        stub = stub_config(args)
    except (OSError, ValueError, yaml.YAMLError) as err:
        stderr_line(f"client: {err}")
        return 2
    log = EventLog(Path(args.events) if args.events else None, args.node, args.epoch)
    try:
        results = asyncio.run(run_all(specs, args, log, clusters, stub))
    except KeyboardInterrupt:
        return 1
    finally:
        log.close()
    return report_sessions("client", args.summary, args.node, results, len(specs))


def report_sessions(program: str, summary: str | None, node: str,
                    results: list[dict[str, Any]], planned: int) -> int:
    """Every session's metrics into the summary file; a line per failed session; the exit
    status (1 when a session failed or did not end)."""
    if summary:
        Path(summary).write_text(json.dumps({"node": node, "sessions": results}, indent=1))
    failed = [r for r in results if not r["completed"]]
    for result in failed:
        stderr_line(f"{program}: session {result['session']}: {result['error']}")
    return 1 if failed or len(results) < planned else 0


if __name__ == "__main__":
    sys.exit(main())
