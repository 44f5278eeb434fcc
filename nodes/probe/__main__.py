"""`python -m nodes.probe --cluster NAME --dns ADDR[:PORT] --zone ZONE --key-name N
    --key-file F --target CIDR=ADDR … [--method icmp|tcp] [--interval S] [--count N]
    [--alpha A] [--load-url URL …] [--events F]`

Every interval: probe every target, smooth, push one signed UPDATE with the cluster's RTT
to each client network (and its load: the egress of all its servers over their capacity,
read from their load endpoints), and
log the round (`probe_round`: raw, smoothed, the redirector's RCODE). Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import urllib.request
from pathlib import Path

import dns.exception
import dns.tsig

from nodes.common.conventions import HTTP_PORT, PROBE_INTERVAL_S, PROBE_METHOD, PROBE_METHODS
from nodes.common.events import EventLog, stderr_line
from nodes.common.lifecycle import Terminated, exit_on_sigterm
from nodes.probe.measure import Target, probe_round
from nodes.probe.push import build_update, send_update
from nodes.probe.smooth import Smoother


def read_load(urls: list[str]) -> float | None:
    """The cluster's utilisation: the egress of every server that answers over their
    capacity (each server's load endpoint), so a cluster is as loaded as all its servers,
    not its first one; None if none answers."""
    egress = capacity = 0.0
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                sample = json.loads(response.read())
            egress += float(sample["egress_mbps"])
            capacity += float(sample["capacity_mbps"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return round(egress / capacity, 4) if capacity > 0 else None


def parse_targets(values: list[str]) -> list[Target]:
    targets = []
    for value in values:
        network, sep, address = value.partition("=")
        if not sep:
            raise ValueError(f"--target {value!r}: expected CIDR=ADDRESS")
        targets.append(Target(network, address))
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes.probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--dns", required=True, help="the redirector, ADDRESS[:PORT]")
    parser.add_argument("--zone", required=True)
    parser.add_argument("--key-name", required=True)
    parser.add_argument("--key-file", required=True, help="file holding the base64 secret")
    parser.add_argument("--algorithm", default="hmac-sha256")
    parser.add_argument("--target", action="append", default=[], required=True)
    parser.add_argument("--method", choices=PROBE_METHODS, default=PROBE_METHOD)
    parser.add_argument("--port", type=int, default=HTTP_PORT, help="TCP SYN probes' port")
    parser.add_argument("--interval", type=float, default=PROBE_INTERVAL_S)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--load-url", action="append", default=[],
                        help="a server's load endpoint; repeat for every server of the cluster")
    parser.add_argument("--rounds", type=int, default=0, help="stop after N rounds (0: never)")
    parser.add_argument("--events")
    parser.add_argument("--node", default="probe")
    parser.add_argument("--epoch", type=float)
    args = parser.parse_args(argv)
    try:
        targets = parse_targets(args.target)
        secret = base64.b64decode(Path(args.key_file).read_text().strip(), validate=True)
        smoother = Smoother(args.alpha)
    except (OSError, ValueError) as err:
        stderr_line(f"probe: {err}")
        return 2
    server, _, port = args.dns.partition(":")
    key = dns.tsig.Key(args.key_name, secret, args.algorithm)
    log = EventLog(Path(args.events) if args.events else None, args.node, args.epoch)
    exit_on_sigterm()
    rounds = 0
    try:
        while True:
            started = time.monotonic()
            raw = probe_round(targets, args.method, args.count, args.port,
                              timeout_s=min(1.0, args.interval / 2))
            smoothed = {n: v for n, r in raw.items()
                        if (v := smoother.add(n, r)) is not None and r is not None}
            load = read_load(args.load_url) if args.load_url else None  # the cluster's
            try:
                rcode = send_update(build_update(args.zone, args.cluster, smoothed, load, key),
                                    server, int(port or 53)) if smoothed or load is not None \
                    else "nothing_to_send"
            except (OSError, dns.exception.DNSException) as err:
                rcode = f"error: {err}"
            log.emit("probe_round", cluster=args.cluster, method=args.method,
                     raw_ms={n: None if v is None else round(v, 3) for n, v in raw.items()},
                     smoothed_ms={n: round(v, 3) for n, v in smoothed.items()}, load=load,
                     rcode=rcode, seconds=round(time.monotonic() - started, 3))
            rounds += 1
            if args.rounds and rounds >= args.rounds:
                return 0
            time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    except (KeyboardInterrupt, Terminated):
        return 0
    finally:
        log.close()


if __name__ == "__main__":
    sys.exit(main())
