"""The offline simulator: a title's segments downloaded over a bandwidth trace, one after
another, by the same ABR classes and playback buffer the live player uses, in simulated
time (Sabre's model). No network: a download of B bits starting at t takes one RTT plus
the time the trace's piecewise-constant rate needs to carry B bits from t on.

Order per segment: wait while the buffer has no room for another segment (max buffer),
ask the ABR, wait if it says so (BOLA), download, add the segment to the buffer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nodes.client.abr import Abr, AbrState
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
    """Piecewise-constant rate over time, looping with its period."""

    def __init__(self, steps: Sequence[tuple[float, float]], period_s: float,
                 loop: bool = True) -> None:
        if not steps or steps[0][0] != 0 or period_s <= 0:
            raise ValueError("a trace needs steps from 0 s and a positive period")
        self.steps = list(steps)
        self.period_s = period_s
        self.loop = loop

    def _segment(self, t: float) -> tuple[float, float]:
        """(rate Mbit/s, seconds until the rate changes) at time t."""
        base = (t // self.period_s) * self.period_s if self.loop else 0.0
        local = t - base
        if not self.loop and local >= self.period_s:
            return self.steps[-1][1], float("inf")
        for index, (start, mbps) in enumerate(self.steps):
            end = self.steps[index + 1][0] if index + 1 < len(self.steps) else self.period_s
            if start <= local < end:
                return mbps, end - local
        return self.steps[-1][1], max(self.period_s - local, 1e-9)

    def transfer_s(self, start: float, bits: float) -> float:
        t = start
        left = bits
        for _ in range(1_000_000):
            mbps, span = self._segment(t)
            capacity = mbps * 1e6 * span
            if mbps > 0 and capacity >= left:
                return t + left / (mbps * 1e6) - start
            left -= max(capacity, 0.0)
            t += span
        raise ValueError("the trace cannot carry this download (rate zero for too long)")


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
    t = 0.0
    throughputs: list[float] = []
    last: int | None = None
    records: list[dict[str, Any]] = []
    count = len(title.sizes)
    for index in range(count):
        room_wait = buffer.level_s - (max_buffer_s - seg)
        if buffer.playing and room_wait > 0:
            t += room_wait
            buffer.advance(t)
        state = AbrState(title.bitrates_kbps, seg, buffer.level_s, max_buffer_s, throughputs,
                         last, index, count, title.sizes[index: index + LOOKAHEAD])
        choice = abr.choose(state)
        if choice.wait_s > 0 and buffer.playing:
            t += min(choice.wait_s, buffer.level_s)
            buffer.advance(t)
        size = title.sizes[index][choice.quality]
        started = t
        t += rtt_s + link.transfer_s(t + rtt_s, size * 8)
        buffer.add(seg, t)
        throughput = size * 8 / 1000 / (t - started)
        throughputs.append(throughput)
        last = choice.quality
        records.append({"segment": index, "quality": choice.quality,
                        "bitrate_kbps": title.bitrates_kbps[choice.quality], "bytes": size,
                        "start_s": round(started, 4), "download_s": round(t - started, 4),
                        "throughput_kbps": round(throughput, 1),
                        "buffer_s": round(buffer.level_s, 3)})
    buffer.finish(t)
    startup = buffer.started_at
    metrics = session_metrics([r["bitrate_kbps"] for r in records], buffer.stalls, startup)
    return SimResult(abr.name, metrics, records)
