"""The report's plots (PNG, matplotlib's Agg backend), each from the bundle alone:
bitrate and buffer over time per viewer (a panel per ISP, colour by ABR algorithm), the
cluster DNS chose over time, the true RTT matrix (again after every change to it), hit
ratio over time per edge server (colour by cluster), link utilisation by class, and the
run monitor's invariants with the fidelity verdict's violations. Every time plot marks
the timeline's events."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from cdnlab.measure import verdict
from cdnlab.net.cgroup import PARTS
from cdnlab.results.bundle import Bundle
from cdnlab.results.faults import faults_summary
from cdnlab.results.routing import bgp_changes
from cdnlab.results.summary import violations_of

MAX_VIEWERS = 24


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def mark_events(axes: Any, bundle: Bundle, label: bool = True) -> None:
    """The timeline's applied events as dashed grey lines and the run's faults (program
    exits and pauses, `cdnlab.results.faults`) as solid red ones, named at the top; on a
    BGP topology each change's convergence, from its start to its last route change, as a
    purple band."""
    for change in bgp_changes(bundle) if bundle.run.get("bgp") else []:
        seconds = change["convergence_s"] or 0.0
        axes.axvspan(change["at_s"], change["at_s"] + max(seconds, 0.05), color="purple",
                     alpha=0.18, linewidth=0)
        if label:
            axes.annotate(f"BGP {seconds:.1f} s", (change["at_s"] + seconds, 0.0),
                          xycoords=("data", "axes fraction"), xytext=(2, 2),
                          textcoords="offset points", fontsize=6, rotation=90,
                          va="bottom", color="purple")
    marks = [(float(e["at"]), str(e["kind"]), "grey", "--")
             for e in bundle.engine("event_applied")]
    faults = faults_summary(bundle)
    marks += [(float(f["t_s"]), f"{f['program']} {f['how']}", "red", "-")
              for f in (faults or {}).get("list", [])]
    for at, name, colour, style in marks:
        axes.axvline(at, color=colour, linestyle=style, linewidth=0.8)
        if label:
            axes.annotate(name, (at, 1.0), xycoords=("data", "axes fraction"),
                          xytext=(2, -2), textcoords="offset points", fontsize=6,
                          rotation=90, va="top", color=colour)


def viewers(bundle: Bundle, out: Path) -> list[Path]:
    """Bitrate and buffer per viewer, one panel per ISP (small multiples), each line
    coloured by its ABR algorithm (the legend names them), timeline events marked."""
    by_session: dict[str, list[dict[str, Any]]] = defaultdict(list)
    algo: dict[str, str] = {}
    for event in bundle.lines("*.players.jsonl"):
        if event.get("event") == "segment":
            by_session[event["session"]].append(event)
        elif event.get("event") == "session_start":
            algo[event["session"]] = event.get("algo", "?")
    if not by_session:
        return []
    isp_of = bundle.run.get("isp_of") or {}
    groups: dict[str, list[str]] = defaultdict(list)
    for session, segments in sorted(by_session.items()):
        node = segments[0].get("node", "?")
        groups[isp_of.get(node) or node].append(session)
    algos = sorted(set(algo.values()) | {"?"})
    colours = {a: plt.get_cmap("tab10")(n % 10) for n, a in enumerate(algos)}
    made = []
    for field, label, name in (("bitrate_kbps", "bitrate (kbit/s)", "bitrate.png"),
                               ("buffer_s", "buffer (s)", "buffer.png")):
        figure, panels = plt.subplots(len(groups), 1, figsize=(9, 1.2 + 2.2 * len(groups)),
                                      sharex=True, squeeze=False)
        for axes, (group, sessions) in zip(panels[:, 0], sorted(groups.items()), strict=True):
            for session in sessions[:MAX_VIEWERS]:
                segments = by_session[session]
                axes.step([s["t"] - bundle.scenario_t for s in segments],
                          [s[field] for s in segments], where="post", linewidth=1,
                          color=colours[algo.get(session, "?")], alpha=0.8)
            mark_events(axes, bundle)
            shown = min(len(sessions), MAX_VIEWERS)
            axes.set_title(f"{group}: {shown} viewer{'s' if shown != 1 else ''}"
                           + (f" of {len(sessions)}" if len(sessions) > shown else ""),
                           fontsize=9)
            axes.set_ylabel(label)
        handles = [plt.Line2D([], [], color=colours[a], label=a)
                   for a in algos if a in algo.values()]
        panels[0, 0].legend(handles=handles, fontsize=7, title="ABR", title_fontsize=7,
                            loc="upper right")
        panels[-1, 0].set_xlabel("scenario time (s)")
        made.append(_save(figure, out / name))
    return made


def clusters_over_time(bundle: Bundle, out: Path) -> list[Path]:
    answers = [a for a in bundle.lines("dns.decisions.jsonl")
               if a.get("event") == "answer" and a.get("cluster")]
    if not answers:
        return []
    names = sorted({a["cluster"] for a in answers})
    figure, axes = plt.subplots(figsize=(9, 1.5 + 0.45 * len(names)))
    for reason in sorted({a["reason"] for a in answers}):
        mine = [a for a in answers if a["reason"] == reason]
        axes.scatter([a["t"] - bundle.scenario_t for a in mine],
                     [names.index(a["cluster"]) for a in mine], s=8, label=reason)
    mark_events(axes, bundle)
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("scenario time (s)")
    axes.set_title("cluster chosen by DNS, by reason")
    axes.legend(fontsize=7)
    return [_save(figure, out / "clusters.png")]


def rtt_matrix(bundle: Bundle, out: Path) -> list[Path]:
    """The true RTT matrix at the start and after every change the timeline made to the
    network: `rtt_matrix.png`, then `rtt_matrix-2.png`… for each one that differs."""
    matrices = bundle.engine("rtt_matrix")
    made: list[Path] = []
    previous = None
    for event in matrices:
        matrix = event["matrix"]
        if matrix == previous:
            continue
        previous = matrix
        clients = sorted(matrix)
        clusters = sorted(next(iter(matrix.values())))
        values = [[matrix[c][k] for k in clusters] for c in clients]
        figure, axes = plt.subplots(figsize=(2.5 + 0.9 * len(clusters),
                                             1.6 + 0.35 * len(clients)))
        image = axes.imshow(values, cmap="viridis_r", aspect="auto")
        axes.set_xticks(range(len(clusters)), clusters, rotation=30, ha="right")
        axes.set_yticks(range(len(clients)), clients)
        middle = (max(map(max, values)) + min(map(min, values))) / 2
        for i, row in enumerate(values):
            for j, value in enumerate(row):
                axes.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8,
                          color="white" if value > middle else "black")
        figure.colorbar(image, label="RTT (ms)")
        when = event["t"] - bundle.scenario_t
        axes.set_title("true RTT, client → cluster (ms)"
                       + (f", from {when:.0f} s" if made else ", at the start"), fontsize=9)
        made.append(_save(figure, out / ("rtt_matrix.png" if not made
                                         else f"rtt_matrix-{len(made) + 1}.png")))
    return made


def hit_ratio(bundle: Bundle, out: Path) -> list[Path]:
    """Hit ratio over time per edge server: one colour per cluster, one line style per
    server in it."""
    loads = [e for e in bundle.lines("*.jsonl") if e.get("event") == "load"
             and e.get("hit_ratio_total") is not None]
    if not loads:
        return []
    figure, axes = plt.subplots(figsize=(9, 3.5))
    by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in loads:
        by_node[event["node"]].append(event)
    clusters = sorted({events[0].get("cluster") or node for node, events in by_node.items()})
    styles = ("-", "--", ":", "-.")
    seen: dict[str, int] = defaultdict(int)
    for node, events in sorted(by_node.items()):
        cluster = events[0].get("cluster") or node
        axes.plot([e["t"] - bundle.scenario_t for e in events],
                  [e["hit_ratio_total"] for e in events], label=node,
                  color=plt.get_cmap("tab10")(clusters.index(cluster) % 10),
                  linestyle=styles[seen[cluster] % len(styles)])
        seen[cluster] += 1
    mark_events(axes, bundle)
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("scenario time (s)")
    axes.set_ylabel("hit ratio since start")
    axes.legend(fontsize=7, ncol=max(1, len(by_node) // 4))
    return [_save(figure, out / "hit_ratio.png")]


def utilisation(bundle: Bundle, out: Path) -> list[Path]:
    samples = [e for e in bundle.engine("link_bytes") if "mbps_by_class" in e]
    if not samples:
        return []
    figure, axes = plt.subplots(figsize=(9, 3.5))
    for klass in sorted({k for s in samples for k in s["mbps_by_class"]}):
        axes.plot([s["t"] - bundle.scenario_t for s in samples],
                  [s["mbps_by_class"].get(klass, 0.0) for s in samples], label=klass)
    mark_events(axes, bundle)
    axes.set_xlabel("scenario time (s)")
    axes.set_ylabel("Mbit/s (all links of the class)")
    axes.legend(fontsize=7)
    return [_save(figure, out / "utilisation.png")]


def fidelity_over_time(bundle: Bundle, out: Path) -> list[Path]:
    """The run monitor's samples (CPU busy, the run's own share, where that CPU went by
    part, timer lateness) on the scenario's time axis, with the verdict's limits, its
    violations shaded and the timeline's events marked."""
    samples = [e for e in bundle.lines("fidelity.jsonl") if e.get("event") == "sample"]
    if not samples:
        return []
    times = [s["t"] - bundle.scenario_t for s in samples]
    with_queues = any(s.get("queues") for s in samples)
    with_parts = any(s.get("cpu_by_part") for s in samples)
    rows = 2 + with_queues + with_parts
    figure, panels = plt.subplots(rows, 1, sharex=True, figsize=(9, 2.5 + 2.25 * rows))
    cpu, late = panels[0], panels[1 + with_parts]
    if with_parts:
        _parts_panel(panels[1], samples, times)
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
    if with_queues:
        _queue_panel(panels[-1], samples, times)
    panels[-1].set_xlabel("scenario time (s)")
    violations = violations_of(bundle)
    for axes in panels:
        for violation in violations:
            axes.axvspan(violation.from_s, violation.to_s, color="red", alpha=0.12)
        mark_events(axes, bundle, label=axes is cpu)
        axes.legend(fontsize=7, loc="upper right")
    cpu.set_title("emulator invariants (shaded: violations; dashed: timeline events)")
    return [_save(figure, out / "fidelity.png")]


def _parts_panel(axes: Any, samples: list[dict[str, Any]], times: list[float]) -> None:
    """The run's CPU by part (its child cgroups, `cdnlab.net.cgroup.PARTS`), stacked, as
    shares of all cores."""
    parts = [p for p in PARTS if any((s.get("cpu_by_part") or {}).get(p) for s in samples)]
    axes.stackplot(times, *[[(s.get("cpu_by_part") or {}).get(p, 0.0) for s in samples]
                            for p in parts], labels=[PARTS[p] for p in parts], alpha=0.8)
    axes.axhline(verdict.CPU_BUSY_LIMIT, color="red", linestyle=":", linewidth=1)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("the run's CPU by part")


def _queue_panel(axes: Any, samples: list[dict[str, Any]], times: list[float]) -> None:
    """The shaped links' kernel queues: the largest share of its told rate that a queue
    backlogged at both ends of the interval did not send (what `rate_short` judges), and
    the drops of all of them."""
    worst: dict[float, float] = {}
    for points in verdict.shortfalls(samples).values():
        for t, short in points:
            worst[t] = max(worst.get(t, 0.0), short)
    axes.plot(times, [worst.get(s["t"], 0.0) for s in samples],
              label="largest shortfall of a backlogged queue")
    axes.axhline(verdict.RATE_SHORT_LIMIT, color="red", linestyle=":", linewidth=1,
                 label="limit")
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("share of told rate unsent")
    drops = axes.twinx()
    counts = [sum(q["drops"] for q in s.get("queues", {}).values()) for s in samples]
    drops.bar(times, counts, width=0.6, alpha=0.3, color="grey", label="queue drops")
    drops.set_ylim(0, max([*counts, 1]) * 1.1)
    drops.set_ylabel("queue drops a second")


def make_plots(root: Path) -> list[Path]:
    bundle = Bundle(root)
    out = root / "plots"
    out.mkdir(exist_ok=True)
    made: list[Path] = []
    for plot in (viewers, clusters_over_time, rtt_matrix, hit_ratio, utilisation,
                 fidelity_over_time):
        made += plot(bundle, out)
    return made
