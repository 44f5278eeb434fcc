"""`run_scenario`: the fixture scenario tests use, and users may copy for their own.

    def test_mine(run_scenario):
        summary = run_scenario("youtube_pull", {"dns.ttl": 10})
        assert summary["dns"]["lowest_rtt_share"] >= 0.9

It runs the scenario (a shipped name or a path) with the given overrides (the same
`key.path=value` as `cdnlab run --set`) into a fresh bundle under pytest's temporary
directory, writes its summary, plots and report, checks nothing of the run is left on the
machine and that summary.json says only what its schema (cdnlab/results/schema.py) says,
and returns summary.json as a dict (the bundle's path is under "bundle").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cdnlab.results.report import write_report
from cdnlab.results.schema import problems
from cdnlab.scenario.runner import Run
from cdnlab.scenario.spec import load_scenario
from tests.net.conftest import machine_state

pytestmark = pytest.mark.root

RunScenario = Callable[..., dict[str, Any]]


@pytest.fixture
def run_scenario(tmp_path: Path) -> RunScenario:
    def run(name: str, overrides: dict[str, Any] | None = None,
            out: str = "bundle") -> dict[str, Any]:
        before = machine_state()
        scenario = load_scenario(name, overrides)
        bundle = tmp_path / out
        Run(scenario, bundle, tty=False).execute()
        summary = write_report(bundle)
        assert machine_state() == before, "the run left something behind"
        assert problems(summary) == [], "summary.json and its schema disagree"
        return summary | {"bundle": str(bundle)}

    return run
