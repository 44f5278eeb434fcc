"""The report's plots (PNG, matplotlib's Agg backend), each from the bundle alone:
bitrate and buffer over time per viewer, the cluster DNS chose over time, the true RTT
matrix, hit ratio over time per cluster, link utilisation by class, and the run monitor's
invariants with the fidelity verdict's violations."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from cdnlab.measure import verdict
from cdnlab.results.bundle import Bundle

MAX_VIEWERS = 24


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def viewers(bundle: Bundle, out: Path) -> list[Path]:
    by_session: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in bundle.lines("*.players.jsonl"):
        if event.get("event") == "segment":
            by_session[event["session"]].append(event)
    if not by_session:
        return []
    offset = bundle.scenario_t
    made = []
    for field, label, name in (("bitrate_kbps", "bitrate (kbit/s)", "bitrate.png"),
                               ("buffer_s", "buffer (s)", "buffer.png")):
        figure, axes = plt.subplots(figsize=(9, 4))
        for session, segments in sorted(by_session.items())[:MAX_VIEWERS]:
            axes.step([s["t"] - offset for s in segments], [s[field] for s in segments],
                      where="post", label=session, linewidth=1)
        axes.set_xlabel("scenario time (s)")
        axes.set_ylabel(label)
        axes.set_title(f"{label.split(' (')[0]} per viewer"
                       + (f" (first {MAX_VIEWERS})" if len(by_session) > MAX_VIEWERS else ""))
        if len(by_session) <= 8:
            axes.legend(fontsize=7)
        made.append(_save(figure, out / name))
    return made


def clusters_over_time(bundle: Bundle, out: Path) -> list[Path]:
    answers = [a for a in bundle.lines("dns.decisions.jsonl") if a.get("cluster")]
    if not answers:
        return []
    names = sorted({a["cluster"] for a in answers})
    figure, axes = plt.subplots(figsize=(9, 3.5))
    for reason in sorted({a["reason"] for a in answers}):
        mine = [a for a in answers if a["reason"] == reason]
        axes.scatter([a["t"] - bundle.scenario_t for a in mine],
                     [names.index(a["cluster"]) for a in mine], s=8, label=reason)
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("scenario time (s)")
    axes.set_title("cluster chosen by DNS, by reason")
    axes.legend(fontsize=7)
    return [_save(figure, out / "clusters.png")]


def rtt_matrix(bundle: Bundle, out: Path) -> list[Path]:
    matrices = bundle.engine("rtt_matrix")
    if not matrices:
        return []
    matrix = matrices[0]["matrix"]
    clients = sorted(matrix)
    clusters = sorted(next(iter(matrix.values())))
    values = [[matrix[c][k] for k in clusters] for c in clients]
    figure, axes = plt.subplots(figsize=(1.6 + 1.1 * len(clusters), 1 + 0.4 * len(clients)))
    image = axes.imshow(values, cmap="viridis_r")
    axes.set_xticks(range(len(clusters)), clusters)
    axes.set_yticks(range(len(clients)), clients)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            axes.text(j, i, f"{value:.0f}", ha="center", va="center", color="white",
                      fontsize=8)
    figure.colorbar(image, label="RTT (ms)")
    axes.set_title("true RTT, client → cluster (ms)")
    return [_save(figure, out / "rtt_matrix.png")]


def hit_ratio(bundle: Bundle, out: Path) -> list[Path]:
    loads = [e for e in bundle.lines("*.jsonl") if e.get("event") == "load"
             and e.get("hit_ratio_total") is not None]
    if not loads:
        return []
    figure, axes = plt.subplots(figsize=(9, 3.5))
    by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in loads:
        by_node[event["node"]].append(event)
    for node, events in sorted(by_node.items()):
        axes.plot([e["t"] - bundle.scenario_t for e in events],
                  [e["hit_ratio_total"] for e in events], label=node)
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("scenario time (s)")
    axes.set_ylabel("hit ratio since start")
    axes.legend(fontsize=7)
    return [_save(figure, out / "hit_ratio.png")]


def utilisation(bundle: Bundle, out: Path) -> list[Path]:
    samples = [e for e in bundle.engine("link_bytes") if "mbps_by_class" in e]
    if not samples:
        return []
    figure, axes = plt.subplots(figsize=(9, 3.5))
    for klass in sorted({k for s in samples for k in s["mbps_by_class"]}):
        axes.plot([s["t"] - bundle.scenario_t for s in samples],
                  [s["mbps_by_class"].get(klass, 0.0) for s in samples], label=klass)
    axes.set_xlabel("scenario time (s)")
    axes.set_ylabel("Mbit/s (all links of the class)")
    axes.legend(fontsize=7)
    return [_save(figure, out / "utilisation.png")]


def fidelity_over_time(bundle: Bundle, out: Path) -> list[Path]:
    """The run monitor's samples (CPU busy, the run's own share, timer lateness) on the
    scenario's time axis, with the verdict's limits, its violations shaded and the
    timeline's events marked."""
    samples = [e for e in bundle.lines("fidelity.jsonl") if e.get("event") == "sample"]
    if not samples:
        return []
    times = [s["t"] - bundle.scenario_t for s in samples]
    figure, (cpu, late) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    cpu.plot(times, [s["cpu_busy_mean"] for s in samples], label="CPU busy (mean of cores)")
    cpu.plot(times, [s["run_cpu_share"] for s in samples], label="the run's own share")
    cpu.axhline(verdict.CPU_BUSY_LIMIT, color="red", linestyle=":", linewidth=1,
                label="saturation limit")
    cpu.set_ylim(0, 1.05)
    cpu.set_ylabel("share of all CPUs")
    late.plot(times, [s["wake_p99_us"] / 1000 for s in samples], label="wake-up p99")
    late.axhline(verdict.WAKE_P99_LIMIT_US / 1000, color="red", linestyle=":", linewidth=1,
                 label="limit")
    late.set_ylabel("timer lateness (ms)")
    late.set_xlabel("scenario time (s)")
    violations = verdict.judge(samples, [e for e in bundle.lines("*.jsonl")
                                         if e.get("event") == "queue_stats"],
                               bundle.engine("event_applied"), bundle.scenario_t)
    for axes in (cpu, late):
        for violation in violations:
            axes.axvspan(violation.from_s, violation.to_s, color="red", alpha=0.12)
        for event in bundle.engine("event_applied"):
            axes.axvline(event["at"], color="grey", linestyle="--", linewidth=0.8)
        axes.legend(fontsize=7, loc="upper right")
    cpu.set_title("emulator invariants (shaded: violations; dashed: timeline events)")
    return [_save(figure, out / "fidelity.png")]


def make_plots(root: Path) -> list[Path]:
    bundle = Bundle(root)
    out = root / "plots"
    out.mkdir(exist_ok=True)
    made: list[Path] = []
    for plot in (viewers, clusters_over_time, rtt_matrix, hit_ratio, utilisation,
                 fidelity_over_time):
        made += plot(bundle, out)
    return made
