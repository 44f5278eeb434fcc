"""Bytes on every link of the emulation, sampled once a second: each link is read at one
end, from the kernel's own counters — a switch port in the root namespace
(/sys/class/net/<port>/statistics), or a host's or router's interface through
/proc/<pid>/net/dev, which shows that process's network namespace. Both directions count.
Samples go to the engine's log as `link_bytes` events, with the link classes."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from cdnlab.topology.spec import HOST, ROUTER
from nodes.common.events import EventLog


class LinkCounters(threading.Thread):
    def __init__(self, emu: Any, log: EventLog, interval_s: float = 1.0) -> None:
        super().__init__(name="link-counters", daemon=True)
        self.log = log
        self.interval_s = interval_s
        self.stopping = threading.Event()
        self.reads: list[tuple[str, str, str, int | None]] = []  # link, class, ifname, pid
        for link in emu.topology.links:
            end = link.a if emu.topology.kind(link.a) not in (HOST, ROUTER) else (
                link.b if emu.topology.kind(link.b) not in (HOST, ROUTER) else link.a)
            name = emu.plan.interface(end, link.index).name
            pid = None if emu.topology.kind(end) not in (HOST, ROUTER) else emu.node(end).pid
            self.reads.append((link.name, link.klass, name, pid))
        self.last: dict[str, int] = {}
        self.rates: dict[str, float] = {}

    def sample(self) -> dict[str, int]:
        found: dict[str, int] = {}
        tables: dict[int, dict[str, int]] = {}
        for link, _klass, name, pid in self.reads:
            try:
                if pid is None:
                    base = Path(f"/sys/class/net/{name}/statistics")
                    found[link] = int((base / "rx_bytes").read_text()) + int(
                        (base / "tx_bytes").read_text())
                else:
                    if pid not in tables:
                        tables[pid] = _proc_net_dev(pid)
                    found[link] = tables[pid].get(name, 0)
            except (OSError, ValueError):
                continue
        return found

    def run(self) -> None:
        classes = {link: klass for link, klass, _n, _p in self.reads}
        previous, at = self.sample(), time.monotonic()
        self.log.emit("link_bytes", bytes=previous, classes=classes)
        while not self.stopping.wait(self.interval_s):
            now, current = time.monotonic(), self.sample()
            span = max(now - at, 1e-6)
            by_class: dict[str, float] = {}
            for link, value in current.items():
                rate = (value - previous.get(link, value)) * 8 / span / 1e6
                by_class[classes[link]] = by_class.get(classes[link], 0.0) + rate
            self.rates = by_class
            self.log.emit("link_bytes", bytes=current,
                          mbps_by_class={k: round(v, 3) for k, v in by_class.items()})
            previous, at = current, now

    def line(self) -> str:
        return "  ".join(f"{k} {v:.1f} Mbit/s" for k, v in sorted(self.rates.items()))

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)


def _proc_net_dev(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]:
        name, _, counters = line.partition(":")
        fields = counters.split()
        found[name.strip()] = int(fields[0]) + int(fields[8])
    return found
