"""The playback buffer, in seconds of media, advanced by elapsed time: nothing plays until
the startup threshold is buffered; then it drains at playback speed; when it runs dry the
player stalls (a rebuffer event) until `resume_s` is buffered again. The live player feeds
it wall-clock time, the simulator simulated time; both get the same accounting."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PlaybackBuffer:
    startup_s: float
    resume_s: float
    level_s: float = 0.0
    now: float = 0.0
    playing: bool = False
    started_at: float | None = None
    played_s: float = 0.0
    stalls: list[tuple[float, float]] = field(default_factory=list)  # (start, duration)
    _stall_start: float | None = None

    def advance(self, now: float) -> None:
        """Let time pass to `now`: play what is buffered, stall when it runs out."""
        elapsed = max(0.0, now - self.now)
        self.now = now
        if not self.playing or elapsed == 0:
            return
        if elapsed < self.level_s:
            self.level_s -= elapsed
            self.played_s += elapsed
            return
        self.played_s += self.level_s
        self._stall_start = now - (elapsed - self.level_s)
        self.level_s = 0.0
        self.playing = False

    def add(self, seconds: float, now: float) -> None:
        self.advance(now)
        self.level_s += seconds
        threshold = self.startup_s if self.started_at is None else self.resume_s
        if not self.playing and self.level_s >= threshold - 1e-9:
            self.playing = True
            if self.started_at is None:
                self.started_at = now
            elif self._stall_start is not None:
                self.stalls.append((self._stall_start, now - self._stall_start))
                self._stall_start = None

    def finish(self, now: float, media_left: bool = False) -> None:
        """End of session: an open stall counts if media was still to come."""
        self.advance(now)
        if self._stall_start is not None and media_left:
            self.stalls.append((self._stall_start, now - self._stall_start))
            self._stall_start = None

    @property
    def stalled(self) -> bool:
        return self._stall_start is not None
