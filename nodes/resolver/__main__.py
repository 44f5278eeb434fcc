"""`python -m nodes.resolver serve --address A --authority ADDR[:PORT] --work DIR [--ecs] …`

Runs unbound (`unbound -d`) on this host as a recursive resolver of the CDN zone (see
`unbound_conf`), waits until it answers, then logs `ready` and every `--interval` seconds a
`stats` event read with `unbound-control stats_noreset`: queries, cache hits and misses,
and with ECS the queries that carried a client subnet and those answered from the subnet
cache. Runs until SIGTERM; unbound dies with it. Bad arguments or a configuration unbound
rejects exit 2 with the reason.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dnslib import DNSRecord

from nodes.common.conventions import ZONE
from nodes.common.events import EventLog, stderr_line
from nodes.common.lifecycle import Terminated, exit_on_sigterm, spawn_child
from nodes.resolver.unbound_conf import ResolverConfig, parse_stats, render

STATS = {"queries": "total.num.queries", "cache_hits": "total.num.cachehits",
         "cache_misses": "total.num.cachemiss", "ecs_queries": "num.query.subnet",
         "ecs_cache_hits": "num.query.subnet_cache"}


def answers(address: str, port: int, zone: str, timeout_s: float = 0.5) -> bool:
    """Does the resolver answer a recursive SOA query for the zone?"""
    query = DNSRecord.question(zone, "SOA")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.sendto(bytes(query.pack()), (address, port))
            data, _ = sock.recvfrom(4096)
        except OSError:
            return False
    return DNSRecord.parse(data).header.id == query.header.id


def stats(config: ResolverConfig) -> dict[str, Any]:
    done = subprocess.run(["unbound-control", "-c", str(config.path), "stats_noreset"],
                          capture_output=True, text=True, check=False, timeout=10)
    if done.returncode:
        return {"error": (done.stderr or done.stdout).strip()[-200:]}
    raw = parse_stats(done.stdout)
    return {name: int(raw[key]) if key in raw else None for name, key in STATS.items()}


def serve(args: argparse.Namespace) -> int:
    authority, _, port = args.authority.partition(":")
    config = ResolverConfig(args.address, args.zone, authority, int(port or 53), args.port,
                            args.ecs, Path(args.work).resolve())
    try:
        config.work.mkdir(parents=True, exist_ok=True)
        config.path.write_text(render(config))
    except (OSError, ValueError) as err:
        stderr_line(f"resolver: {err}")
        return 2
    checked = subprocess.run(["unbound-checkconf", str(config.path)], capture_output=True,
                             text=True, check=False)
    if checked.returncode:
        stderr_line(f"resolver: unbound rejects {config.path}: {checked.stdout.strip()}")
        return 2
    exit_on_sigterm()
    log = EventLog(Path(args.events) if args.events else None, args.node, args.epoch)
    with (config.work / "unbound.stderr").open("wb") as errors:
        unbound = spawn_child(["unbound", "-d", "-c", str(config.path)],
                              stdin=subprocess.DEVNULL, stdout=errors, stderr=errors)
    try:
        deadline = time.monotonic() + args.start_timeout
        while not answers(args.address, args.port, config.zone):
            if unbound.poll() is not None or time.monotonic() > deadline:
                stderr_line(f"resolver: unbound did not answer on {args.address}:{args.port}"
                            f" (see {config.work / 'unbound.log'})")
                return 1
            time.sleep(0.1)
        (config.work / "unbound.pids").write_text(f"{unbound.pid}\n")
        log.emit("ready", address=args.address, port=args.port, authority=args.authority,
                 ecs=args.ecs, pid=unbound.pid)
        while unbound.poll() is None:
            time.sleep(args.interval)
            log.emit("stats", **stats(config))
        stderr_line(f"resolver: unbound exited ({unbound.returncode})")
        return 1
    except (KeyboardInterrupt, Terminated):
        log.emit("stats", final=True, **stats(config))
        return 0
    finally:
        if unbound.poll() is None:
            unbound.terminate()
            try:
                unbound.wait(5)
            except subprocess.TimeoutExpired:
                unbound.kill()
                unbound.wait()
        log.emit("stopped")
        log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes.resolver", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--address", required=True, help="the address unbound listens on")
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--authority", required=True, help="the redirector, ADDR[:PORT]")
    p.add_argument("--zone", default=ZONE)
    p.add_argument("--ecs", action="store_true", help="send EDNS Client Subnet to it")
    p.add_argument("--work", required=True)
    p.add_argument("--interval", type=float, default=1.0, help="seconds between stats")
    p.add_argument("--start-timeout", type=float, default=15.0)
    p.add_argument("--events")
    p.add_argument("--node", default="resolver")
    p.add_argument("--epoch", type=float)
    args = parser.parse_args(argv)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
