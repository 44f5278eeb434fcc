"""Bytes on every link of the emulation, sampled once a second: each link is read at one
end, from the kernel's own counters — a switch port in the root namespace
(/sys/class/net/<port>/statistics), or a host's or router's interface through
/proc/<pid>/net/dev, which shows that process's network namespace. Samples go to the
engine's log as `link_bytes` events: per link both directions together (`bytes`) and each
direction (`directed`: [a → b, b → a], from the read end's transmit and receive counts);
the first sample also names the links' classes, ends and the ends' roles, from which the
summary counts bytes crossing named boundaries.

In a split run (`cdnlab.machines`) a link is read at an end on the head where it has one
(a link between machines always does when the head is one of them); the links wholly on
another machine are read there, all of that machine's at once, through one ssh command
per sample over the run's shared connection."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from cdnlab.machines.spec import HEAD
from cdnlab.topology.spec import HOST, ROUTER
from nodes.common.events import EventLog


class LinkCounters(threading.Thread):
    def __init__(self, emu: Any, log: EventLog, interval_s: float = 1.0) -> None:
        super().__init__(name="link-counters", daemon=True)
        self.log = log
        self.interval_s = interval_s
        self.stopping = threading.Event()
        # link, class, ifname, pid (None: the root namespace), read at link.a?
        self.reads: list[tuple[str, str, str, int | None, bool]] = []
        # the same, for links read on another machine of a split run, by machine
        self.remote: dict[str, list[tuple[str, str, str, int | None, bool]]] = {}
        self.shells: dict[str, Any] = {}
        topology = emu.topology
        placement = emu.placement
        for link in topology.links:
            ends = sorted((link.a, link.b), key=lambda n: topology.kind(n) in (HOST, ROUTER))
            if placement is not None:  # an end on the head first, if there is one
                ends.sort(key=lambda n: placement.machine_of[n] != HEAD)
            end = ends[0]
            name = emu.plan.interface(end, link.index).name
            pid = None if topology.kind(end) not in (HOST, ROUTER) else emu.node(end).pid
            read = (link.name, link.klass, name, pid, end == link.a)
            machine = placement.machine_of[end] if placement is not None else HEAD
            if machine == HEAD:
                self.reads.append(read)
            else:
                self.remote.setdefault(machine, []).append(read)
                self.shells[machine] = emu.node(end).machine
        self.ends = {link.name: [link.a, link.b] for link in topology.links}
        self.roles = {name: topology.nodes[name].role if name in topology.nodes else
                      "edge_server" for pair in self.ends.values() for name in pair}
        self.directed: dict[str, list[int]] = {}
        self.rates: dict[str, float] = {}

    def sample(self) -> dict[str, int]:
        """Per link, bytes both ways; `self.directed` gets [a → b, b → a]."""
        found: dict[str, int] = {}
        tables: dict[int, dict[str, tuple[int, int]]] = {}
        for link, _klass, name, pid, at_a in self.reads:
            try:
                if pid is None:
                    base = Path(f"/sys/class/net/{name}/statistics")
                    rx = int((base / "rx_bytes").read_text())
                    tx = int((base / "tx_bytes").read_text())
                else:
                    if pid not in tables:
                        tables[pid] = _proc_net_dev(pid)
                    rx, tx = tables[pid].get(name, (0, 0))
            except (OSError, ValueError):
                continue
            self._found(found, link, rx, tx, at_a)
        for machine, reads in self.remote.items():
            counts = _remote_counts(self.shells[machine], reads)
            for link, _klass, name, pid, at_a in reads:
                if (pid, name) in counts:
                    self._found(found, link, *counts[(pid, name)], at_a)
        return found

    def _found(self, found: dict[str, int], link: str, rx: int, tx: int, at_a: bool) -> None:
        found[link] = rx + tx
        self.directed[link] = [tx, rx] if at_a else [rx, tx]

    def run(self) -> None:
        every = self.reads + [read for reads in self.remote.values() for read in reads]
        classes = {link: klass for link, klass, _n, _p, _a in every}
        previous, at = self.sample(), time.monotonic()
        self.log.emit("link_bytes", bytes=previous, directed=self.directed, classes=classes,
                      ends=self.ends, roles=self.roles)
        while not self.stopping.wait(self.interval_s):
            now, current = time.monotonic(), self.sample()
            span = max(now - at, 1e-6)
            by_class: dict[str, float] = {}
            for link, value in current.items():
                rate = (value - previous.get(link, value)) * 8 / span / 1e6
                by_class[classes[link]] = by_class.get(classes[link], 0.0) + rate
            self.rates = by_class
            self.log.emit("link_bytes", bytes=current, directed=self.directed,
                          mbps_by_class={k: round(v, 3) for k, v in by_class.items()})
            previous, at = current, now

    def line(self) -> str:
        return "  ".join(f"{k} {v:.1f} Mbit/s" for k, v in sorted(self.rates.items()))

    def stop(self) -> None:
        """Stop sampling, after one last sample: nothing sent before the stop goes
        uncounted."""
        self.stopping.set()
        self.join(5)
        self.log.emit("link_bytes", bytes=self.sample(), directed=self.directed)


def _proc_net_dev(pid: int) -> dict[str, tuple[int, int]]:
    """Interface → (received, transmitted) bytes, in the process's network namespace."""
    found = {}
    for line in Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]:
        name, _, counters = line.partition(":")
        fields = counters.split()
        found[name.strip()] = (int(fields[0]), int(fields[8]))
    return found


def _remote_counts(shell: Any, reads: list[tuple[str, str, str, int | None, bool]]
                   ) -> dict[tuple[int | None, str], tuple[int, int]]:
    """(pid or None, interface) → (received, transmitted) bytes on another machine, read
    with one command; what could not be read is missing."""
    pids = sorted({pid for _l, _k, _n, pid, _a in reads if pid is not None})
    roots = sorted({name for _l, _k, name, pid, _a in reads if pid is None})
    script = "; ".join([*(f"echo @pid {p}; cat /proc/{p}/net/dev" for p in pids),
                        *(f"echo @dev {n} $(cat /sys/class/net/{n}/statistics/rx_bytes) "
                          f"$(cat /sys/class/net/{n}/statistics/tx_bytes)" for n in roots)])
    try:
        done = shell.run(["sh", "-c", script], timeout_s=5)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    counts: dict[tuple[int | None, str], tuple[int, int]] = {}
    pid: int | None = None
    for line in done.stdout.splitlines():
        fields = line.split()
        if line.startswith("@pid "):
            pid = int(fields[1])
        elif line.startswith("@dev ") and len(fields) == 4:
            counts[(None, fields[1])] = (int(fields[2]), int(fields[3]))
        elif ":" in line and pid is not None:
            name, _, rest = line.partition(":")
            values = rest.split()
            if len(values) > 8:
                counts[(pid, name.strip())] = (int(values[0]), int(values[8]))
    return counts
