"""Shared pytest setup: cdnlab's own plugin (the `root` marker and `run_scenario`), named
here so a checkout's tests work before `pip install` registers its entry point, and
pytest's `pytester`, for testing that plugin."""

from __future__ import annotations

pytest_plugins = ["pytester", "cdnlab.pytest_plugin"]
