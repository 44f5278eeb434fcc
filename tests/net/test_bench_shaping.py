"""`cdnlab bench shaping` on real networks: both paths carry the same packets, both
per-packet figures are measured, and the closing line says what the table says."""

from __future__ import annotations

import re

import pytest

from cdnlab.bench import shaping

pytestmark = pytest.mark.root


def test_the_delayed_hop_and_its_baseline_are_measured_in_one_run() -> None:
    # three rounds, judged by their medians: the meter is the whole machine's, and a busy
    # moment of anything else on it (CI once saw one) spoils the round it falls on
    result = shaping.measure(rounds=3, seconds=2.0)
    expected = shaping.RATE_MBPS * 1e6 * 2.0 / 8 / 1400  # datagrams sent
    assert result["packets"]["mean"] >= 0.9 * expected, result
    baseline, delayed = result["baseline_us_per_packet"], result["delayed_us_per_packet"]
    assert baseline["mean"] > 0, result
    assert result["us_per_packet"]["mean"] == pytest.approx(
        delayed["mean"] - baseline["mean"], abs=0.02), result
    # the delayed hop adds a userspace server (its own CPU, measured apart) and the rest of
    # its work: a machine meter that misses short wake-ups (/proc/stat's ticks on a
    # tickless kernel) sees less than the server alone and fails here
    server = result["server_us_per_packet"]["median"]
    assert server is not None and server > 0, result
    assert result["us_per_packet"]["median"] >= 0.5 * server, result
    line = shaping.closing_line(result)
    assert re.fullmatch(r"shaping: backend=nfqueue us_per_packet=[\d.]+ "
                        r"baseline_us_per_packet=[\d.]+", line), line
    assert f"us_per_packet={result['us_per_packet']['mean']} " in line
