"""`python -m nodes.origin`: the origin node program.

    serve   --store DIR --address A [--http-port 80] [--ingest-port 8080] …
            nginx serving the store, and the ingest endpoint; runs until SIGTERM
    ingest  FILE --title ID --store DIR [--spec FILE]   transcode and publish locally
    synth   --titles N --store DIR [--duration S] …      synthetic titles
    testsrc OUT [--seconds S] [--size WxH]               make a test master
    fill    --plan FILE [--events F] [--epoch T]          push titles to edge clusters

Bad configuration or input exits 2 with one line on stderr naming the problem.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

import yaml

from nodes.common.conventions import ORIGIN_HTTP_PORT, ORIGIN_INGEST_PORT, SYNTH_PREFIX
from nodes.common.events import EventLog, stderr_line
from nodes.common.lifecycle import Terminated, exit_on_sigterm
from nodes.common.nginx import Nginx, NginxError, NginxSite
from nodes.origin.errors import ContentError
from nodes.origin.profiles import TitleSpec, parse_title_spec


def load_spec(path: str | None) -> TitleSpec:
    if path is None:
        return TitleSpec()
    try:
        data: Any = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ContentError(f"{path}: cannot read the title spec: {err}") from err
    return parse_title_spec(data, path)


def cmd_serve(args: argparse.Namespace) -> int:
    from nodes.origin.server import IngestService, make_server, origin_site_body
    from nodes.origin.store import ContentStore

    exit_on_sigterm()
    store = ContentStore(Path(args.store))
    events = Path(args.events) if args.events else None
    log = EventLog(events, args.node, args.epoch)
    work = Path(args.work)
    access_log = events.with_name(f"{args.node}.access.jsonl") if events else work / "access.jsonl"
    nginx = Nginx(NginxSite(args.node, f"{args.address}:{args.http_port}", work, access_log,
                            origin_site_body(store.root, work / "faults",
                                             tuple(args.slow_kbps))))
    server = make_server(args.address, args.ingest_port,
                         IngestService(store, load_spec(args.spec), log))
    thread: threading.Thread | None = None
    try:
        nginx.start()
        thread = threading.Thread(target=server.serve_forever, name="ingest", daemon=True)
        thread.start()
        log.emit("ready", http=f"{args.address}:{args.http_port}",
                 ingest=f"{args.address}:{args.ingest_port}", store=str(store.root))
        thread.join()
    except (KeyboardInterrupt, Terminated):
        pass
    finally:
        if thread is not None:
            server.shutdown()
        server.server_close()
        nginx.stop()
        log.emit("stopped")
        log.close()
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from nodes.origin.ingest import ingest_file
    from nodes.origin.store import ContentStore

    source = Path(args.file)
    if not source.is_file():
        raise ContentError(f"{source}: no such file")
    log = EventLog(Path(args.events), "origin") if args.events else None
    result = ingest_file(ContentStore(Path(args.store)), source, args.title,
                         load_spec(args.spec), log)
    entry = result.entry
    reps = sum(len(p["representations"]) for p in entry["profiles"].values())
    print(f"{args.title}: {result.status} — {reps} video representations in "
          f"{len(entry['profiles'])} profile(s), {entry['segments']} segments of "
          f"{entry['segment_s']:g} s, {entry['bytes'] / 1e6:.1f} MB, {result.seconds:.1f} s")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    import time

    from nodes.origin.store import ContentStore
    from nodes.origin.synth import SynthOptions, synthesize

    spec = load_spec(args.spec) if args.spec else SynthOptions().spec
    started = time.monotonic()
    store = ContentStore(Path(args.store))
    if args.steering:  # every title published from now on also gets its steered MPD
        store.set_steering(args.steering)
    titles = synthesize(store, SynthOptions(
        args.titles, args.duration, spec, args.vbr_sigma, args.seed, args.prefix))
    print(f"{len(titles)} synthetic titles ({titles[0]} … {titles[-1]}) in "
          f"{time.monotonic() - started:.2f} s")
    return 0


def cmd_testsrc(args: argparse.Namespace) -> int:
    from nodes.origin.testsource import make_test_master

    width, _, height = args.size.partition("x")
    make_test_master(Path(args.out), args.seconds, int(width), int(height), args.fps)
    print(args.out)
    return 0


def cmd_fill(args: argparse.Namespace) -> int:
    import time

    from nodes.origin.fill import run_fill

    try:
        plan = yaml.safe_load(Path(args.plan).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ContentError(f"{args.plan}: cannot read the fill plan: {err}") from err
    if not isinstance(plan, dict) or not plan.get("clusters") or not plan.get("store"):
        raise ContentError(f"{args.plan}: a fill plan needs store and clusters")
    exit_on_sigterm()
    log = EventLog(Path(args.events) if args.events else None, args.node, args.epoch)
    try:
        results = run_fill(plan, log, args.epoch if args.epoch is not None else time.time())
    except (KeyboardInterrupt, Terminated):
        return 1
    finally:
        log.close()
    for result in results:
        print(f"{result['cluster']}: {len(result['titles'])} titles, "
              f"{result['bytes'] / 1e6:.1f} MB sent at {result['rate_mbps']:.2f} Mbit/s "
              f"(cap {result['cap_mbps']:g}), {'complete' if result['complete'] else 'cut'}")
    return 0 if all(r["complete"] for r in results) else 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m nodes.origin", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the store and take uploads")
    serve.add_argument("--store", required=True)
    serve.add_argument("--address", default="0.0.0.0")
    serve.add_argument("--http-port", type=int, default=ORIGIN_HTTP_PORT)
    serve.add_argument("--ingest-port", type=int, default=ORIGIN_INGEST_PORT)
    serve.add_argument("--work", required=True, help="nginx config, pid, temp files")
    serve.add_argument("--events", help="JSONL event log")
    serve.add_argument("--node", default="origin")
    serve.add_argument("--epoch", type=float, help="run start (epoch s) for event times")
    serve.add_argument("--spec", help="default title spec (YAML) for uploads")
    serve.add_argument("--slow-kbps", type=int, action="append", default=[],
                       help="a rate a fault may cap responses at (a flag file in "
                            "WORK/faults turns it on)")
    serve.set_defaults(run=cmd_serve)
    ingest = sub.add_parser("ingest", help="transcode and publish a file locally")
    ingest.add_argument("file")
    ingest.add_argument("--title", required=True)
    ingest.add_argument("--store", required=True)
    ingest.add_argument("--spec")
    ingest.add_argument("--events")
    ingest.set_defaults(run=cmd_ingest)
    synth = sub.add_parser("synth", help="create synthetic titles")
    synth.add_argument("--titles", type=int, default=100)
    synth.add_argument("--store", required=True)
    synth.add_argument("--duration", type=float, default=60.0)
    synth.add_argument("--spec")
    synth.add_argument("--vbr-sigma", type=float, default=0.25)
    synth.add_argument("--seed", type=int, default=1)
    synth.add_argument("--prefix", default=SYNTH_PREFIX)
    synth.add_argument("--steering", metavar="JSON",
                       help="content steering for the store: {server_url, pathways: "
                            "{name: host}, default} (nodes/origin/store.py)")
    synth.set_defaults(run=cmd_synth)
    testsrc = sub.add_parser("testsrc", help="make a test master")
    testsrc.add_argument("out")
    testsrc.add_argument("--seconds", type=float, default=10.0)
    testsrc.add_argument("--size", default="640x360")
    testsrc.add_argument("--fps", type=int, default=25)
    testsrc.set_defaults(run=cmd_testsrc)
    fill = sub.add_parser("fill", help="push titles to edge clusters in a window")
    fill.add_argument("--plan", required=True)
    fill.add_argument("--events")
    fill.add_argument("--node", default="origin-fill")
    fill.add_argument("--epoch", type=float, help="run start; the window counts from it")
    fill.set_defaults(run=cmd_fill)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ContentError, NginxError) as err:
        stderr_line(f"origin: {err}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
