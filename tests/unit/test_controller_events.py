"""The engine's reading of the controller's event file: read on from where it stopped, and
never a line the controller apps are still writing."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from cdnlab.net.controller import Controller


def _line(event: str, **fields: object) -> str:
    return json.dumps({"t": 1.0, "node": "controller", "event": event, **fields}) + "\n"


def test_port_stats_read_on_and_wait_for_a_whole_line(tmp_path: Path) -> None:
    controller = Controller(SimpleNamespace(run_dir=tmp_path))
    assert controller.port_stats() == []  # no file yet
    controller.events.parent.mkdir(parents=True)
    with controller.events.open("w") as out:
        out.write(_line("switch_up", dpid=1) + _line("port_stats", name="s1-eth1", rx_bytes=10))
    assert [s["rx_bytes"] for s in controller.port_stats()] == [10]
    half = _line("port_stats", name="s1-eth1", rx_bytes=20)
    with controller.events.open("a") as out:
        out.write(half[:15])  # the apps are in the middle of writing it
    assert [s["rx_bytes"] for s in controller.port_stats()] == [10]
    with controller.events.open("a") as out:
        out.write(half[15:] + _line("controller_lost", exit=-9))
    assert [s["rx_bytes"] for s in controller.port_stats()] == [10, 20]
    assert [s["rx_bytes"] for s in controller.port_stats()] == [10, 20]  # nothing new
