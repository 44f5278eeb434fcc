"""`python -m nodes.edge serve --cluster NAME --mode pull|push --work DIR …`

    pull:  --parent HOST:PORT [--cache-size-mb N]
    push:  --store DIR [--miss redirect|proxy] [--parent HOST:PORT] [--fill-port 8081]
    both:  [--redirect-to URL] [--capacity-mbps C] [--threshold U] [--max-connections N]
           [--cmsd] [--duress-above U] [--sibling URL …]
           [--address A] [--port 80] [--interval S] [--window S] [--events F] [--node N]
           [--epoch T]

nginx serves on ADDRESS:PORT; the load monitor samples every interval; in push mode the
fill endpoint listens on --fill-port. With --cmsd every response carries CMSD-Static and
CMSD-Dynamic (etp, mb, and du while the cluster's utilisation over the last --window
seconds, by default one interval, is over --duress-above, by default the threshold:
nodes/edge/sites.py); the cluster is this server and each --sibling (another server's
/load URL) that answers. Writes
`<work>/nginx.pids` once serving (the engine records them), runs until SIGTERM. Bad
arguments exit 2 with the reason.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from pathlib import Path

from nodes.common.conventions import HTTP_PORT, SHED_ABOVE
from nodes.common.events import EventLog, stderr_line
from nodes.common.lifecycle import Terminated, exit_on_sigterm
from nodes.common.nginx import Nginx, NginxError, NginxSite
from nodes.edge.monitor import LoadMonitor
from nodes.edge.receiver import make_receiver
from nodes.edge.shares import StreamShares
from nodes.edge.sites import LOG_FIELDS, NJS_MODULE, EdgeSite


def check(args: argparse.Namespace) -> str | None:
    if args.mode == "pull" and not args.parent:
        return "pull mode needs --parent HOST:PORT"
    if args.mode == "push" and not args.store:
        return "push mode needs --store DIR"
    if args.mode == "push" and args.miss == "redirect" and not args.redirect_to:
        return "push mode with --miss redirect needs --redirect-to URL"
    if args.mode == "push" and args.miss == "proxy" and not args.parent:
        return "push mode with --miss proxy needs --parent HOST:PORT"
    if args.capacity_mbps <= 0 or args.threshold <= 0:
        return "--capacity-mbps and --threshold must be positive"
    if args.interval <= 0 or (args.window is not None and args.window < args.interval):
        return "--interval must be positive and --window at least one interval"
    if args.cmsd and not NJS_MODULE.exists():
        return (f"--cmsd needs nginx's JavaScript module {NJS_MODULE} (Debian: "
                "libnginx-mod-http-js; `make setup` installs it)")
    return None


def _serve_while_nginx_runs(nginx: Nginx, monitor: LoadMonitor, log: EventLog) -> int:
    """Serve until stopped; 3 if nginx exits first. The edge then ends with it, as a service
    manager ends a unit whose main process died (its workers are ended on the way out), so
    the engine's program watch sees the failure instead of workers serving on unwatched."""
    assert nginx.process is not None
    while monitor.is_alive():
        try:
            returncode = nginx.process.wait(0.5)
        except subprocess.TimeoutExpired:
            continue
        how = (f"signal {signal.Signals(-returncode).name}" if returncode < 0
               else f"exit {returncode}")
        log.emit("nginx_exit", pid=nginx.process.pid, how=how)
        stderr_line(f"edge: its nginx (pid {nginx.process.pid}) ended on {how}; the edge "
                    "ends with it")
        return 3
    return 0


def serve(args: argparse.Namespace) -> int:
    problem = check(args)
    if problem:
        stderr_line(f"edge: {problem}")
        return 2
    exit_on_sigterm()
    status = 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    events = Path(args.events) if args.events else None
    log = EventLog(events, args.node, args.epoch)
    access_log = events.with_name(f"{args.node}.access.jsonl") if events else \
        work / "access.jsonl"
    site = EdgeSite(args.cluster, args.mode, work, args.parent, args.cache_size_mb,
                    Path(args.store) if args.store else None, args.miss, args.redirect_to,
                    args.cmsd, args.capacity_mbps, args.duress_above or args.threshold)
    nginx = Nginx(NginxSite(args.node, f"{args.address}:{args.port}", work, access_log,
                            site.server_body(), site.http_extra(), LOG_FIELDS,
                            master=args.mode == "pull", modules=site.modules))
    receiver = None
    monitor = LoadMonitor(args.cluster, access_log, site.load_file, site.overload_flag,
                          site.cache_dir if args.mode == "pull" else Path(args.store), log,
                          args.capacity_mbps, args.threshold, args.max_connections,
                          args.interval, f"http://127.0.0.1:{args.port}/nginx_status",
                          f"{args.redirect_to.rstrip('/')}/load" if args.redirect_to else None,
                          site.duress_flag if args.cmsd else None, args.duress_above,
                          StreamShares(site.shares_file) if args.cmsd else None,
                          args.window, tuple(args.sibling))
    try:
        site.overload_flag.unlink(missing_ok=True)
        site.duress_flag.unlink(missing_ok=True)
        site.write_script()
        monitor.publish_shares()
        nginx.start()
        written = work / "nginx.pids.tmp"
        written.write_text("\n".join(map(str, nginx.pids())) + "\n")
        written.replace(work / "nginx.pids")  # whole, for the engine that waits for it
        if args.mode == "push":
            receiver = make_receiver(args.address, args.fill_port, Path(args.store), log)
            threading.Thread(target=receiver.serve_forever, name="fill", daemon=True).start()
        monitor.start()
        log.emit("ready", cluster=args.cluster, mode=args.mode,
                 http=f"{args.address}:{args.port}",
                 fill=f"{args.address}:{args.fill_port}" if receiver else None)
        status = _serve_while_nginx_runs(nginx, monitor, log)
    except NginxError as err:
        stderr_line(f"edge: {err}")
        return 2
    except (KeyboardInterrupt, Terminated):
        pass
    finally:
        monitor.stopping.set()
        if receiver is not None:
            receiver.shutdown()
            receiver.server_close()
        nginx.stop()
        site.overload_flag.unlink(missing_ok=True)
        site.duress_flag.unlink(missing_ok=True)
        log.emit("stopped")
        log.close()
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes.edge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--cluster", required=True)
    p.add_argument("--mode", choices=["pull", "push"], required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--parent", help="HOST:PORT of the origin or a parent cluster")
    p.add_argument("--cache-size-mb", type=int, default=1024)
    p.add_argument("--store", help="push: the filled content")
    p.add_argument("--miss", choices=["redirect", "proxy"], default="redirect")
    p.add_argument("--redirect-to", help="base URL for 302s (overload, push misses)")
    p.add_argument("--fill-port", type=int, default=8081)
    p.add_argument("--capacity-mbps", type=float, default=1000.0)
    p.add_argument("--threshold", type=float, default=SHED_ABOVE)
    p.add_argument("--max-connections", type=int, default=0)
    p.add_argument("--cmsd", action="store_true", help="send CMSD-Static/CMSD-Dynamic")
    p.add_argument("--duress-above", type=float,
                   help="CMSD du (and mb's share) above this utilisation (default: --threshold)")
    p.add_argument("--sibling", action="append", default=[],
                   help="another server of the cluster: its /load URL (repeatable)")
    p.add_argument("--address", default="0.0.0.0")
    p.add_argument("--port", type=int, default=HTTP_PORT)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--window", type=float,
                   help="seconds utilisation_window (and du) covers (default: --interval)")
    p.add_argument("--events")
    p.add_argument("--node", default="edge")
    p.add_argument("--epoch", type=float)
    args = parser.parse_args(argv)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
