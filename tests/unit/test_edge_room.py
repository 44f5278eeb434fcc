"""An edge redirects only to a cluster with room: the load monitor reads the target's own
`/load` (a real HTTP server here) and keeps its overload flag down while the target is over
its threshold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nodes.common.events import EventLog
from nodes.edge.monitor import LoadMonitor
from tests.json_endpoint import serve_json


@pytest.fixture
def target() -> Iterator[tuple[str, dict[str, float]]]:
    document = {"utilisation": 0.2, "threshold": 1.0}
    server = serve_json(document)
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
