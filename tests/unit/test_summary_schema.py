"""The schema of summary.json catches what drifts: a key it does not document, a documented
key missing, a value of the wrong type. (Every scenario test also checks a real run's
summary against it, in `run_scenario`.)"""

from __future__ import annotations

import copy
from typing import Any

from cdnlab.results.schema import problems

MINIMAL: dict[str, Any] = {
    "scenario": "t", "seed": 1, "interrupted": None, "mode": "pull",
    "dns": {"answers": 0}, "cache": {},
    "network": {"bytes": {"transit": 10}, "boundaries": None},
    "origin": {"bytes_by_cluster": {}, "bytes_viewing_by_cluster": {}},
    "fill": None, "modes": {"edge1": "pull"},
    "players": {"sessions": 0, "completed": 0, "concurrent_peak": None,
                "concurrent_mean": None, "qoe_mean": None, "qoe_per_s_mean": None,
                "startup_s_mean": None, "rebuffer_s_total": 0, "rebuffer_count_total": 0,
                "stalls_by_track": {}, "avg_bitrate_kbps_mean": None, "switches_mean": None,
                "jain_fairness": {}, "by_algo": {}, "jain_fairness_mean": None,
                "browsers": None, "failures_by_reason": {}, "per_session": []},
    "cmcd": {"requests": 0, "with_cmcd": 0, "sessions": 0, "by": {}},
    "fidelity": None, "faults": None,
    "routing": {"mode": "dns", "steering": None, "cmsd": None, "anycast": None,
                "bgp_changes": None,
                "segments": {"judged": 0, "lowest_rtt_share": None,
                             "extra_rtt_ms_per_segment": None},
                "moves": [], "overloads": []},
    "events": {"applied": [], "failed": []},
}


def test_a_summary_that_says_what_the_schema_says_passes() -> None:
    assert problems(MINIMAL) == []


def test_drift_is_named() -> None:
    extra = copy.deepcopy(MINIMAL)
    extra["network"]["transit_bytes"] = 5
    assert problems(extra) == [
        "summary.network.transit_bytes: not in the schema (cdnlab/results/schema.py)"]
    missing = copy.deepcopy(MINIMAL)
    del missing["players"]["concurrent_peak"]
    assert problems(missing) == ["summary.players.concurrent_peak: missing"]
    wrong = copy.deepcopy(MINIMAL)
    wrong["players"]["rebuffer_count_total"] = 0.5
    wrong["fidelity"] = {"ok": True, "rtt_ok": True, "monitored": "yes", "violations": [],
                         "verdict": "faithful", "monitor": None}
    assert [p.split(":")[0] for p in problems(wrong)] == [
        "summary.players.rebuffer_count_total", "summary.fidelity.monitored"]
