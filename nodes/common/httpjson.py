"""The base of the node programs' small HTTP APIs (ingest, fill, the DNS REST API): HTTP/1.1
keep-alive, JSON answers with a length, and no per-request stderr lines (each program logs
what matters as events instead)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any, BinaryIO, Protocol

BODY_CHUNK = 1 << 16


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body_to(self, out: BinaryIO, length: int, digest: _Digest | None = None) -> int:
        """Copy the request body (`length` bytes by Content-Length) to `out` in 64 KiB
        chunks, feeding `digest` too; the bytes received, fewer if the sender stopped or
        went quiet past the connection's timeout. Write errors (a full disk) propagate."""
        received = 0
        try:
            while received < length:
                chunk = self.rfile.read(min(BODY_CHUNK, length - received))
                if not chunk:
                    break
                out.write(chunk)
                if digest is not None:
                    digest.update(chunk)
                received += len(chunk)
        except TimeoutError:
            pass
        return received
