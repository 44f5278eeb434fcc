"""Per-session QoE from the segment log and the buffer's stalls.

    startup_s         from the session's start to the first frame
    rebuffer_count/s  stalls after playback began (startup is not counted)
    avg_bitrate_kbps  mean declared bitrate of the downloaded segments
    switches          changes of representation; switch_kbps_mean their mean magnitude
    qoe               Σ bitrate (Mbit/s) − 4.3 · rebuffer s − Σ |Δ bitrate| (Mbit/s), the
                      linear QoE of MPC and Pensieve, summed per segment as those papers do
                      (their 4.3 is the top of their ladder); qoe_per_segment = qoe / segments.
                      Kept to compare with papers; it weighs rebuffering against bitrate
                      differently for every segment duration
    qoe_per_s         the same terms per second of media, with the rebuffer penalty μ
                      derived from the ladder in use: mean bitrate (Mbit/s) − μ · rebuffer s
                      / media s − Σ |Δ bitrate| (Mbit/s) / media s, μ = the ladder's top
                      bitrate in Mbit/s (`rebuffer_penalty`), so a second of stall costs what
                      a second at the top rung is worth, whatever the segment duration
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

REBUFFER_PENALTY = 4.3


def session_metrics(bitrates_kbps: Sequence[float], stalls: Sequence[tuple[float, float]],
                    startup_s: float | None, segment_s: float | None = None,
                    ladder_kbps: Sequence[float] | None = None) -> dict[str, Any]:
    n = len(bitrates_kbps)
    changes = [abs(b - a) for a, b in itertools.pairwise(bitrates_kbps)]
    switches = [c for c in changes if c > 0]
    rebuffer_s = sum(d for _s, d in stalls)
    qoe = sum(bitrates_kbps) / 1000 - REBUFFER_PENALTY * rebuffer_s - sum(changes) / 1000
    media_s = n * segment_s if segment_s else 0.0
    penalty = max(ladder_kbps) / 1000 if ladder_kbps else None
    per_s = None
    if media_s and penalty is not None:
        per_s = (sum(bitrates_kbps) / n / 1000 - penalty * rebuffer_s / media_s
                 - sum(changes) / 1000 / media_s)
    return {
        "segments": n,
        "startup_s": None if startup_s is None else round(startup_s, 3),
        "rebuffer_count": len(stalls),
        "rebuffer_s": round(rebuffer_s, 3),
        "avg_bitrate_kbps": round(sum(bitrates_kbps) / n, 1) if n else 0.0,
        "switches": len(switches),
        "switch_kbps_mean": round(sum(switches) / len(switches), 1) if switches else 0.0,
        "qoe": round(qoe, 3),
        "qoe_per_segment": round(qoe / n, 4) if n else 0.0,
        "qoe_per_s": None if per_s is None else round(per_s, 4),
        "rebuffer_penalty": penalty,
    }
