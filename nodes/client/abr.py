"""ABR algorithms, Sabre-style: each is a small class whose `choose(state)` returns the
next representation (and, for BOLA, how long to wait first) and the rule that decided it.
Every algorithm sees the same `AbrState`, built by one `Observations` that the live player
and the offline simulator both keep, so they drive the algorithms identically.

    throughput  harmonic mean of the last 5 throughputs × safety 0.9, highest rung below
    bba         BBA-0 (Huang et al., SIGCOMM 2014, Algorithm 1), with its Rate+/Rate−
                hysteresis; reservoir and cushion as fractions of the buffer the algorithm
                can see when it chooses (max buffer − one segment): 0.375 and 0.525, the
                paper's 90 s and 126 s of 240
    bola        BOLA (Spiteri et al., INFOCOM 2016), Sabre's form: utility ln(R/R_min),
                γp = 5, V from the buffer; BOLA-U with `avoid_oscillation=False`, BOLA-O
                (MMSys 2018) by default: no up-switch beyond what safety 0.9 × throughput
                sustains, unless already there
    mpc         RobustMPC (Yin et al., SIGCOMM 2015): horizon 5, throughput discounted by
                the largest recent prediction error, linear QoE objective (4.3 rebuffer)
    dynamic     dash.js 5's DYNAMIC strategy (`dashjs.DashDynamic`): its ThroughputRule and
                BolaRule with the buffer-level hysteresis, the BOLA start-up state and
                placeholder buffer, the InsufficientBufferRule and the SwitchHistoryRule
    fixed       always the same rung (`quality` index or `kbps`)

Defaults are the published ones (Pensieve's baselines for BBA and MPC, Sabre's for BOLA,
dash.js for DYNAMIC); every parameter can be set when the algorithm is made. Start-up:
`initial_kbps` (throughput, bola, mpc: None, the lowest rung, as in Sabre and Pensieve;
dynamic: 1000, dash.js's default initial bitrate) picks the first segment's rung.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class AbrState:
    bitrates_kbps: Sequence[float]  # ascending, one per representation
    segment_s: float
    buffer_s: float
    max_buffer_s: float
    throughputs_kbps: list[float] = field(default_factory=list)  # measured, oldest first
    last_quality: int | None = None
    segment_index: int = 0
    segments_total: int = 0
    # sizes of the coming segments per representation, if the player knows them
    next_sizes_bytes: Sequence[Sequence[int]] | None = None
    download_s: list[float] = field(default_factory=list)  # of each measured segment
    waited_s: float = 0.0  # since the last download finished (buffer full, BOLA's waits)
    stalled: bool = False  # the buffer ran empty since the last decision
    level_after_last_s: float | None = None  # the buffer just after the last segment

    def size_bytes(self, ahead: int, quality: int) -> float:
        if self.next_sizes_bytes is not None and ahead < len(self.next_sizes_bytes):
            return float(self.next_sizes_bytes[ahead][quality])
        return self.bitrates_kbps[quality] * 1000 / 8 * self.segment_s


@dataclass(frozen=True)
class Choice:
    quality: int
    wait_s: float = 0.0  # pause before downloading (BOLA above its target buffer)
    rule: str = ""  # which rule decided (logged with every segment)


class Observations:
    """What a session has seen, kept the same way by the live player and the simulator:
    each measured download, the buffer after it, the stalls. `state` builds the next
    decision's `AbrState`."""

    def __init__(self) -> None:
        self.throughputs_kbps: list[float] = []
        self.download_s: list[float] = []
        self.last_quality: int | None = None
        self.level_after_last_s: float | None = None
        self.finished_at: float | None = None
        self.stalls_seen = 0

    def state(self, bitrates_kbps: Sequence[float], segment_s: float, buffer_s: float,
              max_buffer_s: float, now: float, stalls: int, index: int, total: int,
              next_sizes: Sequence[Sequence[int]] | None = None) -> AbrState:
        stalled = stalls > self.stalls_seen
        self.stalls_seen = stalls
        waited = now - self.finished_at if self.finished_at is not None else 0.0
        return AbrState(bitrates_kbps, segment_s, buffer_s, max_buffer_s,
                        self.throughputs_kbps, self.last_quality, index, total, next_sizes,
                        self.download_s, max(0.0, waited), stalled, self.level_after_last_s)

    def downloaded(self, quality: int, size_bytes: int, download_s: float, buffer_s: float,
                   now: float) -> float:
        """Record a finished segment; its throughput in kbit/s."""
        throughput = size_bytes * 8 / 1000 / max(download_s, 1e-6)
        self.throughputs_kbps.append(throughput)
        self.download_s.append(download_s)
        self.last_quality = quality
        self.level_after_last_s = buffer_s
        self.finished_at = now
        return throughput


def highest_below(bitrates: Sequence[float], kbps: float) -> int:
    """Index of the highest bitrate at most `kbps` (the lowest if none is)."""
    chosen = 0
    for index, rate in enumerate(bitrates):
        if rate <= kbps:
            chosen = index
    return chosen


def first_choice(state: AbrState, initial_kbps: float | None) -> Choice:
    """Before any measurement: the rung the initial estimate affords, else the lowest."""
    if initial_kbps is None:
        return Choice(0, rule="startup_lowest")
    return Choice(highest_below(state.bitrates_kbps, initial_kbps), rule="startup_estimate")


def harmonic_mean(values: Sequence[float]) -> float:
    values = [v for v in values if v > 0]
    return len(values) / sum(1.0 / v for v in values) if values else 0.0


class Abr:
    name = "abr"

    def choose(self, state: AbrState) -> Choice:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class ThroughputRule(Abr):
    name = "throughput"

    def __init__(self, window: int = 5, safety: float = 0.9,
                 initial_kbps: float | None = None) -> None:
        self.window = window
        self.safety = safety
        self.initial_kbps = initial_kbps

    def estimate_kbps(self, state: AbrState) -> float:
        return harmonic_mean(state.throughputs_kbps[-self.window:]) * self.safety

    def choose(self, state: AbrState) -> Choice:
        if not state.throughputs_kbps:
            return first_choice(state, self.initial_kbps)
        return Choice(highest_below(state.bitrates_kbps, self.estimate_kbps(state)),
                      rule="throughput")


class Bba(Abr):
    """BBA-0 (Huang et al., "A Buffer-Based Approach to Rate Adaptation", SIGCOMM 2014,
    Algorithm 1). f(B) maps the buffer linearly from R_min at the reservoir r to R_max at
    r + cushion; the rate moves only when f(B) crosses the next rung up (Rate+) or down
    (Rate−), else it holds. r and the cushion are fractions of the buffer the algorithm can
    see when it chooses (the max buffer less one segment: the player fetches only when a
    segment fits), 0.375 and 0.525 as in the paper's 90 s and 126 s of a 240 s buffer, so
    the top rung is reachable at any buffer size."""

    name = "bba"

    def __init__(self, reservoir: float = 0.375, cushion: float = 0.525) -> None:
        self.reservoir = reservoir
        self.cushion = cushion

    def choose(self, state: AbrState) -> Choice:
        rates = state.bitrates_kbps
        top = len(rates) - 1
        seen = max(state.max_buffer_s - state.segment_s, state.segment_s)
        r, cushion = self.reservoir * seen, self.cushion * seen
        prev = state.last_quality if state.last_quality is not None else 0
        rate_plus = rates[min(prev + 1, top)]
        rate_minus = rates[max(prev - 1, 0)]
        buffer = state.buffer_s
        if buffer <= r:
            return Choice(0, rule="reservoir")
        if buffer >= r + cushion:
            return Choice(top, rule="upper_reservoir")
        f = rates[0] + (buffer - r) / cushion * (rates[-1] - rates[0])
        if f >= rate_plus:  # the highest rung strictly below f(B)
            return Choice(max(i for i, rate in enumerate(rates) if rate < f or i == 0),
                          rule="rate_up")
        if f <= rate_minus:  # the lowest rung strictly above f(B)
            return Choice(min((i for i, rate in enumerate(rates) if rate > f), default=top),
                          rule="rate_down")
        return Choice(prev, rule="hold")


class Bola(Abr):
    name = "bola"

    def __init__(self, gp: float = 5.0, avoid_oscillation: bool = True,
                 safety: float = 0.9, initial_kbps: float | None = None) -> None:
        self.gp = gp  # γ·p: how much rebuffering is weighed against utility
        self.avoid_oscillation = avoid_oscillation  # BOLA-O; False: BOLA-U
        self.safety = safety
        self.initial_kbps = initial_kbps

    def _v(self, state: AbrState, utilities: list[float]) -> float:
        usable = max(state.max_buffer_s - state.segment_s, state.segment_s)
        return usable / (utilities[-1] + self.gp)

    def choose(self, state: AbrState) -> Choice:
        rates = state.bitrates_kbps
        if state.last_quality is None and self.initial_kbps is not None:
            return first_choice(state, self.initial_kbps)
        utilities = [math.log(r / rates[0]) for r in rates]
        v = self._v(state, utilities)
        level = min(state.buffer_s, state.max_buffer_s)
        scores = [(v * (u + self.gp) - level) / r for u, r in zip(utilities, rates,
                                                                   strict=True)]
        best = max(range(len(rates)), key=lambda q: scores[q])
        last = state.last_quality
        rule = "bola"
        if self.avoid_oscillation and last is not None and best > last and \
                state.throughputs_kbps:
            sustained = highest_below(rates, harmonic_mean(state.throughputs_kbps[-5:])
                                      * self.safety)
            if best > sustained:
                best, rule = max(sustained, last), "bola_o"
        if scores[best] >= 0:
            return Choice(best, rule=rule)
        # above the buffer level where this download pays off: wait until it is reached
        return Choice(best, max(0.0, level - v * (utilities[best] + self.gp)), rule)


class RobustMpc(Abr):
    name = "mpc"

    def __init__(self, horizon: int = 5, window: int = 5, rebuffer_penalty: float = 4.3,
                 switch_penalty: float = 1.0, initial_kbps: float | None = None) -> None:
        self.initial_kbps = initial_kbps
        self.horizon = horizon
        self.window = window
        self.rebuffer_penalty = rebuffer_penalty
        self.switch_penalty = switch_penalty
        self._predictions: list[float] = []
        self._errors: list[float] = []
        self._combos: dict[tuple[int, int], np.ndarray] = {}

    def _combos_for(self, levels: int, depth: int) -> np.ndarray:
        key = (levels, depth)
        if key not in self._combos:
            self._combos[key] = np.array(list(itertools.product(range(levels), repeat=depth)),
                                         dtype=np.int64)
        return self._combos[key]

    def predict_kbps(self, state: AbrState) -> float:
        history = state.throughputs_kbps
        if self._predictions and history:
            actual = history[-1]
            self._errors.append(abs(self._predictions[-1] - actual) / actual)
        mean = harmonic_mean(history[-self.window:])
        self._predictions.append(mean)
        error = max(self._errors[-self.window:], default=0.0)
        return mean / (1 + error)

    def choose(self, state: AbrState) -> Choice:
        if not state.throughputs_kbps:
            return first_choice(state, self.initial_kbps)
        kbps = self.predict_kbps(state)
        rates = np.asarray(state.bitrates_kbps, dtype=float)
        remaining = state.segments_total - state.segment_index if state.segments_total else \
            self.horizon
        depth = max(1, min(self.horizon, remaining))
        combos = self._combos_for(len(rates), depth)
        buffer = np.full(len(combos), state.buffer_s)
        rebuffer = np.zeros(len(combos))
        last = np.full(len(combos), rates[state.last_quality if state.last_quality is not None
                                           else 0])
        reward = np.zeros(len(combos))
        for step in range(depth):
            quality = combos[:, step]
            sizes = np.array([state.size_bytes(step, q) for q in range(len(rates))])
            download = sizes[quality] * 8 / 1000 / kbps
            stall = np.maximum(download - buffer, 0.0)
            rebuffer += stall
            buffer = np.maximum(buffer - download, 0.0) + state.segment_s
            chosen = rates[quality]
            reward += chosen / 1000 - self.switch_penalty * np.abs(chosen - last) / 1000
            last = chosen
        reward -= self.rebuffer_penalty * rebuffer
        return Choice(int(combos[int(np.argmax(reward)), 0]), rule="mpc")


class Fixed(Abr):
    name = "fixed"

    def __init__(self, quality: int | None = None, kbps: float | None = None) -> None:
        self.quality = quality
        self.kbps = kbps

    def choose(self, state: AbrState) -> Choice:
        if self.kbps is not None:
            return Choice(highest_below(state.bitrates_kbps, self.kbps), rule="fixed")
        top = len(state.bitrates_kbps) - 1
        return Choice(top if self.quality is None else min(max(self.quality, 0), top),
                      rule="fixed")
