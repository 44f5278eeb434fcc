"""report.md for a bundle (rebuilt by `cdnlab report DIR`) and the key-figures table the
end of a run, `cdnlab compare` and repeated runs print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cdnlab.results.faults import fault_lines
from cdnlab.results.plots import make_plots
from cdnlab.results.summary import build_summary

KEY_FIGURES = (
    ("DNS answers", ("dns", "answers")),
    ("lowest-RTT share", ("dns", "lowest_rtt_share")),
    ("spill share", ("dns", "spill_share")),
    ("extra RTT (ms, mean)", ("dns", "extra_rtt_ms_mean")),
    ("hit ratio (all edges)", ("cache", "overall", "hit_ratio")),
    ("byte hit ratio", ("cache", "overall", "byte_hit_ratio")),
    ("origin egress bytes", ("network", "boundaries", "origin_egress")),
    ("bytes out of the transit", ("network", "boundaries", "transit_out")),
    ("  the same, viewing", ("network", "boundaries_viewing", "transit_out")),
    ("bytes to clients", ("network", "boundaries", "access_down")),
    ("fill bytes", ("fill", "bytes")),
    ("fill in window", ("fill", "in_window")),
    ("sessions completed", ("players", "completed")),
    ("sessions at once (peak)", ("players", "concurrent_peak")),
    ("QoE (mean)", ("players", "qoe_mean")),
    ("QoE per media second (mean)", ("players", "qoe_per_s_mean")),
    ("bitrate kbit/s (mean)", ("players", "avg_bitrate_kbps_mean")),
    ("rebuffer s (total)", ("players", "rebuffer_s_total")),
    ("startup s (mean)", ("players", "startup_s_mean")),
    ("Jain fairness (mean)", ("players", "jain_fairness_mean")),
    ("RTT error max (%)", ("fidelity", "rtt_err_max_pct")),
    ("fidelity ok", ("fidelity", "ok")),
    ("CPU busy max", ("fidelity", "monitor", "cpu_busy_mean_max")),
    ("CPU taken by the host max", ("fidelity", "monitor", "steal_share_max")),
    ("wake-up p99 max (µs)", ("fidelity", "monitor", "wake_p99_us_max")),
)


def figure(summary: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = summary
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(summaries: list[tuple[str, dict[str, Any]]], delta: bool = False) -> str:
    """The key figures of each run side by side; with `delta`, the last run's minus the
    first's where both are numbers."""
    width = max(len(label) for label, _ in KEY_FIGURES) + 2
    head = "".join(f"{name[:22]:>24}" for name, _ in summaries)
    rows = [f"{'':<{width}}{head}" + (f"{'Δ (last − first)':>24}" if delta else "")]
    for label, path in KEY_FIGURES:
        values = [figure(s, path) for _, s in summaries]
        row = f"{label:<{width}}" + "".join(f"{_text(v):>24}" for v in values)
        if delta:
            first, last = values[0], values[-1]
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool)
                          for v in (first, last))
            row += f"{_text(last - first) if numbers else '–':>24}"
        rows.append(row)
    return "\n".join(rows)


def write_report(root: Path) -> dict[str, Any]:
    summary = build_summary(root)
    plots = make_plots(root)
    run = json.loads((root / "run.json").read_text())
    lines = [f"# {summary['scenario']}", "",
             f"Seed {summary['seed']}; mode {summary['mode']}; shaping "
             f"{run.get('shaping')}, switches {run.get('datapath')}; kernel "
             f"{run.get('kernel')}." + (f" **Run {summary['interrupted']}.**"
                                        if summary["interrupted"] else ""), "",
             "## Key figures", "", "```", table([(summary["scenario"] or "run", summary)]),
             "```", "", "## Fidelity", "", _fidelity_words(summary.get("fidelity")), "",
             "## Faults", "", *_faults_section(summary), "",
             "## DNS", "",
             f"Reasons: {summary['dns'].get('reasons')}; answers by cluster: "
             f"{summary['dns'].get('answers_by_cluster')}.", "",
             "## Caches", ""]
    for cluster, figures in summary["cache"].items():
        lines.append(f"- {cluster}: {figures['requests']} requests, hit ratio "
                     f"{_text(figures['hit_ratio'])}, byte hit ratio "
                     f"{_text(figures['byte_hit_ratio'])}")
    lines += ["", "## Network", "", f"Bytes by link class: {summary['network'].get('bytes')}",
              "", "## Players by ABR algorithm", ""]
    for algo, figures in summary["players"].get("by_algo", {}).items():
        lines.append(f"- {algo}: {figures['sessions']} sessions, "
                     f"{_text(figures['avg_bitrate_kbps'])} kbit/s, rebuffer "
                     f"{figures['rebuffer_s']} s, {_text(figures['switches'])} switches, "
                     f"QoE {_text(figures['qoe'])}")
    browsers = summary["players"].get("browsers")
    if browsers:
        ended = ", ".join(f"{n} {how}" for how, n in sorted(browsers["ended_by"].items()))
        lines += ["", "## Browser viewers", "",
                  f"{browsers['sessions']} sessions of {', '.join(browsers['versions'])} "
                  f"(ABR `dashjs` above): {browsers['completed']} completed ({ended}). "
                  f"Each cost {_text(browsers['cpu_cores_mean'])} CPU cores on average and "
                  f"{_text(browsers['pss_peak_mb_mean'])} MB at its peak (PSS, max "
                  f"{_text(browsers['pss_peak_mb_max'])} MB); Chromium took "
                  f"{_text(browsers['launch_s_mean'])} s to start dash.js."]
    lines += _machines_section(run.get("placement"))
    lines += ["", "## Plots", ""]
    lines += [f"![{p.stem}](plots/{p.name})" for p in plots]
    (root / "report.md").write_text("\n".join(lines) + "\n")
    return summary


def _faults_section(summary: dict[str, Any]) -> list[str]:
    faults = summary.get("faults")
    if faults is None:
        return ["Programs were not watched in this run."]
    failures = summary["players"].get("failures_by_reason") or {}
    lines = [f"- {line}" for line in fault_lines(faults)] or [
        "No program exited unasked and no fault was injected."]
    for fault in faults["list"]:
        if fault["stderr"]:
            lines.append(f"  - {fault['program']}'s last stderr: `{fault['stderr'][-1]}`")
    if failures:
        lines += ["", "Failed sessions by reason: " + ", ".join(
            f"{reason} {n}" for reason, n in sorted(failures.items())) + "."]
    return lines


def _machines_section(placement: dict[str, Any] | None) -> list[str]:
    """A split run's placement and its tunnels (run.json), for the report."""
    if not placement:
        return []
    lines = ["", "## Machines", "", "Split with Mininet Cluster Edition; links between "
             f"machines (GRE tunnels): {', '.join(placement['crossing_links']) or 'none'}.",
             ""]
    lines += [f"- {machine}: {' '.join(nodes)}"
              for machine, nodes in placement["machines"].items()]
    for link, tunnel in (placement.get("tunnels") or {}).items():
        lines.append(f"- tunnel {link}: RTT {_text(tunnel['rtt_ms'])} ms unshaped against "
                     f"{_text(tunnel['baseline_rtt_ms'])} ms on one machine; each direction's "
                     f"delay less {_text(tunnel['compensation_ms'])} ms")
    return lines


def _fidelity_words(fidelity: dict[str, Any] | None) -> str:
    """The run's fidelity in a sentence: the RTT check, then the monitor's verdict."""
    if not fidelity:
        return "Not measured."
    rtt = {True: "RTTs as configured", False: "RTTs off their configured values",
           None: "RTTs not measured"}[fidelity.get("rtt_ok")]
    again = fidelity.get("rtt_remeasured")
    again_text = f"; {again} pair(s) measured again after a miss" if again else ""
    return f"{rtt} (max error {_text(fidelity.get('rtt_err_max_pct'))} %{again_text}); " \
        f"{fidelity.get('verdict', 'not monitored')}."
