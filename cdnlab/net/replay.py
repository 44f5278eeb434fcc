"""Trace replay: a link direction's rate follows a `BandwidthTrace` over time.

One thread per traced link wakes at each step and changes the htb class in place through the
link's backend (`ShapedLink.set_rate`), so queued packets survive every change. Steps are
scheduled against the start time, not slept one after another, so they do not drift.
"""

from __future__ import annotations

import threading
import time

from cdnlab.net.shaping.base import DIRECTIONS, ShapedLink
from cdnlab.traces import BandwidthTrace

# htb cannot shape to nothing: a trace's outage (rate 0) becomes its smallest useful rate,
# which carries about one 1500-byte packet a second and a half
OUTAGE_MBPS = 0.008


class TraceReplayer:
    def __init__(self, link: ShapedLink, trace: BandwidthTrace, direction: str = "both",
                 loop: bool = True) -> None:
        self.link = link
        self.trace = trace
        self.directions = DIRECTIONS if direction == "both" else (direction,)
        self.loop = loop
        self.changes: list[tuple[float, float]] = []  # (seconds since start, Mbit/s) applied
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"trace {link.name}",
                                        daemon=True)
        self.started_at = 0.0

    def start(self) -> None:
        self.started_at = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        offset = 0.0
        try:
            while not self._stop.is_set():
                for start, mbps in self.trace.steps:
                    due = self.started_at + offset + start
                    if self._stop.wait(max(0.0, due - time.monotonic())):
                        return
                    for direction in self.directions:
                        self.link.set_rate(direction, max(mbps, OUTAGE_MBPS))
                    self.changes.append((round(time.monotonic() - self.started_at, 4), mbps))
                if not self.loop:
                    return
                offset += self.trace.period_s
        except Exception as exc:
            self.error = exc
