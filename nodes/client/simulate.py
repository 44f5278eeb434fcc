"""The offline simulator: a title's segments downloaded over a bandwidth trace, one after
another, by the same ABR classes and playback buffer the live player uses, in simulated
time (Sabre's model). No network: a download of B bits starting at t takes one RTT plus
the time the trace's piecewise-constant rate needs to carry B bits from t on.

Order per segment: wait while the buffer has no room for another segment (max buffer),
ask the ABR, wait if it says so (BOLA), download, add the segment to the buffer.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nodes.client.abr import Abr, Observations
from nodes.client.buffer import PlaybackBuffer
from nodes.client.qoe import session_metrics
from nodes.common.conventions import MAX_BUFFER_S

LOOKAHEAD = 5


@dataclass(frozen=True)
class SimTitle:
    bitrates_kbps: tuple[float, ...]  # ascending
    segment_s: float
    sizes: tuple[tuple[int, ...], ...]  # per segment, per representation (bytes)

    @classmethod
    def constant(cls, bitrates_kbps: Sequence[float], segment_s: float,
                 duration_s: float) -> SimTitle:
        count = max(1, round(duration_s / segment_s))
        sizes = tuple(tuple(round(b * 1000 / 8 * segment_s) for b in bitrates_kbps)
                      for _ in range(count))
        return cls(tuple(bitrates_kbps), segment_s, sizes)


class TraceLink:
    """Piecewise-constant rate over time (Mbit/s from each step's start), looping with its
    period or, without looping, holding the last rate after it. Steps may carry rate 0 (an
    outage: nothing gets through for that interval). A download's end is found from the
    cumulative bits the trace carries, by arithmetic over whole periods and a search
    within one, so its cost does not grow with the session and fractional step times
    cannot stall it. A trace that carries nothing at all is refused."""

    def __init__(self, steps: Sequence[tuple[float, float]], period_s: float,
                 loop: bool = True) -> None:
        if not steps or steps[0][0] != 0 or period_s <= 0:
            raise ValueError("a trace needs steps from 0 s and a positive period")
        starts = [float(s) for s, _r in steps]
        if any(b <= a for a, b in itertools.pairwise(starts)) or starts[-1] >= period_s:
            raise ValueError("trace steps must be in increasing time within the period")
        rates = [float(r) * 1e6 for _s, r in steps]
        if any(not math.isfinite(r) or r < 0 for r in rates):
            raise ValueError("trace rates must be finite and ≥ 0")
        self.steps = [(s, r / 1e6) for s, r in zip(starts, rates, strict=True)]
        self.period_s = period_s
        self.loop = loop
        self._starts, self._rates = starts, rates
        ends = [*starts[1:], period_s]
        self._cumulative = [0.0]  # bits carried from the period's start to each step's start
        for start, end, rate in zip(starts, ends, rates, strict=True):
            self._cumulative.append(self._cumulative[-1] + rate * (end - start))
        self.bits_per_period = self._cumulative[-1]
        if self.bits_per_period <= 0 and (loop or rates[-1] <= 0):
            raise ValueError("the trace carries nothing: every rate is zero")

    def _within(self, local: float) -> float:
        """Bits carried from the period's start to `local` seconds into it."""
        local = min(max(local, 0.0), self.period_s)  # float rounding at period edges
        index = bisect.bisect_right(self._starts, local) - 1
        return self._cumulative[index] + self._rates[index] * (local - self._starts[index])

    def bits_until(self, t: float) -> float:
        """Bits the trace carries from time 0 to time t."""
        if self.loop:
            periods = math.floor(t / self.period_s)
            return periods * self.bits_per_period + self._within(t - periods * self.period_s)
        if t <= self.period_s:
            return self._within(t)
        return self.bits_per_period + self._rates[-1] * (t - self.period_s)

    def _time_within(self, bits: float) -> float:
        """The earliest time into a period by which `bits` (0 < bits ≤ per period) are
        carried."""
        bits = min(bits, self.bits_per_period)  # float rounding at period edges
        index = max(bisect.bisect_left(self._cumulative, bits) - 1, 0)
        while self._rates[index] <= 0:  # a step carrying nothing cannot finish it
            index += 1
        return self._starts[index] + (bits - self._cumulative[index]) / self._rates[index]

    def time_carrying(self, bits: float) -> float:
        """The earliest time by which the trace has carried `bits` from time 0."""
        if bits <= 0:
            return 0.0
        if self.loop:
            periods = math.ceil(bits / self.bits_per_period) - 1
            left = bits - periods * self.bits_per_period
            if left <= 0:
                return periods * self.period_s
            return periods * self.period_s + self._time_within(left)
        if bits <= self.bits_per_period:
            return self._time_within(bits)
        if self._rates[-1] <= 0:
            raise ValueError("the trace ends at rate zero and cannot carry the rest")
        return self.period_s + (bits - self.bits_per_period) / self._rates[-1]

    def transfer_s(self, start: float, bits: float) -> float:
        """How long `bits` take from `start` on."""
        return max(0.0, self.time_carrying(self.bits_until(start) + bits) - start)


@dataclass
class SimResult:
    algo: str
    metrics: dict[str, Any]
    segments: list[dict[str, Any]]


def simulate(title: SimTitle, link: TraceLink, abr: Abr, max_buffer_s: float = MAX_BUFFER_S,
             startup_s: float | None = None, resume_s: float | None = None,
             rtt_s: float = 0.0) -> SimResult:
    seg = title.segment_s
    buffer = PlaybackBuffer(startup_s or seg, resume_s or seg)
    seen = Observations()
    t = 0.0
    records: list[dict[str, Any]] = []
    count = len(title.sizes)
    for index in range(count):
        room_wait = buffer.level_s - (max_buffer_s - seg)
        if buffer.playing and room_wait > 0:
            t += room_wait
            buffer.advance(t)
        state = seen.state(title.bitrates_kbps, seg, buffer.level_s, max_buffer_s, t,
                           len(buffer.stalls), index, count,
                           title.sizes[index: index + LOOKAHEAD])
        choice = abr.choose(state)
        if choice.wait_s > 0 and buffer.playing:
            t += min(choice.wait_s, buffer.level_s)
            buffer.advance(t)
        size = title.sizes[index][choice.quality]
        started = t
        t += rtt_s + link.transfer_s(t + rtt_s, size * 8)
        buffer.add(seg, t)
        throughput = seen.downloaded(choice.quality, size, t - started, buffer.level_s, t)
        records.append({"segment": index, "quality": choice.quality, "rule": choice.rule,
                        "bitrate_kbps": title.bitrates_kbps[choice.quality], "bytes": size,
                        "start_s": round(started, 4), "download_s": round(t - started, 4),
                        "throughput_kbps": round(throughput, 1),
                        "buffer_s": round(buffer.level_s, 3)})
    buffer.finish(t)
    metrics = session_metrics([r["bitrate_kbps"] for r in records], buffer.stalls,
                              buffer.started_at, seg, title.bitrates_kbps)
    return SimResult(abr.name, metrics, records)
