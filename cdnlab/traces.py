"""Bandwidth traces: files that say how a link's rate changes over time.

Two formats, both plain text anyone can write (see traces/README.md):
- CSV `seconds,Mbit/s`: each row sets the rate from that time on; the first row is at 0;
  the last row lasts as long as the row before it did, which sets the trace's period. A
  rate of 0 is an outage (cellular traces have them); a trace that is all zeros is refused.
- Mahimahi packet-delivery files: one integer per line, a millisecond at which one
  1500-byte packet may leave; the period is the last timestamp. They are turned into rate
  steps by counting deliveries per window (`resolution_s`, default 0.5 s).
Both become a `BandwidthTrace` of steps, which `cdnlab.net.replay` applies to htb classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cdnlab.errors import SpecError

MAHIMAHI_PACKET_BYTES = 1500


@dataclass(frozen=True)
class BandwidthTrace:
    steps: tuple[tuple[float, float], ...]  # (start seconds, Mbit/s), increasing starts
    period_s: float
    source: str = ""

    def rate_at(self, t: float, loop: bool = True) -> float:
        if loop and self.period_s > 0:
            t = t % self.period_s
        rate = self.steps[0][1]
        for start, mbps in self.steps:
            if start > t:
                break
            rate = mbps
        return rate

    def mean_mbps(self) -> float:
        total = 0.0
        for i, (start, mbps) in enumerate(self.steps):
            end = self.steps[i + 1][0] if i + 1 < len(self.steps) else self.period_s
            total += mbps * (end - start)
        return total / self.period_s


def _data_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(str(path), "", f"cannot read trace: {exc.strerror}",
                        "check the path") from exc
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append((number, line))
    if not lines:
        raise SpecError(str(path), "", "the trace is empty", "add at least one row")
    return lines


def parse_csv(path: Path) -> BandwidthTrace:
    steps: list[tuple[float, float]] = []
    for position, (number, line) in enumerate(_data_lines(path)):
        parts = [p.strip() for p in line.split(",")]
        if position == 0 and not _is_number(parts[0]):
            continue  # a header row
        if len(parts) != 2 or not all(_is_number(p) for p in parts):
            raise SpecError(str(path), f"line {number}", f"expected `seconds,Mbit/s`, got "
                            f"{line!r}", "write two numbers separated by a comma")
        t, mbps = float(parts[0]), float(parts[1])
        if mbps < 0 or mbps != mbps or mbps == float("inf"):
            raise SpecError(str(path), f"line {number}", f"rate {mbps} Mbit/s is not a rate",
                            "give a rate of 0 (an outage) or more")
        if steps and t <= steps[-1][0]:
            raise SpecError(str(path), f"line {number}", f"time {t} s does not increase",
                            "order rows by time, each later than the one before")
        if not steps and t != 0:
            raise SpecError(str(path), f"line {number}", "the first row must be at 0 s",
                            "start the trace at 0")
        steps.append((t, mbps))
    if not steps:
        raise SpecError(str(path), "", "the trace has no rows", "add `0,<Mbit/s>` rows")
    if not any(mbps > 0 for _t, mbps in steps):
        raise SpecError(str(path), "", "every rate is 0: the trace carries nothing",
                        "give at least one row a rate above 0")
    last = steps[-1][0] - steps[-2][0] if len(steps) > 1 else 1.0
    return BandwidthTrace(tuple(steps), steps[-1][0] + last, str(path))


def parse_mahimahi(path: Path, resolution_s: float = 0.5) -> BandwidthTrace:
    stamps: list[int] = []
    for number, line in _data_lines(path):
        if not line.isdigit():
            raise SpecError(str(path), f"line {number}", f"expected a millisecond timestamp, "
                            f"got {line!r}", "write one non-negative integer per line")
        stamp = int(line)
        if stamps and stamp < stamps[-1]:
            raise SpecError(str(path), f"line {number}", "timestamps go backwards",
                            "order the timestamps")
        stamps.append(stamp)
    period_ms = max(stamps[-1], 1)
    window_ms = resolution_s * 1000.0
    windows = max(1, round(period_ms / window_ms))
    counts = [0] * windows
    for stamp in stamps:
        counts[min(int(stamp / window_ms), windows - 1)] += 1
    steps: list[tuple[float, float]] = []
    for i, count in enumerate(counts):
        mbps = max(count * MAHIMAHI_PACKET_BYTES * 8 / (window_ms / 1000.0) / 1e6, 0.01)
        if not steps or steps[-1][1] != mbps:
            steps.append((i * resolution_s, mbps))
    return BandwidthTrace(tuple(steps), windows * resolution_s, str(path))


def load_trace(path: Path) -> BandwidthTrace:
    """By extension: `.csv` is the two-column format, anything else Mahimahi. A path that
    does not exist but names a shipped trace (`step_down.csv`, `traces/step_down.csv`) is
    that trace, so an installed cdnlab finds them from any directory."""
    if not path.exists():
        shipped = Path(str(resources.files("traces"))) / path.name
        if shipped.is_file():
            path = shipped
    return parse_csv(path) if path.suffix == ".csv" else parse_mahimahi(path)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
