"""Spread and comparison arithmetic: Student's t interval, nulls left out, settings that
differ found in the runs' own records."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from cdnlab.results.repeat import compare, differences, spread


def test_the_interval_is_students_t() -> None:
    values = [1.91, 2.92, 2.40]
    found = spread([*values, None, "x"])
    half = 4.303 * statistics.stdev(values) / math.sqrt(3)
    assert found["n"] == 3 and found["mean"] == pytest.approx(statistics.fmean(values))
    assert found["ci95"] == pytest.approx(half, abs=1e-6)
    assert (found["min"], found["max"]) == (1.91, 2.92)
    assert spread([4.0])["ci95"] is None, "one run has no interval"
    assert spread([None, None])["mean"] is None
    assert spread([True, False, True, True])["mean"] == 0.75, "yes/no: the share of yes"


def test_compare_shows_deltas_and_the_settings_that_differed(tmp_path: Path) -> None:
    runs = []
    for name, awake, rebuffer in (("a", False, 1.5), ("b", True, 2.0)):
        root = tmp_path / name
        root.mkdir()
        (root / "run.json").write_text(json.dumps({
            "seed": 1, "shaping": "nfqueue", "cpu_awake": {"mode": "auto", "active": awake},
            "scenario": {"dns": {"ttl": 5}}}))
        (root / "summary.json").write_text(json.dumps({
            "players": {"rebuffer_s_total": rebuffer}, "fidelity": {"ok": True}}))
        runs.append(root)
    assert differences([json.loads((r / "run.json").read_text()) for r in runs]) == {
        "cpu_awake.kept_awake": [False, True]}
    text = compare(runs)
    rebuffer_row = next(line for line in text.splitlines() if line.startswith("rebuffer"))
    assert rebuffer_row.split()[-3:] == ["1.5", "2", "0.5"]
    assert "- cpu_awake.kept_awake: False | True" in text
