"""Smoothing of each network's RTT: an exponentially weighted moving average (weight
`alpha` on the newest round), started at the first sample. A round without an answer
leaves the value as it was; the redirector treats it as stale once no update arrives."""

from __future__ import annotations


class Smoother:
    def __init__(self, alpha: float = 0.5) -> None:
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self.values: dict[str, float] = {}

    def add(self, key: str, sample: float | None) -> float | None:
        if sample is None:
            return self.values.get(key)
        previous = self.values.get(key)
        value = sample if previous is None else previous + self.alpha * (sample - previous)
        self.values[key] = value
        return value
