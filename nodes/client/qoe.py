"""Per-session QoE from the segment log and the buffer's stalls.

    startup_s         from the session's start to the first frame
    rebuffer_count/s  stalls after playback began (startup is not counted)
    avg_bitrate_kbps  mean declared bitrate of the downloaded segments
    switches          changes of representation; switch_kbps_mean their mean magnitude
    qoe               Σ bitrate (Mbit/s) − 4.3 · rebuffer s − Σ |Δ bitrate| (Mbit/s), the
                      linear QoE of MPC and Pensieve; qoe_per_segment = qoe / segments
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

REBUFFER_PENALTY = 4.3


def session_metrics(bitrates_kbps: Sequence[float], stalls: Sequence[tuple[float, float]],
                    startup_s: float | None) -> dict[str, Any]:
    n = len(bitrates_kbps)
    changes = [abs(b - a) for a, b in itertools.pairwise(bitrates_kbps)]
    switches = [c for c in changes if c > 0]
    rebuffer_s = sum(d for _s, d in stalls)
    qoe = sum(bitrates_kbps) / 1000 - REBUFFER_PENALTY * rebuffer_s - sum(changes) / 1000
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
    }
