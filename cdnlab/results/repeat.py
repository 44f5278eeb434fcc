"""Spread, not single numbers: the key figures of repeated runs with their mean and 95 %
confidence interval (`cdnlab run --repeat N`), and runs side by side with their deltas and
the settings in which they differ (`cdnlab compare`).

The interval is Student's t: mean ± t(0.975, n − 1) · s / √n, with s the sample standard
deviation; it needs two runs, and a figure some run did not measure (null) is left out of
its spread (n says how many counted); a yes/no figure (fidelity ok) counts as 1 or 0.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from cdnlab.results.report import KEY_FIGURES, _text, figure, table
from cdnlab.results.summary import build_summary

# t(0.975, df) for df = 1…30 (beyond: the normal 1.96)
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
         2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069,
         2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def spread(values: list[Any]) -> dict[str, Any]:
    """n, mean, ci95 (the half-width), min and max of the numbers among `values` (a yes/no
    figure counts as 1/0, so its mean is the share of runs where it held)."""
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    if not numbers:
        return {"n": 0, "mean": None, "ci95": None, "min": None, "max": None}
    n = len(numbers)
    half = None
    if n > 1:
        t = T_975[n - 2] if n - 1 <= len(T_975) else 1.96
        half = round(t * statistics.stdev(numbers) / math.sqrt(n), 6)
    return {"n": n, "mean": round(statistics.fmean(numbers), 6), "ci95": half,
            "min": min(numbers), "max": max(numbers)}


def repeat_report(root: Path, bundles: list[Path]) -> dict[str, Any]:
    """`repeat.json` and `repeat.md` in `root` for the runs in `bundles`."""
    summaries = [json.loads((b / "summary.json").read_text()) for b in bundles]
    figures = {label: spread([figure(s, path) for s in summaries])
               for label, path in KEY_FIGURES}
    report = {"runs": [str(b) for b in bundles], "figures": figures,
              "settings_that_differed": differences([_run(b) for b in bundles])}
    (root / "repeat.json").write_text(json.dumps(report, indent=1))
    lines = [f"# {summaries[0].get('scenario')}, {len(bundles)} runs", "",
             "Mean ± 95 % confidence interval (Student's t), and the range.", "", "```",
             repeat_table(figures), "```", ""]
    lines += settings_lines(report["settings_that_differed"])
    (root / "repeat.md").write_text("\n".join(lines) + "\n")
    return report


def repeat_table(figures: dict[str, dict[str, Any]]) -> str:
    width = max(len(label) for label in figures) + 2
    rows = [f"{'':<{width}}{'mean ± ci95':>24}{'min … max':>26}{'n':>4}"]
    for label, s in figures.items():
        middle = "–" if s["mean"] is None else \
            f"{_text(s['mean'])} ± {_text(s['ci95'])}"
        span = "–" if s["min"] is None else f"{_text(s['min'])} … {_text(s['max'])}"
        rows.append(f"{label:<{width}}{middle:>24}{span:>26}{s['n']:>4}")
    return "\n".join(rows)


def _run(bundle: Path) -> dict[str, Any]:
    path = bundle / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


def settings(run: dict[str, Any]) -> dict[str, Any]:
    """What a run was made with, flat: the resolved scenario, seed, shaping backend, switch
    datapath, the CPU-awake decision, kernel, Python and package versions."""
    flat: dict[str, Any] = {"seed": run.get("seed"), "shaping": run.get("shaping"),
                            "datapath": run.get("datapath"), "kernel": run.get("kernel"),
                            "python": run.get("python"), "autogroups": run.get("autogroups")}
    awake = run.get("cpu_awake") or {}
    flat |= {"cpu_awake.mode": awake.get("mode"), "cpu_awake.kept_awake": awake.get("active")}
    flat |= {f"versions.{k}": v for k, v in (run.get("versions") or {}).items()}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}", inner)
        else:
            flat[prefix] = value

    walk("scenario", run.get("scenario") or {})
    return flat


def differences(runs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Every setting whose value is not the same in all runs → its value in each."""
    flats = [settings(r) for r in runs]
    keys = sorted({k for f in flats for k in f})
    return {k: [f.get(k) for f in flats] for k in keys
            if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flats}) > 1}


def settings_lines(differed: dict[str, list[Any]]) -> list[str]:
    if not differed:
        return ["Settings: the same in every run."]
    return ["Settings that differed:"] + [
        f"- {key}: {' | '.join(_text(v) for v in values)}" for key, values in differed.items()]


def _summaries(roots: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    summaries = []
    for root in roots:
        path = root / "summary.json"
        summary = json.loads(path.read_text()) if path.exists() else build_summary(root)
        summaries.append((root.name, summary))
    return summaries


def compare_data(roots: list[Path]) -> dict[str, Any]:
    """`cdnlab compare --json`: each key figure per run, and the settings that differed."""
    summaries = _summaries(roots)
    return {"runs": [str(r) for r in roots],
            "figures": {label: [figure(s, path) for _, s in summaries]
                        for label, path in KEY_FIGURES},
            "settings_that_differed": differences([_run(r) for r in roots])}


def compare(roots: list[Path]) -> str:
    """`cdnlab compare`: the key figures side by side with the change from the first run
    to the last, then every setting that differed between the runs."""
    summaries = _summaries(roots)
    lines = [table(summaries, delta=len(summaries) > 1), ""]
    lines += settings_lines(differences([_run(r) for r in roots]))
    return "\n".join(lines)
