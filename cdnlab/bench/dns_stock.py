"""`python -m cdnlab.bench.dns_stock --config FILE`: the baseline for `cdnlab bench dns` —
the redirector's own resolver behind dnslib's stock threaded `DNSServer` (UDP only), the
server the design card started from. Runs until SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from dnslib import DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from nodes.dns.config import load_config
from nodes.dns.redirector import Redirector


class StockResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, redirector: Redirector) -> None:
        self.redirector = redirector

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        return self.redirector.resolver.resolve(request, handler.client_address[0]).reply


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m cdnlab.bench.dns_stock")
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    config = load_config(Path(args.config))
    redirector = Redirector(config)
    server = DNSServer(StockResolver(redirector), port=config.port, address=config.address,
                       logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data"))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    server.start_thread()
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
