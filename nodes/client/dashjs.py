"""dash.js's DYNAMIC ABR strategy (dash.js 5, `src/streaming/controllers/AbrController.js`
and `src/streaming/rules/abr/`), as one `Abr`: the rules it combines, with their constants.

    strategy      ThroughputRule while the buffer is short, BolaRule once it is long, with
                  hysteresis (`_updateDynamicAbrStrategy`): BOLA on above the switch-on
                  level, off below half of it, judged on every buffer level dash.js sees
                  (so also just after a segment is appended). dash.js switches at 12 s and
                  6 s of its 18 s buffer target (bufferTimeDefault); here the levels are
                  the same fractions, 2/3 and 1/3, of the player's buffer target, so a
                  player with a 12 s buffer switches at 8 s and 4 s, not never
    throughput    dash.js's estimate: two exponentially weighted means of the segment
                  throughputs, each sample weighted by its download time (0.0015 × ms),
                  half-lives 3 and 8 (fast and slow), the lower of the two, × the
                  bandwidth safety factor 0.9; before any sample, the initial bitrate
                  (1000 kbit/s, dash.js's default for video)
    BolaRule      utilities ln(R/R₀); buffer time max(target, 10 + 2·N); γp = u_max /
                  (buffer time / 10 − 1), Vp = 10 / γp (MINIMUM_BUFFER_S 10,
                  MINIMUM_BUFFER_PER_BITRATE_LEVEL_S 2); the quality maximising
                  (Vp·(u + γp) − (buffer + placeholder)) / R, ties upward. Start-up state:
                  the throughput's rung, with the placeholder buffer set to the least at
                  which BOLA would choose it, until a segment's worth is buffered. Steady:
                  the placeholder grows by the time the player waited, decays ×0.99 a
                  segment and is capped at what the last segment's rung justified, is used
                  up before any wait is asked, and is reset when the buffer empties;
                  BOLA-O caps up-switches at the throughput's rung
    Insufficient  (InsufficientBufferRule) an empty buffer asks for the lowest rung; else
                  at most what 0.7 × throughput × buffer / segment duration affords
    SwitchHistory (SwitchHistoryRule) over the last 8 decisions, per rung from the lowest:
                  once 6 or more were taken from rungs up to it and drops / no-drops
                  exceeds 0.075, at most one rung below it

The decision is the lowest of the active rule and the two guards, as dash.js takes the
minimum of its rules' requests; `Choice.rule` names the rule that set it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from nodes.client.abr import Abr, AbrState, Choice, highest_below

MINIMUM_BUFFER_S = 10.0
MINIMUM_BUFFER_PER_BITRATE_LEVEL_S = 2.0
PLACEHOLDER_BUFFER_DECAY = 0.99
SWITCH_ON_FRACTION = 12.0 / 18.0  # dash.js: 12 s of its 18 s bufferTimeDefault
SWITCH_OFF_FRACTION = 6.0 / 18.0
INITIAL_KBPS = 1000.0
SAFETY = 0.9
INSUFFICIENT_SAFETY = 0.7
EWMA_WEIGHT_PER_MS = 0.0015
FAST_HALF_LIFE, SLOW_HALF_LIFE = 3.0, 8.0
SWITCH_HISTORY_DEPTH, SWITCH_SAMPLE_SIZE, SWITCH_THRESHOLD = 8, 6, 0.075


class Ewma:
    """An exponentially weighted mean whose samples carry weights (dash.js's EWMA)."""

    def __init__(self, half_life: float) -> None:
        self.alpha = 0.5 ** (1.0 / half_life)
        self.estimate = 0.0
        self.total_weight = 0.0

    def add(self, weight: float, value: float) -> None:
        adjusted = self.alpha ** weight
        self.estimate = value * (1 - adjusted) + adjusted * self.estimate
        self.total_weight += weight

    def value(self) -> float:
        return self.estimate / (1 - self.alpha ** self.total_weight)


@dataclass
class _Bola:
    """dash.js BolaRule's state for one ladder."""

    utilities: list[float]
    bitrates: list[float]
    gp: float
    vp: float
    steady: bool = False
    placeholder_s: float = 0.0

    @classmethod
    def for_ladder(cls, bitrates: list[float], buffer_target_s: float) -> _Bola:
        utilities = [math.log(b / bitrates[0]) for b in bitrates]
        buffer_time = max(buffer_target_s,
                          MINIMUM_BUFFER_S + MINIMUM_BUFFER_PER_BITRATE_LEVEL_S * len(bitrates))
        gp = max(utilities[-1], 1e-9) / (buffer_time / MINIMUM_BUFFER_S - 1)
        return cls(utilities, bitrates, gp, MINIMUM_BUFFER_S / gp)

    def quality_for_level(self, level: float) -> int:
        scores = [(self.vp * (u + self.gp) - level) / b
                  for u, b in zip(self.utilities, self.bitrates, strict=True)]
        return max(range(len(scores)), key=lambda q: (scores[q], q))

    def max_level_for(self, quality: int) -> float:
        return self.vp * (self.utilities[quality] + self.gp)

    def min_level_for(self, quality: int) -> float:
        """The least buffer at which BOLA prefers `quality` to every lower rung."""
        b_q, u_q = self.bitrates[quality], self.utilities[quality]
        return max([self.vp * (self.gp + (b_q * u_i - b_i * u_q) / (b_q - b_i))
                    for u_i, b_i in zip(self.utilities[:quality], self.bitrates[:quality],
                                        strict=True)], default=0.0)


class DashDynamic(Abr):
    name = "dynamic"

    def __init__(self, switch_on: float = SWITCH_ON_FRACTION,
                 switch_off: float = SWITCH_OFF_FRACTION, initial_kbps: float = INITIAL_KBPS,
                 safety: float = SAFETY, insufficient_safety: float = INSUFFICIENT_SAFETY,
                 guards: bool = True) -> None:
        self.switch_on = switch_on  # fractions of the player's buffer target
        self.switch_off = switch_off
        self.initial_kbps = initial_kbps
        self.safety = safety
        self.insufficient_safety = insufficient_safety
        self.guards = guards  # InsufficientBufferRule and SwitchHistoryRule
        self._using_bola = False
        self._bola: _Bola | None = None
        self._fast, self._slow = Ewma(FAST_HALF_LIFE), Ewma(SLOW_HALF_LIFE)
        self._seen = 0  # samples folded into the means
        self._history: deque[tuple[int, int]] = deque(maxlen=SWITCH_HISTORY_DEPTH)

    # -- inputs ------------------------------------------------------------------------
    def _throughput_kbps(self, state: AbrState) -> float | None:
        """dash.js's average throughput (the lower of the fast and slow means)."""
        for kbps, seconds in zip(state.throughputs_kbps[self._seen:],
                                 state.download_s[self._seen:], strict=False):
            weight = EWMA_WEIGHT_PER_MS * seconds * 1000
            self._fast.add(weight, kbps)
            self._slow.add(weight, kbps)
            self._seen += 1
        if not self._seen:
            return None
        return min(self._fast.value(), self._slow.value())

    def _update_strategy(self, state: AbrState) -> None:
        """The hysteresis, on the levels dash.js would have seen since the last decision:
        just after the last segment was appended, and now."""
        on, off = self.switch_on * state.max_buffer_s, self.switch_off * state.max_buffer_s
        for level in (state.level_after_last_s, state.buffer_s):
            if level is not None:
                self._using_bola = level > (off if self._using_bola else on)

    # -- the rules ---------------------------------------------------------------------
    def _bola_choice(self, state: AbrState, safe_kbps: float) -> Choice:
        if self._bola is None:
            self._bola = _Bola.for_ladder(list(state.bitrates_kbps), state.max_buffer_s)
        bola = self._bola
        level = state.buffer_s
        by_throughput = highest_below(state.bitrates_kbps, safe_kbps)
        if not bola.steady:
            bola.placeholder_s = max(0.0, bola.min_level_for(by_throughput) - level)
            if state.level_after_last_s is not None and level >= state.segment_s:
                bola.steady = True
            return Choice(by_throughput, rule="bola_startup")
        if state.stalled:
            bola.placeholder_s = 0.0  # onBufferEmpty
        self._settle_placeholder(state)
        bola.placeholder_s += state.waited_s
        quality = bola.quality_for_level(level + bola.placeholder_s)
        rule = "bola"
        last = state.last_quality if state.last_quality is not None else 0
        if quality > last and quality > by_throughput:  # BOLA-O
            quality, rule = max(by_throughput, last), "bola_o"
        delay = max(0.0, level + bola.placeholder_s - bola.max_level_for(quality))
        if delay <= bola.placeholder_s:  # the placeholder is used up before any wait
            bola.placeholder_s -= delay
            delay = 0.0
        else:
            delay -= bola.placeholder_s
            bola.placeholder_s = 0.0
            if quality == len(state.bitrates_kbps) - 1:
                delay = 0.0  # at the top, the buffer target decides how far to fill
        return Choice(quality, delay, rule)

    def _settle_placeholder(self, state: AbrState) -> None:
        """checkNewSegment: after each segment the placeholder decays, and is cut to what
        the last segment's rung justified at the buffer it was requested with."""
        bola = self._bola
        assert bola is not None
        if state.last_quality is None or state.level_after_last_s is None:
            return
        bola.placeholder_s *= PLACEHOLDER_BUFFER_DECAY
        downloading = state.download_s[-1] if state.download_s else 0.0
        at_request = state.level_after_last_s - state.segment_s + downloading
        ceiling = max(0.0, bola.max_level_for(state.last_quality) - at_request)
        bola.placeholder_s = min(bola.placeholder_s, ceiling)

    def _guards(self, state: AbrState, throughput: float | None) -> list[tuple[int, str]]:
        caps = []
        if state.buffer_s <= 0 or state.stalled:
            caps.append((0, "insufficient_buffer"))
        elif throughput is not None:
            kbps = throughput * self.insufficient_safety * state.buffer_s / state.segment_s
            caps.append((highest_below(state.bitrates_kbps, kbps), "insufficient_buffer"))
        drops = no_drops = 0
        for quality in range(len(state.bitrates_kbps)):
            drops_here = sum(1 for old, new in self._history if old == quality and new < old)
            drops += drops_here
            no_drops += sum(1 for old, new in self._history if old == quality and new >= old)
            if drops + no_drops >= SWITCH_SAMPLE_SIZE and \
                    drops / max(no_drops, 1) > SWITCH_THRESHOLD:
                caps.append((quality - 1 if quality > 0 and drops_here else quality,
                             "switch_history"))
                break
        return caps

    def choose(self, state: AbrState) -> Choice:
        throughput = self._throughput_kbps(state)
        self._update_strategy(state)
        if throughput is None:
            primary = Choice(highest_below(state.bitrates_kbps, self.initial_kbps),
                             rule="startup_estimate")
        elif self._using_bola:
            primary = self._bola_choice(state, throughput * self.safety)
        else:
            primary = Choice(highest_below(state.bitrates_kbps, throughput * self.safety),
                             rule="throughput")
        choice = primary
        if self.guards and throughput is not None:
            for cap, rule in self._guards(state, throughput):
                if cap < choice.quality:
                    choice = Choice(cap, 0.0, rule)
        if state.last_quality is not None:
            self._history.append((state.last_quality, choice.quality))
        return choice
