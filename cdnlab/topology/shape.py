"""`LinkShape`: the one value that says how a link direction behaves.

Rate (Mbit/s, None for unshaped), one-way delay and jitter (ms), loss (%), and the
bottleneck queue (packets). Shaping backends (`cdnlab.net.shaping`) apply it; topology specs,
traces and scenario events produce it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

MAX_RATE_MBPS = 1000.0
FIELDS = ("rate", "delay", "jitter", "loss", "queue")


@dataclass(frozen=True)
class LinkShape:
    rate: float | None = None
    delay: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0
    queue: int = 1000

    def with_changes(self, **changes: Any) -> LinkShape:
        return replace(self, **changes)

    @property
    def impaired(self) -> bool:
        """True when the direction needs delay, jitter or loss (not only a rate)."""
        return bool(self.delay or self.jitter or self.loss)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def problems(self) -> list[tuple[str, str, str]]:
        """(field, problem, fix) for each value out of range; empty when valid."""
        found: list[tuple[str, str, str]] = []
        if self.rate is not None and not 0 < self.rate <= MAX_RATE_MBPS:
            found.append(("rate", f"rate {self.rate} Mbit/s is out of range",
                          f"give a rate in (0, {MAX_RATE_MBPS:g}] Mbit/s, or null for unshaped"))
        if self.delay < 0:
            found.append(("delay", f"negative delay {self.delay} ms",
                          "give a one-way delay of 0 ms or more"))
        if self.jitter < 0:
            found.append(("jitter", f"negative jitter {self.jitter} ms",
                          "give a jitter of 0 ms or more"))
        if not 0 <= self.loss < 100:
            found.append(("loss", f"loss {self.loss} % is out of range",
                          "give a loss percentage in [0, 100)"))
        if self.queue < 1:
            found.append(("queue", f"queue {self.queue} packets is too small",
                          "give a queue of at least 1 packet"))
        return found


def shape_from_mapping(values: dict[str, Any], base: LinkShape) -> LinkShape:
    """Overlay the shape fields present in `values` on `base`; raise TypeError/ValueError
    naming the field when a value is not a number."""
    changes: dict[str, Any] = {}
    for name in FIELDS:
        if name not in values:
            continue
        raw = values[name]
        if name == "rate" and raw is None:
            changes[name] = None
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"{name}: expected a number, got {raw!r}")
        changes[name] = int(raw) if name == "queue" else float(raw)
    return base.with_changes(**changes)
