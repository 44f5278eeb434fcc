"""`python -m nodes.common.wait_http URL [--timeout S]`: exit 0 as soon as URL answers with
a status below 500, 1 with the last error if it does not within the timeout. The engine runs
it inside a host's namespace to check a node program is serving."""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request


def wait(url: str, timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                response.read()
                return None
        except urllib.error.HTTPError as err:
            if err.code < 500:
                return None
            last = f"HTTP {err.code}"
        except OSError as err:
            last = str(err)
        time.sleep(0.05)
    return last


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes.common.wait_http")
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    error = wait(args.url, args.timeout)
    if error is not None:
        print(f"{args.url}: not answering after {args.timeout:g} s: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
