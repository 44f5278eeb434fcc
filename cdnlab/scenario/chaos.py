"""A scenario's `chaos` section: one fault of each kind at seeded random times, expanded into
ordinary timeline events when the scenario is read (so `cdnlab validate` lists them and a
seed always gives the same ones).

    chaos: {from_s: 3, to_s: 20}

Each kind, at a time drawn uniformly in [from_s, to_s]:
    kill_program      SIGKILL to a program (restarted only under `supervise`)
    stop_program      SIGTERM to another, and `restart_program` 2-4 s later
    pause_program     SIGSTOP to a third, and `resume_program` 1-3 s later
    origin_fault      the origin answers 503 for 2-4 s
    origin_fault      the origin answers at 400 kbit/s for 2-4 s
    dns_drop          the redirector drops DNS over UDP for 2-4 s
    fill_cache        a pull edge server's cache disk full for 2-4 s
The three programs are distinct, drawn from the programs the run starts
(`Scenario.program_names`); the filled edge from its pull edge servers (none: no
fill_cache). fill_cache is drawn last, so the other draws are those of a seed before it.
"""

from __future__ import annotations

import random
from typing import Any

KINDS = ("kill_program", "stop_program", "pause_program", "origin_fault", "dns_drop",
         "fill_cache")
SLOW_KBPS = 400


def chaos_events(seed: int, from_s: float, to_s: float, programs: list[str],
                 pull_edges: list[str]) -> list[tuple[float, str, dict[str, Any]]]:
    """(second, kind, args) of every event the section stands for."""
    rng = random.Random(f"{seed}:chaos")

    def at() -> float:
        return round(rng.uniform(from_s, to_s), 1)

    def lasting() -> float:
        return round(rng.uniform(2.0, 4.0), 1)

    killed, stopped, paused = rng.sample(programs, 3)
    events: list[tuple[float, str, dict[str, Any]]] = [
        (at(), "kill_program", {"program": killed, "signal": "KILL"})]
    start = at()
    events += [(start, "stop_program", {"program": stopped}),
               (round(start + lasting(), 1), "restart_program", {"program": stopped})]
    start = at()
    events += [(start, "pause_program", {"program": paused}),
               (round(start + rng.uniform(1.0, 3.0), 1), "resume_program",
                {"program": paused})]
    events += [(at(), "origin_fault", {"status": 503, "seconds": lasting()}),
               (at(), "origin_fault", {"slow_kbps": SLOW_KBPS, "seconds": lasting()}),
               (at(), "dns_drop", {"seconds": lasting()})]
    if pull_edges:
        events.append((at(), "fill_cache", {"edge": rng.choice(sorted(pull_edges)),
                                            "seconds": lasting()}))
    return sorted(events, key=lambda e: e[0])
