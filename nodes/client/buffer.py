"""The playback buffer, in seconds of media per track (video, and audio when the title has
it), advanced by elapsed time. Nothing plays until every track holds the startup threshold;
then all tracks drain together at playback speed; when any track runs dry the player stalls
(a rebuffer event, recorded with the track that ran dry) until every track holds `resume_s`
again. This is how a browser plays DASH: Media Source Extensions (W3C, the HTMLMediaElement
`buffered` extension) make the element's buffered ranges the intersection of every active
SourceBuffer's ranges, so playback stops where the first track ends. The live player feeds
it wall-clock time, the simulator simulated time; both get the same accounting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VIDEO = "video"
AUDIO = "audio"


@dataclass
class PlaybackBuffer:
    startup_s: float
    resume_s: float
    tracks: tuple[str, ...] = (VIDEO,)
    now: float = 0.0
    playing: bool = False
    started_at: float | None = None
    played_s: float = 0.0
    stalls: list[tuple[float, float]] = field(default_factory=list)  # (start, duration)
    stall_tracks: list[str] = field(default_factory=list)  # per stall, the track(s) run dry
    levels: dict[str, float] = field(init=False)
    _stall_start: float | None = None
    _dry: str | None = None

    def __post_init__(self) -> None:
        if not self.tracks:
            raise ValueError("a playback buffer needs at least one track")
        self.levels = dict.fromkeys(self.tracks, 0.0)

    @property
    def level_s(self) -> float:
        """Playable media: what every track holds."""
        return min(self.levels.values())

    def level_of(self, track: str) -> float:
        return self.levels[track]

    def advance(self, now: float) -> None:
        """Let time pass to `now`: play what every track holds, stall when one runs out."""
        elapsed = max(0.0, now - self.now)
        self.now = now
        if not self.playing or elapsed == 0:
            return
        playable = self.level_s
        if elapsed < playable:
            for track in self.levels:
                self.levels[track] -= elapsed
            self.played_s += elapsed
            return
        self.played_s += playable
        self._stall_start = now - (elapsed - playable)
        self._dry = "+".join(t for t, level in self.levels.items() if level <= playable)
        for track in self.levels:
            self.levels[track] = max(0.0, self.levels[track] - playable)
        self.playing = False

    def add(self, seconds: float, now: float, track: str = VIDEO) -> None:
        self.advance(now)
        self.levels[track] += seconds
        threshold = self.startup_s if self.started_at is None else self.resume_s
        if not self.playing and self.level_s >= threshold - 1e-9:
            self.playing = True
            if self.started_at is None:
                self.started_at = now
            elif self._stall_start is not None:
                self._close_stall(now)

    def finish(self, now: float, media_left: bool = False) -> None:
        """End of session: an open stall counts if media was still to come."""
        self.advance(now)
        if self._stall_start is not None and media_left:
            self._close_stall(now)

    def _close_stall(self, now: float) -> None:
        assert self._stall_start is not None
        self.stalls.append((self._stall_start, now - self._stall_start))
        self.stall_tracks.append(self._dry or VIDEO)
        self._stall_start = self._dry = None

    def stalls_by_track(self) -> dict[str, int]:
        """How many stalls each track caused (a stall where both ran dry counts for both)."""
        counts = dict.fromkeys(self.tracks, 0)
        for dry in self.stall_tracks:
            for track in dry.split("+"):
                counts[track] += 1
        return counts

    @property
    def stalled(self) -> bool:
        return self._stall_start is not None
