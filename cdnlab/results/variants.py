"""The variants of one scenario side by side (`variants:` in a scenario; `cdnlab run` runs
each into `<root>/<variant>` and writes `variants.json` and `variants.md` here). Each
variant's figures are read from its own summary.json, so they mean what the summary's
schema says (`cdnlab/results/schema.py`); a figure a run did not measure is null.

Per variant: how viewers were routed, where they were served from (`routing.segments`:
lowest-RTT share and mean extra RTT), how fast sessions moved after each event
(`routing.moves`: the seconds until 90 % of the affected sessions had moved, per event
kind), the load on a cluster whose capacity was cut (`routing.overloads`: peak
utilisation, seconds over its threshold, when what no signal could prevent had drained and
the seconds over the threshold after that), rebuffering, sessions completed and the
fidelity verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cdnlab.results.report import _text


def _routing(summary: dict[str, Any]) -> str:
    routing = summary.get("routing") or {}
    words = [str(routing.get("mode", "dns"))]
    if routing.get("cmsd") is not None:
        words.append("cmsd")
    resolvers = ((summary.get("dns") or {}).get("resolvers") or {})
    kinds = sorted({str(r.get("kind")) for r in resolvers.values() if isinstance(r, dict)})
    if kinds:
        words.append("via " + "+".join(kinds) + " resolvers")
    return " ".join(words)


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    """One variant's row of the comparison."""
    routing = summary.get("routing") or {}
    segments = routing.get("segments") or {}
    players = summary.get("players") or {}
    moves = {m["kind"]: m for m in routing.get("moves") or []}
    overload = (routing.get("overloads") or [None])[0] or {}
    return {
        "routing": _routing(summary),
        "lowest_rtt_share": segments.get("lowest_rtt_share"),
        "extra_rtt_ms_per_segment": segments.get("extra_rtt_ms_per_segment"),
        "overload_to_90pct_s": (moves.get("cluster_capacity") or {}).get("to_90pct_s"),
        "overload_affected": (moves.get("cluster_capacity") or {}).get("affected"),
        "death_to_90pct_s": (moves.get("cluster_down") or {}).get("to_90pct_s"),
        "death_affected": (moves.get("cluster_down") or {}).get("affected"),
        "overloaded_utilisation_max": overload.get("utilisation_max"),
        "overloaded_seconds_over": overload.get("seconds_over_threshold"),
        "overload_settled_s": overload.get("settled_s"),
        "overloaded_seconds_over_settled": overload.get("seconds_over_after_settled"),
        "rebuffer_s_total": players.get("rebuffer_s_total"),
        "completed": players.get("completed"), "sessions": players.get("sessions"),
        "faithful": (summary.get("fidelity") or {}).get("ok"),
    }


COLUMNS = (("routing", "routing"), ("lowest_rtt_share", "lowest-RTT share"),
           ("extra_rtt_ms_per_segment", "extra RTT ms per segment"),
           ("overload_to_90pct_s", "overload: 90 % moved s"),
           ("overloaded_utilisation_max", "overloaded peak util."),
           ("overloaded_seconds_over", "s over threshold"),
           ("overload_settled_s", "overload settled s"),
           ("overloaded_seconds_over_settled", "s over after settled"),
           ("death_to_90pct_s", "death: 90 % moved s"),
           ("rebuffer_s_total", "rebuffer s"), ("completed", "completed"),
           ("faithful", "faithful"))


def variants_table(rows: dict[str, dict[str, Any]]) -> str:
    """A Markdown table: one row per variant, the columns above."""
    lines = ["| variant | " + " | ".join(label for _, label in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(_text(row.get(key)) for key, _ in COLUMNS)
                     + " |")
    return "\n".join(lines)


def variants_report(root: Path, bundles: dict[str, Path]) -> dict[str, Any]:
    """`variants.json` and `variants.md` in `root` for the variants' bundles."""
    summaries = {name: json.loads((bundle / "summary.json").read_text())
                 for name, bundle in bundles.items()}
    rows = {name: figures(summary) for name, summary in summaries.items()}
    scenario = next(iter(summaries.values())).get("scenario") if summaries else None
    report = {"scenario": scenario, "bundles": {n: str(b) for n, b in bundles.items()},
              "variants": rows}
    (root / "variants.json").write_text(json.dumps(report, indent=1))
    (root / "variants.md").write_text(
        f"# {scenario}: its variants side by side\n\n"
        "Each figure as its run's summary.json defines it (cdnlab/results/variants.py); "
        "– where a run did not measure it.\n\n" + variants_table(rows) + "\n")
    return report
