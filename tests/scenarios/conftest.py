"""Scenario tests use `run_scenario` from cdnlab's pytest plugin (`cdnlab/pytest_plugin.py`,
registered for every user through the `pytest11` entry point)."""

from __future__ import annotations

import pytest

from cdnlab.pytest_plugin import RunScenario

pytestmark = pytest.mark.root

__all__ = ["RunScenario"]
