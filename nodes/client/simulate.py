"""The offline simulator: a title's segments downloaded over a bandwidth trace, one after
another, by the same ABR classes and playback buffer the live player uses, in simulated
time (Sabre's model). No network: a download of B bits starting at t takes one RTT plus
the time the trace's piecewise-constant rate needs to carry B bits from t on.

Order per segment of each track: wait while that track's buffer has no room for another
segment (max buffer), ask the ABR (video), wait if it says so (BOLA), send the request (one
RTT), download, add the segment to the buffer. A title with audio is fetched as two tracks
at once, sharing the link (see `_Session`); playback stalls when either runs dry.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nodes.client.abr import Abr, Choice, Observations
from nodes.client.buffer import AUDIO, VIDEO, PlaybackBuffer
from nodes.client.qoe import session_metrics
from nodes.common.conventions import MAX_BUFFER_S

LOOKAHEAD = 5


@dataclass(frozen=True)
class SimTitle:
    bitrates_kbps: tuple[float, ...]  # ascending
    segment_s: float
    sizes: tuple[tuple[int, ...], ...]  # per segment, per representation (bytes)
    audio_sizes: tuple[int, ...] = ()  # per segment of the audio track; () for none

    @classmethod
    def constant(cls, bitrates_kbps: Sequence[float], segment_s: float,
                 duration_s: float, audio_kbps: float = 0.0) -> SimTitle:
        count = max(1, round(duration_s / segment_s))
        sizes = tuple(tuple(round(b * 1000 / 8 * segment_s) for b in bitrates_kbps)
                      for _ in range(count))
        audio = (round(audio_kbps * 1000 / 8 * segment_s),) * count if audio_kbps else ()
        return cls(tuple(bitrates_kbps), segment_s, sizes, audio)


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
    segments: list[dict[str, Any]]  # video, in order
    audio_segments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Track:
    """One stream's fetch loop: deciding (at `ready_at`), waiting for a request's RTT,
    transferring (`left_bits`), or done after its last segment."""
    name: str
    count: int
    index: int = 0
    phase: str = "decide"  # decide, request, transfer, done
    ready_at: float = 0.0
    left_bits: float = 0.0
    room_waited: bool = False
    choice: Choice | None = None
    size: int = 0
    started: float = 0.0

    def next_segment(self, now: float) -> None:
        self.index += 1
        self.phase = "decide" if self.index < self.count else "done"
        self.ready_at, self.room_waited, self.choice = now, False, None


class _Session:
    """The simulated session: a video track whose ABR picks each segment and, when the
    title has audio, an audio track at its one representation; both fetch at once and share
    the link equally while both transfer (processor sharing, the fluid model of two TCP
    flows on one bottleneck), so audio takes its share from video as it does in a browser."""

    def __init__(self, title: SimTitle, link: TraceLink, abr: Abr, max_buffer_s: float,
                 startup_s: float | None, resume_s: float | None, rtt_s: float) -> None:
        self.title, self.link, self.abr, self.rtt_s = title, link, abr, rtt_s
        self.max_buffer_s = max_buffer_s
        seg = title.segment_s
        count = len(title.sizes)
        self.tracks = [_Track(VIDEO, count)]
        if title.audio_sizes:
            self.tracks.append(_Track(AUDIO, min(count, len(title.audio_sizes))))
        self.buffer = PlaybackBuffer(startup_s or seg, resume_s or seg,
                                     tuple(t.name for t in self.tracks))
        self.seen = Observations()
        self.records: dict[str, list[dict[str, Any]]] = {t.name: [] for t in self.tracks}

    def run(self) -> float:
        t = 0.0
        while any(track.phase != "done" for track in self.tracks):
            self._decide_all(t)
            t = self._transfer_until_next_event(t)
        return t

    def _decide_all(self, t: float) -> None:
        """Move every track whose time has come as far as it can go at time `t`."""
        moved = True
        while moved:
            moved = False
            for track in self.tracks:
                if track.phase == "decide" and track.ready_at <= t:
                    self._decide(track, t)
                    moved = True
                elif track.phase == "request" and track.ready_at <= t:
                    track.phase, track.left_bits = "transfer", track.size * 8.0
                    moved = True

    def _decide(self, track: _Track, t: float) -> None:
        """Wait for room, ask the ABR (video), wait if it says so, then send the request."""
        buffer, seg = self.buffer, self.title.segment_s
        buffer.advance(t)
        room_wait = buffer.level_of(track.name) - (self.max_buffer_s - seg)
        if buffer.playing and room_wait > 0 and not track.room_waited:
            track.room_waited, track.ready_at = True, t + room_wait
            return
        if track.name == AUDIO:
            track.size = self.title.audio_sizes[track.index]
        elif track.choice is None:
            track.choice = self.abr.choose(self.seen.state(
                self.title.bitrates_kbps, seg, buffer.level_of(VIDEO), self.max_buffer_s, t,
                len(buffer.stalls), track.index, track.count,
                self.title.sizes[track.index: track.index + LOOKAHEAD]))
            track.size = self.title.sizes[track.index][track.choice.quality]
            if track.choice.wait_s > 0 and buffer.playing:
                track.ready_at = t + min(track.choice.wait_s, buffer.level_of(VIDEO))
                return
        track.phase, track.started, track.ready_at = "request", t, t + self.rtt_s

    def _transfer_until_next_event(self, t: float) -> float:
        """Share the link among the transferring tracks until one finishes or another
        track's time comes; return that time."""
        active = [track for track in self.tracks if track.phase == "transfer"]
        next_wait = min((track.ready_at for track in self.tracks
                         if track.phase in ("decide", "request")), default=math.inf)
        if not active:
            return next_wait
        carried_before = self.link.bits_until(t)
        first = min(active, key=lambda track: track.left_bits)
        finish_at = self.link.time_carrying(carried_before + first.left_bits * len(active))
        first_done = finish_at <= next_wait
        if first_done:
            end, share = max(finish_at, t), first.left_bits
        else:
            end = next_wait
            share = (self.link.bits_until(end) - carried_before) / len(active)
        for track in active:
            track.left_bits -= share
            if (track is first and first_done) or track.left_bits <= 1e-9 * track.size:
                self._finished(track, end)
        return end

    def _finished(self, track: _Track, t: float) -> None:
        seg = self.title.segment_s
        self.buffer.add(seg, t, track.name)
        level = self.buffer.level_of(track.name)
        record: dict[str, Any] = {"segment": track.index, "bytes": track.size,
                                  "start_s": round(track.started, 4),
                                  "download_s": round(t - track.started, 4),
                                  "buffer_s": round(level, 3)}
        if track.choice is not None:
            quality = track.choice.quality
            throughput = self.seen.downloaded(quality, track.size, t - track.started, level, t)
            record = {"segment": track.index, "quality": quality, "rule": track.choice.rule,
                      "bitrate_kbps": self.title.bitrates_kbps[quality]} | record | {
                      "throughput_kbps": round(throughput, 1)}
        self.records[track.name].append(record)
        track.next_segment(t)


def simulate(title: SimTitle, link: TraceLink, abr: Abr, max_buffer_s: float = MAX_BUFFER_S,
             startup_s: float | None = None, resume_s: float | None = None,
             rtt_s: float = 0.0) -> SimResult:
    session = _Session(title, link, abr, max_buffer_s, startup_s, resume_s, rtt_s)
    end = session.run()
    buffer = session.buffer
    buffer.finish(end)
    video = session.records[VIDEO]
    metrics = session_metrics([r["bitrate_kbps"] for r in video], buffer.stalls,
                              buffer.started_at, title.segment_s, title.bitrates_kbps)
    metrics["stalls_by_track"] = buffer.stalls_by_track()
    return SimResult(abr.name, metrics, video, session.records.get(AUDIO, []))
