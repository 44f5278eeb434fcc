"""Fixtures for content tests: small test masters made with the real ffmpeg, a small ladder
spec, and a snapshot of a store's whole tree (hidden directories included) to prove that a
refused ingest changed nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nodes.origin.profiles import TitleSpec, parse_title_spec
from nodes.origin.testsource import make_test_master

SMALL_SPEC = {
    "segment_s": 2,
    "audio_kbps": 64,
    "profiles": {"avc": ["150k@160x90", "400k@320x180"],
                 "vp9": ["150k@160x90", "400k@320x180"],
                 "hevc": ["300k@320x180"]},
}


@pytest.fixture(scope="session")
def small_spec() -> TitleSpec:
    return parse_title_spec(SMALL_SPEC)


@pytest.fixture(scope="session")
def master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """9 s of grainy 320x180 test pattern with a tone: segments of 2,2,2,2,1 s."""
    return make_test_master(tmp_path_factory.mktemp("masters") / "master.mp4", 9.0)


def tree(root: Path) -> dict[str, int]:
    """Every file and link under root (hidden ones too) with its size, lock file aside."""
    found: dict[str, int] = {}
    for directory, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if Path(directory, d).is_symlink()]:
            path = Path(directory, name)
            if name != ".lock":
                found[str(path.relative_to(root))] = path.lstat().st_size
    return found
