"""A real HTTP server on loopback answering every GET with a JSON document the test may
change while it runs: a stand-in for an edge's `/load` in tests of what reads it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def serve_json(document: dict[str, Any]) -> ThreadingHTTPServer:
    """Serve `document` (read at each request) until `shutdown()`; the port is
    `server.server_address[1]`."""

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
