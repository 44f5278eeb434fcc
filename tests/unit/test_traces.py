"""Trace files: both formats parse into rate steps; bad files name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdnlab.errors import SpecError
from cdnlab.topology.spec import project_root
from cdnlab.traces import load_trace, parse_csv, parse_mahimahi


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_steps_period_and_header(tmp_path: Path) -> None:
    trace = parse_csv(write(tmp_path, "t.csv", "seconds,mbps\n0,20\n10,5\n20,20\n"))
    assert trace.steps == ((0.0, 20.0), (10.0, 5.0), (20.0, 20.0))
    assert trace.period_s == 30.0
    assert trace.rate_at(9.9) == 20 and trace.rate_at(10) == 5 and trace.rate_at(45) == 5
    assert trace.rate_at(45, loop=False) == 20
    assert trace.mean_mbps() == pytest.approx(15.0)


@pytest.mark.parametrize(("text", "message"), [
    ("0,20\n10\n", "line 2: expected `seconds,Mbit/s`"),
    ("0,20\n5,-1\n", "line 2: rate -1.0 Mbit/s is not a rate"),
    ("0,0\n5,0\n", "every rate is 0: the trace carries nothing"),
    ("0,20\n5,10\n5,10\n", "line 3: time 5.0 s does not increase"),
    ("1,20\n", "line 1: the first row must be at 0 s"),
    ("# nothing\n", "the trace is empty"),
])
def test_bad_csv_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_csv(write(tmp_path, "bad.csv", text))


def test_a_zero_row_is_an_outage(tmp_path: Path) -> None:
    trace = parse_csv(write(tmp_path, "outage.csv", "0,20\n5,0\n8,20\n"))
    assert trace.rate_at(6) == 0 and trace.rate_at(9) == 20


def test_mahimahi_counts_packets_per_window(tmp_path: Path) -> None:
    # 4000 opportunities in 1 s (8 per 2 ms... 4 per ms) = 4000 * 1500 B * 8 = 48 Mbit/s,
    # then 1000 in the next second = 12 Mbit/s.
    first = [str(ms) for ms in range(1000) for _ in range(4)]
    second = [str(1000 + ms) for ms in range(1000)]
    trace = parse_mahimahi(write(tmp_path, "t.mahi", "\n".join(first + second) + "\n"))
    assert trace.period_s == pytest.approx(2.0)
    assert trace.rate_at(0.2) == pytest.approx(48.0, rel=0.01)
    assert trace.rate_at(1.6) == pytest.approx(12.0, rel=0.01)


def test_mahimahi_refuses_garbage(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="line 2: expected a millisecond timestamp"):
        parse_mahimahi(write(tmp_path, "bad.mahi", "1\nfast\n"))
    with pytest.raises(SpecError, match="timestamps go backwards"):
        parse_mahimahi(write(tmp_path, "back.mahi", "5\n3\n"))


def test_shipped_traces_parse() -> None:
    step = load_trace(project_root() / "traces" / "step_down.csv")
    assert [mbps for _, mbps in step.steps] == [20, 5, 20]
    walk = load_trace(project_root() / "traces" / "cellular_walk.mahi")
    assert walk.period_s == pytest.approx(60.0, abs=0.5)
    assert min(m for _, m in walk.steps) >= 1.0 and max(m for _, m in walk.steps) <= 12.5
