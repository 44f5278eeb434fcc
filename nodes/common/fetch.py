"""`python -m nodes.common.fetch URL… [--header K:V] [--method M --data BODY] [--parallel]
[--no-follow]`: request each URL from wherever it runs (inside an emulated host, through
`mnexec`) and print one JSON line per URL: status, headers, body length, seconds, SHA-256
and (if short) the body. Tests and operators use it to see what a server serves to a given
host, or to call a REST API."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def fetch(url: str, headers: dict[str, str], timeout_s: float, method: str = "GET",
          data: bytes | None = None, follow: bool = True) -> dict[str, object]:
    request = urllib.request.Request(url, headers=headers, method=method, data=data)
    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(
        _NoRedirect)
    started = time.monotonic()
    try:
        with opener.open(request, timeout=timeout_s) as response:
            body = response.read()
            status, got = response.status, dict(response.headers)
    except urllib.error.HTTPError as err:
        body, status, got = err.read(), err.code, dict(err.headers)
    except OSError as err:
        return {"url": url, "error": str(err)}
    return {"url": url, "status": status, "headers": got, "bytes": len(body),
            "seconds": round(time.monotonic() - started, 6),
            "sha256": hashlib.sha256(body).hexdigest(),
            "text": body.decode(errors="replace") if len(body) <= 4096 else None}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes.common.fetch")
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--data", help="request body (sent as application/json)")
    parser.add_argument("--parallel", action="store_true", help="all URLs at once")
    parser.add_argument("--no-follow", action="store_true", help="report redirects as such")
    args = parser.parse_args()
    headers = {k.strip(): v.strip() for k, v in (h.split(":", 1) for h in args.header)}
    if args.data is not None:
        headers.setdefault("Content-Type", "application/json")
    body = args.data.encode() if args.data is not None else None

    def one(url: str) -> dict[str, object]:
        return fetch(url, headers, args.timeout, args.method, body, not args.no_follow)

    if args.parallel:
        with ThreadPoolExecutor(len(args.urls)) as pool:
            results = list(pool.map(one, args.urls))
    else:
        results = [one(url) for url in args.urls]
    for result in results:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
