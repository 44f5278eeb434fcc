"""The origin's HTTP side: nginx serves the content store, and a small ingest endpoint
takes uploads (studio masters pushed by a studio, videos sent by uploader clients).

    PUT|POST /titles/<id>   body: the video; Content-Length required;
                            optional X-Title-Spec (JSON TitleSpec), X-Content-SHA256
        201 published · 200 unchanged (same input and spec) · 400 bad request or truncated
        upload · 409 same title already ingesting · 411 no length · 413 too large ·
        415 not a video · 422 damaged video · 500 transcode failed · 507 disk full
    GET /titles, /titles/<id>, /healthz

Every answer is JSON; errors carry {"error": reason}. The upload is written to the store's
hidden `.incoming` directory while it is hashed, and removed whatever the outcome.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from nodes.common.conventions import ORIGIN_FAULT_STATUSES, origin_fault_flag
from nodes.common.events import EventLog
from nodes.common.httpjson import JsonHandler
from nodes.common.nginx import preflight
from nodes.origin.errors import ContentError, disk_full
from nodes.origin.ingest import ingest_file
from nodes.origin.profiles import TitleSpec, parse_title_spec
from nodes.origin.store import ContentStore, check_title_id


class IngestService:
    """What the handler needs: the store, the default spec, the log, titles in flight."""

    def __init__(self, store: ContentStore, default_spec: TitleSpec, log: EventLog,
                 max_upload_bytes: int = 4 << 30, read_timeout_s: float = 30.0) -> None:
        self.store = store
        self.default_spec = default_spec
        self.log = log
        self.max_upload_bytes = max_upload_bytes
        self.read_timeout_s = read_timeout_s
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, title: str) -> None:
        with self._lock:
            if title in self._busy:
                raise ContentError(f"title {title!r} is already being ingested", 409)
            self._busy.add(title)

    def release(self, title: str) -> None:
        with self._lock:
            self._busy.discard(title)


class IngestHandler(JsonHandler):
    server_version = "cdnlab-origin"
    service: IngestService  # set on the subclass made by make_server

    def _title_from_path(self) -> str | None:
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "titles":
            return parts[1]
        return None

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path == "/healthz":
            self._reply(200, {"ok": True})
        elif path == "/titles":
            self._reply(200, self.service.store.catalog())
        elif (title := self._title_from_path()) is not None:
            entry = self.service.store.entry(title)
            self._reply(200, entry) if entry else self._reply(404, {"error": f"no title {title!r}"})
        else:
            self._reply(404, {"error": f"no such resource {path!r}"})

    def do_PUT(self) -> None:
        self._ingest()

    def do_POST(self) -> None:
        self._ingest()

    def _ingest(self) -> None:
        service = self.service
        title = self._title_from_path()
        claimed = False
        incoming = service.store.incoming_file()
        try:
            if title is None:
                raise ContentError("upload to /titles/<title id>", 404)
            check_title_id(title)
            spec = self._spec()
            length = self._length()
            service.claim(title)
            claimed = True
            digest = self._receive(incoming, length)
            expected = self.headers.get("X-Content-SHA256")
            if expected and expected.lower() != digest:
                raise ContentError("upload damaged in transit: X-Content-SHA256 does not match "
                                   "the bytes received", 400)
            service.log.emit("upload_received", title=title, bytes=length,
                             client=self.client_address[0])
            result = ingest_file(service.store, incoming, title, spec, service.log, tty=False,
                                 source_sha256=digest, label=f"upload of {title}")
            status = 201 if result.status == "published" else 200
            self._reply(status, {"title": title, "status": result.status,
                                 "content_key": result.entry["content_key"],
                                 "segments": result.entry["segments"],
                                 "bytes": result.entry["bytes"],
                                 "seconds": round(result.seconds, 3)})
        except ContentError as err:
            service.log.emit("ingest_refused", title=title, status=err.status,
                             reason=err.reason, client=self.client_address[0])
            self.close_connection = True
            # the client may be gone (a cut upload): the event log has the reason then
            with contextlib.suppress(OSError):
                self._reply(err.status, {"error": err.reason, "title": title})
        finally:
            incoming.unlink(missing_ok=True)
            if claimed and title is not None:
                service.release(title)

    def _spec(self) -> TitleSpec:
        raw = self.headers.get("X-Title-Spec")
        if not raw:
            return self.service.default_spec
        try:
            data = json.loads(raw)
        except ValueError as err:
            raise ContentError(f"X-Title-Spec is not JSON: {err}", 400) from err
        return parse_title_spec(data, "X-Title-Spec")

    def _length(self) -> int:
        if self.headers.get("Transfer-Encoding"):
            raise ContentError("chunked uploads are not accepted: send Content-Length", 411)
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise ContentError("Content-Length is required", 411)
        try:
            length = int(raw)
        except ValueError as err:
            raise ContentError(f"Content-Length {raw!r} is not a number", 400) from err
        if length <= 0:
            raise ContentError("the upload is empty", 400)
        if length > self.service.max_upload_bytes:
            raise ContentError(f"upload of {length} bytes is over the limit of "
                               f"{self.service.max_upload_bytes}", 413)
        return length

    def _receive(self, target: Path, length: int) -> str:
        digest = hashlib.sha256()
        self.connection.settimeout(self.service.read_timeout_s)
        try:
            with target.open("wb") as out:
                received = self._body_to(out, length, digest)
        except OSError as err:
            if err.errno == errno.ENOSPC:
                raise disk_full("receiving the upload") from err
            raise
        if received < length:
            raise ContentError(f"truncated upload: received {received} of {length} bytes", 400)
        return digest.hexdigest()


def make_server(address: str, port: int, service: IngestService) -> ThreadingHTTPServer:
    handler = type("BoundIngestHandler", (IngestHandler,), {"service": service})
    server = ThreadingHTTPServer((address, port), handler)
    server.daemon_threads = True
    return server


def origin_site_body(store: Path, fault_dir: Path | None = None,
                     slow_kbps: tuple[int, ...] = ()) -> str:
    """The content store, as files; with `fault_dir`, the fault switches: each status of
    ORIGIN_FAULT_STATUSES answered to every request while its flag exists, and each rate of
    `slow_kbps` a cap on every response's rate (nginx's limit_rate) while its flag does."""
    faults = ""
    if fault_dir is not None:
        lines = ["        set $fault_rate 0;"]
        lines += [f"        if (-f {origin_fault_flag(fault_dir, slow_kbps=k)}) "
                  f"{{ set $fault_rate {k * 125}; }}" for k in slow_kbps]
        lines += [f"        if (-f {origin_fault_flag(fault_dir, status)}) {{ return {status}; }}"
                  for status in ORIGIN_FAULT_STATUSES]
        lines.append("        limit_rate $fault_rate;")
        faults = "\n".join(lines) + "\n"
    return f"""        root {store};
{faults}        location / {{
{preflight()}            try_files $uri =404;
        }}"""

