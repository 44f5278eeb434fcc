"""`python -m nodes.dns --config FILE [--events F] [--decisions F] [--node N] [--epoch T]`

Runs the redirector (UDP and TCP on the configured address, and the REST API and the
content steering server (`nodes/steering`) if configured) until SIGTERM. A bad
configuration exits 2 with one line naming the field.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from nodes.common.events import stderr_line
from nodes.dns.config import ConfigError, load_config
from nodes.dns.redirector import Redirector
from nodes.dns.rest import start_rest
from nodes.dns.server import serve
from nodes.dns.zone import ZoneError
from nodes.steering.server import start_steering


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes.dns", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--events", help="JSONL events (ready, updates, zone changes)")
    parser.add_argument("--decisions", help="JSONL decision log, one line per answer")
    parser.add_argument("--node", default="dns")
    parser.add_argument("--epoch", type=float)
    args = parser.parse_args(argv)
    try:
        config = load_config(Path(args.config))
        redirector = Redirector(config, Path(args.events) if args.events else None,
                                Path(args.decisions) if args.decisions else None, args.node,
                                args.epoch)
    except ConfigError as err:
        stderr_line(f"dns: {err}")
        return 2
    except ZoneError as err:
        stderr_line(f"dns: {args.config}: records: {err.message}")
        return 2
    rest = steering = None
    try:
        if config.rest_port:
            if not config.rest_token:
                stderr_line("dns: rest.token is required when rest.port is set")
                return 2
            rest = start_rest(redirector, config.rest_address or config.address,
                              config.rest_port, config.rest_token)
        if config.steering is not None:
            steering = start_steering(redirector, config.steering)
        asyncio.run(serve(redirector))
    except OSError as err:
        stderr_line(f"dns: cannot listen on {config.address}:{config.port}: {err}")
        return 2
    finally:
        for front in (rest, steering):
            if front is not None:
                front.shutdown()
                front.server_close()
        redirector.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
