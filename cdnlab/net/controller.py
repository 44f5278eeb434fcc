"""The OpenFlow controller of an emulation's switches: `python -m nodes.controller` (os-ken
apps) in the root namespace, where Open vSwitch runs, listening on loopback — as Mininet
runs its own controllers. The engine writes the apps' view of the network (which switch
port is which link, of which class) and records the process in the run's ledger.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cdnlab.errors import EnvironmentProblem
from cdnlab.topology.spec import HOST, ROUTER
from nodes.common.events import new_lines

CONTROLLERS = ("os-ken",)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_map(emu: Any) -> dict[str, dict[str, Any]]:
    """Every switch port's interface name → its switch, link, link class and peer."""
    found: dict[str, dict[str, Any]] = {}
    for link in emu.topology.links:
        for end, peer in ((link.a, link.b), (link.b, link.a)):
            if emu.topology.kind(end) in (HOST, ROUTER):
                continue
            name = emu.plan.interface(end, link.index).name
            found[name] = {"switch": end, "link": link.name, "class": link.klass,
                           "peer": peer}
    return found


class Controller:
    def __init__(self, emu: Any, kind: str = "os-ken", interval_s: float = 1.0) -> None:
        if kind not in CONTROLLERS:
            raise EnvironmentProblem(f"unknown controller {kind!r} (known: "
                                     f"{', '.join(CONTROLLERS)})")
        self.emu = emu
        self.port = free_port()
        self.events = Path(emu.run_dir) / "events" / "controller.jsonl"
        self.config = Path(emu.run_dir) / "work" / "controller.json"
        self.interval_s = interval_s
        self.process: subprocess.Popen[bytes] | None = None
        self._reported = False
        self.stop_requested = False  # for the run's program watch: an exit asked for
        self.injected: str | None = None  # ... or one a timeline fault event caused
        self._read_to = 0  # how far port_stats() has read the event file
        self._port_stats: list[dict[str, Any]] = []

    def start(self) -> None:
        self.events.parent.mkdir(parents=True, exist_ok=True)
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(json.dumps({
            "events": str(self.events), "epoch": self.emu.t0, "interval_s": self.interval_s,
            "ports": port_map(self.emu)}, indent=1))
        stderr = (Path(self.emu.run_dir) / "logs")
        stderr.mkdir(parents=True, exist_ok=True)
        with (stderr / "controller.stderr").open("wb") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nodes.controller", "--host", "127.0.0.1", "--port",
                 str(self.port)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=errors, env=os.environ | {"CDNLAB_CONTROLLER_CONFIG": str(self.config),
                                                 "PYTHONWARNINGS": "ignore"})
        self.emu.ledger.add_process(self.process.pid, "os-ken controller")
        self.emu.ledger.join_part(self.process.pid, "controller")
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise EnvironmentProblem("the controller exited: " + (
                    stderr / "controller.stderr").read_text(errors="replace")[-400:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise EnvironmentProblem("the controller does not listen") from None
                time.sleep(0.1)

    def tune_switches(self, bridges: list[str], probe_ms: int = 1000) -> None:
        """Probe the controller every second (OVS's default is 5 s), so a switch in
        standalone fail mode takes over its own forwarding about 3 s after losing it."""
        for bridge in bridges:
            uuids = subprocess.run(["ovs-vsctl", "--timeout=5", "get", "bridge", bridge,
                                    "controller"], capture_output=True, text=True,
                                   check=False).stdout.strip(" []\n")
            for uuid in filter(None, (u.strip() for u in uuids.split(","))):
                subprocess.run(["ovs-vsctl", "--timeout=5", "set", "controller", uuid,
                                f"inactivity_probe={probe_ms}", f"max_backoff={probe_ms}"],
                               capture_output=True, check=False)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check(self) -> bool:
        """Whether the controller still runs; its loss is written once to its event log
        (`controller_lost`), for the run's results."""
        if self.alive or self._reported:
            return self.alive
        self._reported = True
        with self.events.open("a") as out:
            out.write(json.dumps({"t": round(time.time() - self.emu.t0, 6),
                                  "node": "engine", "event": "controller_lost",
                                  "exit": self.process.returncode if self.process else None})
                      + "\n")
        return False

    def kill(self) -> None:
        """Kill it outright (a controller failure), as a test or a scenario event does."""
        if self.alive:
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        self.stop_requested = True
        if self.alive:
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def port_stats(self) -> list[dict[str, Any]]:
        """Every `port_stats` event so far. Each call reads on from where the last stopped,
        up to the last complete line (the apps may be writing the next one)."""
        lines, self._read_to = new_lines(self.events, self._read_to)
        for line in lines:
            event = json.loads(line)
            if event["event"] == "port_stats":
                self._port_stats.append(event)
        return list(self._port_stats)
