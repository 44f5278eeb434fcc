"""The workload as session plans: who watches what, with which ABR, from when. All random
choices come from one generator seeded by the scenario's seed, so a seed always gives the
same viewers, titles, algorithms and arrival times.

Arrivals: `poisson` (exponential gaps at `rate_per_s` across all viewers, from `start_s`)
or `uniform` (evenly over `window_s` from `start_s`); no arrival after `duration_s` (the
parser refuses a plan that would). With `closed_loop`, each viewer plays one session after
another until `duration_s`, its next titles drawn in advance. Titles: Zipf with exponent `zipf`
over the titles (uploaded masters first, then synthetic), most popular first. ABR:
weighted choice, or each algorithm in turn (`abr_assign: cycle`); a `dashjs` viewer (dash.js
in headless Chromium) draws its title again, Zipf over the uploaded titles alone, since it
decodes what it plays.
"""

from __future__ import annotations

import math
import random
from typing import Any

from cdnlab.scenario.spec import Scenario
from nodes.common.conventions import BROWSER_ABR

MAX_SESSIONS_PER_VIEWER = 500


def zipf_weights(count: int, exponent: float) -> list[float]:
    return [1.0 / (rank ** exponent) for rank in range(1, count + 1)]


def plan_sessions(scenario: Scenario, viewers: dict[str, int] | None = None,
                  segments: int | None = None, tag: str = "v",
                  start_offset_s: float = 0.0) -> dict[str, list[dict[str, Any]]]:
    """Client host → its sessions (start_s counted from the player process's start)."""
    work = scenario.workload
    rng = random.Random(f"{scenario.seed}:{tag}")
    titles = scenario.content.title_list()
    uploaded = [u.title for u in scenario.content.uploads]
    weights = zipf_weights(len(titles), work.zipf)
    algos, algo_weights = list(work.abr), list(work.abr.values())
    chosen = viewers if viewers is not None else work.viewers
    slots = [(host, i) for host in sorted(chosen) for i in range(chosen[host])]
    rng.shuffle(slots)
    plans: dict[str, list[dict[str, Any]]] = {}
    t = work.start_s if viewers is None else 0.0
    for n, (host, i) in enumerate(slots):
        if viewers is not None:
            start = 0.0
        elif work.process == "poisson":
            t += rng.expovariate(work.rate_per_s) if n else 0.0
            start = t
        else:
            start = work.start_s + (work.window_s * n / max(len(slots) - 1, 1)
                                    if len(slots) > 1 else 0.0)
        title = rng.choices(titles, weights)[0]
        algo = algos[n % len(algos)] if work.abr_assign == "cycle" \
            else rng.choices(algos, algo_weights)[0]
        if algo == BROWSER_ABR:
            title = rng.choices(uploaded, zipf_weights(len(uploaded), work.zipf))[0]
        plan = {"id": f"{tag}-{host}-{i}", "title": title, "algo": algo,
                "segments": segments or work.segments, "max_buffer_s": work.max_buffer_s,
                "abr_params": work.abr_params.get(algo),
                "start_s": round(start + start_offset_s, 3)}
        if work.closed_loop and viewers is None:
            plan |= {"until_s": scenario.duration_s + start_offset_s,
                     "more_titles": rng.choices(titles, weights, k=_sessions_after(
                         scenario, scenario.duration_s - start))}
        plans.setdefault(host, []).append(plan)
    return plans


def _sessions_after(scenario: Scenario, window_s: float) -> int:
    """How many sessions one closed-loop viewer could need after its first, at most: the
    window over the shortest a session can take (its media less the buffer it may hold
    when the last segment arrives), plus one."""
    work = scenario.workload
    shortest = max(work.segments * scenario.content.segment_s - work.max_buffer_s,
                   scenario.content.segment_s)
    return min(math.ceil(max(window_s, 0.0) / shortest) + 1, MAX_SESSIONS_PER_VIEWER)
