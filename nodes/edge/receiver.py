"""The fill endpoint of a push-mode edge: the origin's fill agent PUTs files here, and only
complete, verified files become visible.

    GET /fill-status/<path>   {"size": bytes held so far, "complete": bool}
    PUT /fill/<path>          body: the file from `Content-Range: bytes START-END/TOTAL`
                              (or whole); header X-SHA256 of the whole file

Bytes go to STORE/.partial/<path> (hidden from nginx), appended at START, which must be what
is already held (else 409 with the size held, so the sender resumes from there). When the
file is whole its SHA-256 is checked; a match is renamed into STORE/<path> in one step, a
mismatch is deleted (422). A cut transfer leaves only the hidden partial file, from which
the next attempt resumes.
"""

from __future__ import annotations

import contextlib
import os
import re
from http.server import ThreadingHTTPServer
from pathlib import Path

from nodes.common.events import EventLog
from nodes.common.files import sha256_file
from nodes.common.httpjson import JsonHandler

_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


def safe_path(root: Path, relative: str) -> Path:
    path = (root / relative.lstrip("/")).resolve()
    if root.resolve() not in path.parents or any(p.startswith(".") for p in Path(relative).parts):
        raise ValueError(f"path {relative!r} is outside the store")
    return path


class FillHandler(JsonHandler):
    store: Path
    log: EventLog

    def _paths(self, prefix: str) -> tuple[str, Path, Path]:
        relative = self.path.split("?")[0][len(prefix):]
        final = safe_path(self.store, relative)
        partial = safe_path(self.store / ".partial", relative)
        return relative, final, partial

    def do_GET(self) -> None:
        if not self.path.startswith("/fill-status/"):
            self._reply(404, {"error": "GET /fill-status/<path>"})
            return
        try:
            _relative, final, partial = self._paths("/fill-status/")
        except ValueError as err:
            self._reply(400, {"error": str(err)})
            return
        if final.exists():
            self._reply(200, {"size": final.stat().st_size, "complete": True})
        else:
            size = partial.stat().st_size if partial.exists() else 0
            self._reply(200, {"size": size, "complete": False})

    def do_PUT(self) -> None:
        # kept alive when the body is read in full; closed on a refusal that leaves it
        if not self.path.startswith("/fill/"):
            self.close_connection = True
            self._reply(404, {"error": "PUT /fill/<path>"})
            return
        try:
            relative, final, partial = self._paths("/fill/")
            length = int(self.headers.get("Content-Length", ""))
            digest = self.headers["X-SHA256"].lower()
        except (ValueError, KeyError) as err:
            self.close_connection = True
            self._reply(400, {"error": f"bad request: {err}"})
            return
        match = _RANGE.match(self.headers.get("Content-Range", ""))
        start, total = (int(match[1]), int(match[3])) if match else (0, length)
        held = partial.stat().st_size if partial.exists() else 0
        if start != held:
            self.close_connection = True
            self._reply(409, {"error": f"resume from {held}", "size": held})
            return
        partial.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("ab") as out:
            received = self._body_to(out, length)
        size = held + received
        if size < total:
            self.close_connection = received < length
            self._reply(200 if received == length else 400,
                        {"size": size, "complete": False})
            return
        if sha256_file(partial) != digest:
            partial.unlink()
            self.log.emit("fill_rejected", path=relative, reason="sha256 mismatch")
            self._reply(422, {"error": "sha256 mismatch: the file was discarded", "size": 0})
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, final)
        with contextlib.suppress(OSError):
            partial.parent.rmdir()
        self._reply(201, {"size": size, "complete": True})


def make_receiver(address: str, port: int, store: Path, log: EventLog) -> ThreadingHTTPServer:
    store.mkdir(parents=True, exist_ok=True)
    (store / ".partial").mkdir(exist_ok=True)
    handler = type("BoundFillHandler", (FillHandler,), {"store": store, "log": log})
    server = ThreadingHTTPServer((address, port), handler)
    server.daemon_threads = True
    return server
