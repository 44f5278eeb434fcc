"""Fixtures for root tests on real Mininet networks: a snapshot of what exists on the machine
before a test, compared after it, so every test also proves it left nothing behind."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cdnlab.net.cgroup import PARENT, cgroup2_mount
from cdnlab.net.ledger import LEDGER_DIR, process_start_time

pytestmark = pytest.mark.root


@dataclass(frozen=True)
class MachineState:
    interfaces: frozenset[str]
    ovs_bridges: frozenset[str]
    ledgers: frozenset[str]
    named_netns: frozenset[str]
    iptables: tuple[str, ...]
    cgroups: frozenset[str]


def _iptables_rules() -> tuple[str, ...]:
    """Every iptables rule and chain of the root namespace, without counters."""
    saved = subprocess.run(["iptables-save"], capture_output=True, text=True,
                           check=False).stdout
    return tuple(line.split(" [")[0] for line in saved.splitlines()
                 if line and not line.startswith("#"))


def _run_cgroups() -> frozenset[str]:
    mount = cgroup2_mount()
    parent = mount / PARENT if mount else None
    return frozenset(p.name for p in parent.iterdir() if p.is_dir()) \
        if parent and parent.is_dir() else frozenset()


def machine_state() -> MachineState:
    ovs = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True,
                         text=True, check=False).stdout.split()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=False).stdout.split()
    ledgers = [p.name for p in LEDGER_DIR.glob("*.json")] if LEDGER_DIR.is_dir() else []
    return MachineState(frozenset(os.listdir("/sys/class/net")), frozenset(ovs),
                        frozenset(ledgers), frozenset(netns), _iptables_rules(),
                        _run_cgroups())


@pytest.fixture
def nothing_left_behind() -> Iterator[None]:
    before = machine_state()
    yield
    after = machine_state()
    assert after == before, f"left behind: {after} vs {before}"


def recorded_processes(emu: Any) -> list[tuple[int, int | None]]:
    return [(int(p["pid"]), p["start"]) for p in emu.ledger.record.processes]


def alive(processes: list[tuple[int, int | None]]) -> list[int]:
    return [pid for pid, start in processes if process_start_time(pid) == start]
