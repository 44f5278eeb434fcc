"""ABR algorithms, Sabre-style: each is a small class whose `choose(state)` returns the
next representation (and, for BOLA, how long to wait first). Every algorithm sees the same
`AbrState`, so the live player and the offline simulator drive them identically.

    throughput  harmonic mean of the last 5 throughputs × safety 0.9, highest rung below
    bba         BBA-0 (Huang et al., SIGCOMM 2014): reservoir 5 s, cushion 10 s
    bola        BOLA (Spiteri et al., INFOCOM 2016): utility ln(R/R_min), γp = 5, with the
                same authors' BOLA-O guard (MMSys 2018, as in dash.js): no up-switch
                beyond what 0.9 × throughput sustains, unless already there
    mpc         RobustMPC (Yin et al., SIGCOMM 2015): horizon 5, throughput discounted by
                the largest recent prediction error, linear QoE objective (4.3 rebuffer)
    dynamic     dash.js DYNAMIC: throughput rule below 6 s of buffer, BOLA from 12 s up,
                entering BOLA with a placeholder buffer so quality does not drop
    fixed       always the same rung (`quality` index or `kbps`)

Defaults are the published ones (Pensieve's baselines for BBA and MPC, Sabre's for BOLA,
dash.js for DYNAMIC); every parameter can be set when the algorithm is made.
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

    def size_bytes(self, ahead: int, quality: int) -> float:
        if self.next_sizes_bytes is not None and ahead < len(self.next_sizes_bytes):
            return float(self.next_sizes_bytes[ahead][quality])
        return self.bitrates_kbps[quality] * 1000 / 8 * self.segment_s


@dataclass(frozen=True)
class Choice:
    quality: int
    wait_s: float = 0.0  # pause before downloading (BOLA above its target buffer)


def highest_below(bitrates: Sequence[float], kbps: float) -> int:
    """Index of the highest bitrate at most `kbps` (the lowest if none is)."""
    chosen = 0
    for index, rate in enumerate(bitrates):
        if rate <= kbps:
            chosen = index
    return chosen


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

    def __init__(self, window: int = 5, safety: float = 0.9) -> None:
        self.window = window
        self.safety = safety

    def estimate_kbps(self, state: AbrState) -> float:
        return harmonic_mean(state.throughputs_kbps[-self.window:]) * self.safety

    def choose(self, state: AbrState) -> Choice:
        if not state.throughputs_kbps:
            return Choice(0)
        return Choice(highest_below(state.bitrates_kbps, self.estimate_kbps(state)))


class Bba(Abr):
    name = "bba"

    def __init__(self, reservoir_s: float = 5.0, cushion_s: float = 10.0) -> None:
        self.reservoir_s = reservoir_s
        self.cushion_s = cushion_s

    def choose(self, state: AbrState) -> Choice:
        rates = state.bitrates_kbps
        if state.buffer_s < self.reservoir_s:
            return Choice(0)
        if state.buffer_s >= self.reservoir_s + self.cushion_s:
            return Choice(len(rates) - 1)
        fraction = (state.buffer_s - self.reservoir_s) / self.cushion_s
        target = rates[0] + fraction * (rates[-1] - rates[0])
        return Choice(highest_below(rates, target))


class Bola(Abr):
    name = "bola"

    def __init__(self, gp: float = 5.0, avoid_oscillation: bool = True,
                 safety: float = 0.9) -> None:
        self.gp = gp  # γ·p: how much rebuffering is weighed against utility
        self.avoid_oscillation = avoid_oscillation
        self.safety = safety
        self.placeholder_s = 0.0  # extra virtual buffer (set by the dynamic rule)

    def _v(self, state: AbrState, utilities: list[float]) -> float:
        usable = max(state.max_buffer_s - state.segment_s, state.segment_s)
        return usable / (utilities[-1] + self.gp)

    def choose(self, state: AbrState) -> Choice:
        rates = state.bitrates_kbps
        utilities = [math.log(r / rates[0]) for r in rates]
        v = self._v(state, utilities)
        level = min(state.buffer_s + self.placeholder_s, state.max_buffer_s)
        scores = [(v * (u + self.gp) - level) / r for u, r in zip(utilities, rates,
                                                                   strict=True)]
        best = max(range(len(rates)), key=lambda q: scores[q])
        last = state.last_quality
        if self.avoid_oscillation and last is not None and best > last and \
                state.throughputs_kbps:
            sustained = highest_below(rates, harmonic_mean(state.throughputs_kbps[-5:])
                                      * self.safety)
            if best > sustained:
                best = max(sustained, last)
        if scores[best] >= 0:
            return Choice(best)
        # above the buffer level where this download pays off: wait until it is reached
        return Choice(best, max(0.0, level - v * (utilities[best] + self.gp)))

    def placeholder_for(self, state: AbrState, quality: int) -> float:
        """The least extra buffer with which BOLA would choose at least `quality`."""
        saved = self.placeholder_s
        try:
            for tenth in range(int(state.max_buffer_s * 10) + 1):
                self.placeholder_s = tenth / 10
                if self.choose(state).quality >= quality:
                    return self.placeholder_s
            return 0.0
        finally:
            self.placeholder_s = saved


class RobustMpc(Abr):
    name = "mpc"

    def __init__(self, horizon: int = 5, window: int = 5, rebuffer_penalty: float = 4.3,
                 switch_penalty: float = 1.0) -> None:
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
            return Choice(0)
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
        return Choice(int(combos[int(np.argmax(reward)), 0]))


class Dynamic(Abr):
    """dash.js DYNAMIC: the throughput rule while the buffer is short, BOLA once it is long
    (switch on at `bola_on_s`, back off below `bola_off_s`)."""

    name = "dynamic"

    def __init__(self, bola_on_s: float = 12.0, bola_off_s: float = 6.0) -> None:
        self.bola_on_s = bola_on_s
        self.bola_off_s = bola_off_s
        self._throughput = ThroughputRule()
        self._bola = Bola()
        self._using_bola = False

    def choose(self, state: AbrState) -> Choice:
        if self._using_bola and state.buffer_s < self.bola_off_s:
            self._using_bola = False
        elif not self._using_bola and state.buffer_s >= self.bola_on_s:
            self._using_bola = True
            if state.last_quality is not None:  # carry on where the throughput rule was
                self._bola.placeholder_s = 0.0
                self._bola.placeholder_s = self._bola.placeholder_for(state,
                                                                      state.last_quality)
        return (self._bola if self._using_bola else self._throughput).choose(state)


class Fixed(Abr):
    name = "fixed"

    def __init__(self, quality: int | None = None, kbps: float | None = None) -> None:
        self.quality = quality
        self.kbps = kbps

    def choose(self, state: AbrState) -> Choice:
        if self.kbps is not None:
            return Choice(highest_below(state.bitrates_kbps, self.kbps))
        top = len(state.bitrates_kbps) - 1
        return Choice(top if self.quality is None else min(max(self.quality, 0), top))


ALGORITHMS: dict[str, type[Abr]] = {cls.name: cls for cls in (
    ThroughputRule, Bba, Bola, RobustMpc, Dynamic, Fixed)}


def make_abr(name: str, **params: Any) -> Abr:
    try:
        cls = ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown ABR algorithm {name!r} (known: "
                         f"{', '.join(ALGORITHMS)})") from None
    try:
        return cls(**params)
    except TypeError as err:
        raise ValueError(f"{name}: bad parameters {params}: {err}") from None
