"""Fixtures for root tests on real Mininet networks: a snapshot of what exists on the machine
before a test, compared after it, so every test also proves it left nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cdnlab.net.ledger import process_start_time
from cdnlab.net.machine_state import MachineState, machine_state

__all__ = ["MachineState", "machine_state"]

pytestmark = pytest.mark.root


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
