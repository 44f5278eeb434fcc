"""Progress of a long-running step: a bar on a terminal, JSONL events otherwise.

ffmpeg reports `out_time_us=…` lines on `-progress pipe:1`; the transcoder turns them into
fractions and hands them to a `Progress`, which draws a bar on stderr when it is a terminal
and emits at most one `progress` event per second to the node's event log otherwise.
"""

from __future__ import annotations

import sys
import time

from nodes.common.events import EventLog


class Progress:
    def __init__(self, label: str, log: EventLog | None = None, tty: bool | None = None,
                 **fields: object) -> None:
        self.label = label
        self.log = log
        self.fields = fields
        self.tty = sys.stderr.isatty() if tty is None else tty
        self._last_event = 0.0
        self._last_shown = -1

    def update(self, fraction: float) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        percent = int(fraction * 100)
        if self.tty and percent != self._last_shown:
            bar = "#" * (percent // 4)
            print(f"\r{self.label}: [{bar:<25}] {percent:3d}%", end="", file=sys.stderr,
                  flush=True)
        now = time.monotonic()
        final = fraction >= 1.0 and self._last_shown < 100
        if self.log is not None and (now - self._last_event >= 1.0 or final):
            self._last_event = now
            self.log.emit("progress", step=self.label, fraction=round(fraction, 3),
                          **self.fields)
        self._last_shown = percent

    def done(self) -> None:
        self.update(1.0)
        if self.tty:
            print(file=sys.stderr, flush=True)
