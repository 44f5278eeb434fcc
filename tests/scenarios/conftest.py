"""Scenario tests use `run_scenario` from cdnlab's pytest plugin (`cdnlab/pytest_plugin.py`,
registered for every user through the `pytest11` entry point)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from cdnlab.net.ledger import LEDGER_DIR, Ledger
from cdnlab.pytest_plugin import RunScenario

pytestmark = pytest.mark.root

__all__ = ["RunScenario", "assert_faithful", "ledger_of"]


def ledger_of(run: subprocess.Popen[Any]) -> Ledger | None:
    """The ledger of the `cdnlab run` process `run` (a ledger being rewritten is skipped)."""
    for path in LEDGER_DIR.glob("*.json") if LEDGER_DIR.is_dir() else []:
        try:
            ledger = Ledger.load(path)
        except (OSError, ValueError, TypeError):
            continue
        if ledger.record.owner_pid == run.pid:
            return ledger
    return None


def assert_faithful(summary: dict[str, Any]) -> None:
    """The run's own verdict: RTTs right and no invariant broken all along (a run judged
    emulator-limited was made again: `run_scenario(..., faithful=True)`), and where the
    CPU went, by part of the run."""
    fidelity = summary["fidelity"]
    assert fidelity["ok"], summary.get("verdicts")
    parts = fidelity["monitor"]["cpu_by_part"]
    assert parts and {"edges", "engine"} <= parts.keys(), parts
    assert parts.keys() & {"players", "browsers"}, parts
    assert all(p["cpu_s"] >= 0 and 0 <= p["peak_share"] <= 1 for p in parts.values()), parts
    # the hypervisor's share was measured every second (and judged above: `host_steal`)
    assert fidelity["monitor"]["steal_share_max"] is not None, fidelity["monitor"]
