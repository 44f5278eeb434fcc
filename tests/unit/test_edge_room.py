"""An edge redirects only to a cluster with room: the load monitor reads the target's own
`/load` (a real HTTP server here) and keeps its overload flag down while the target is over
its threshold."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nodes.common.events import EventLog
from nodes.edge.monitor import LoadMonitor


@pytest.fixture
def target() -> Iterator[tuple[str, dict[str, float]]]:
    document = {"utilisation": 0.2, "threshold": 1.0}

    class Load(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Load)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/load", document
    server.shutdown()
    server.server_close()


def monitor(tmp_path: Path, url: str | None) -> LoadMonitor:
    return LoadMonitor("edge_a", tmp_path / "access", tmp_path / "load.json",
                       tmp_path / "flag", tmp_path, EventLog(None, "edge"), 10.0,
                       redirect_load_url=url)


def test_the_target_has_room_only_under_its_threshold(
        tmp_path: Path, target: tuple[str, dict[str, float]]) -> None:
    url, document = target
    assert monitor(tmp_path, url)._target_has_room()
    document["utilisation"] = 1.3
    assert not monitor(tmp_path, url)._target_has_room()


def test_a_target_without_a_load_endpoint_has_room(tmp_path: Path) -> None:
    assert monitor(tmp_path, None)._target_has_room()
    assert monitor(tmp_path, "http://127.0.0.1:9/load")._target_has_room(), "the origin"
