"""`python -m nodes.uploader FILE --to http://ORIGIN:8080 --title ID [--spec FILE]`

Streams FILE with a Content-Length and its SHA-256, waits for the origin to transcode and
publish it, prints the origin's JSON answer and exits 0 on 2xx, 1 on a refusal (the
reason is on stderr), 2 on bad arguments. `--cut-after BYTES` stops sending after that
many bytes and half-closes the connection, as a dropped upload would, to exercise the
origin's refusal of truncated uploads.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from nodes.common.events import EventLog, stderr_line

CHUNK = 1 << 16


def upload(path: Path, base_url: str, title: str, spec: dict[str, object] | None = None,
           cut_after: int | None = None, timeout_s: float = 600.0) -> tuple[int, dict[str, object]]:
    """(HTTP status, JSON body) of the origin's answer."""
    url = urlsplit(base_url)
    if url.scheme != "http" or not url.hostname:
        raise ValueError(f"--to {base_url!r}: expected http://HOST[:PORT]")
    size = path.stat().st_size
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout_s)
    conn.putrequest("PUT", f"/titles/{title}")
    conn.putheader("Content-Length", str(size))
    conn.putheader("Content-Type", "video/mp4")
    conn.putheader("X-Content-SHA256", digest)
    if spec:
        conn.putheader("X-Title-Spec", json.dumps(spec, separators=(",", ":")))
    conn.endheaders()
    sent = 0
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            if cut_after is not None and sent + len(chunk) > cut_after:
                chunk = chunk[: max(0, cut_after - sent)]
            if chunk:
                conn.send(chunk)
                sent += len(chunk)
            if cut_after is not None and sent >= cut_after:
                assert conn.sock is not None
                conn.sock.shutdown(socket.SHUT_WR)
                break
    response = conn.getresponse()
    body = response.read()
    conn.close()
    try:
        answer = json.loads(body) if body else {}
    except ValueError:
        answer = {"error": body.decode(errors="replace")[:200]}
    return response.status, answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes.uploader", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file")
    parser.add_argument("--to", required=True, help="the origin's ingest URL")
    parser.add_argument("--title", required=True)
    parser.add_argument("--spec", help="title spec (YAML) to send with the upload")
    parser.add_argument("--cut-after", type=int, help="send only this many bytes")
    parser.add_argument("--events")
    parser.add_argument("--node", default="uploader")
    parser.add_argument("--epoch", type=float)
    args = parser.parse_args(argv)
    path = Path(args.file)
    if not path.is_file():
        stderr_line(f"uploader: {path}: no such file")
        return 2
    spec = yaml.safe_load(Path(args.spec).read_text()) if args.spec else None
    log = EventLog(Path(args.events) if args.events else None, args.node, args.epoch)
    started = time.monotonic()
    try:
        status, answer = upload(path, args.to, args.title, spec, args.cut_after)
    except (OSError, ValueError, http.client.HTTPException) as err:
        log.emit("upload_failed", title=args.title, reason=str(err))
        stderr_line(f"uploader: {args.title}: {err}")
        return 1
    log.emit("upload_done", title=args.title, status=status, answer=answer,
             seconds=round(time.monotonic() - started, 3), bytes=path.stat().st_size)
    print(json.dumps({"status": status, **answer}))
    if status >= 300:
        stderr_line(f"uploader: {args.title}: refused ({status}): {answer.get('error')}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
