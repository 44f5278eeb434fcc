"""Shared pytest setup: the `root` marker skips tests that need root and a real network
when run unprivileged (CI runs as root, so they run there)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (run `sudo make test`)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
