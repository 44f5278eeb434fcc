"""`cdnlab bench scale`: how many viewers playing at once this machine emulates faithfully.

`youtube_pull` (two ISPs, three clusters) runs again and again with more viewers playing at
once (a closed-loop workload split over both ISPs, arriving within 2 s, 20 s of playing),
doubling from 2 until the run's own fidelity verdict (`cdnlab.measure.verdict`) finds an
invariant broken. The baseline is the first step, measured in the same run: each row says
its CPU, timer lateness and QoE beside it. `--quick` stops at 32 viewers and plays 12 s.
A step the host alone broke (`cdnlab.measure.verdict.limited_by_host`: the hypervisor took
the CPU time or ran the CPUs late, which comes and goes with its other guests) is measured
again, up to `HOST_ATTEMPTS` times in all, and its row says how many (`attempts`).
The last line: `scale: viewers_max=<n> backend=<name> limit=<invariant>` — the most
viewers judged faithful, and what broke first above it (`rtt_check` when only the RTTs
measured at the end were wrong, `none` if nothing broke).
`--keep DIR` keeps each step's results bundle (`DIR/viewers-<n>`, a step measured again in
`DIR/attempt-<k>/viewers-<n>`) to read why a step broke; otherwise they go with the run.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cdnlab.measure.verdict import HOST_ATTEMPTS, limited_by_host
from cdnlab.results.report import write_report
from cdnlab.scenario.runner import Run
from cdnlab.scenario.spec import load_scenario

SCENARIO = "youtube_pull"


def step(viewers: int, play_s: float, shaping: str, cpu_awake: str,
         out: Path) -> dict[str, Any]:
    """One run with `viewers` playing at once; its figures."""
    half = viewers // 2
    overrides = {"workload.viewers": {"isp_a": viewers - half, "isp_b": half},
                 "workload.closed_loop": True, "workload.segments": 5,
                 "workload.max_buffer_s": 6,
                 "workload.arrival": {"process": "uniform", "start_s": 1, "window_s": 2},
                 "duration_s": play_s, "timeline": []}
    bundle = out / f"viewers-{viewers}"
    Run(load_scenario(SCENARIO, overrides), bundle, tty=False, cpu_awake=cpu_awake,
        shaping=shaping).execute()
    summary = write_report(bundle)
    fidelity, players = summary["fidelity"] or {}, summary["players"]
    monitor = fidelity.get("monitor") or {}
    return {"viewers": viewers, "playing_peak": players["concurrent_peak"],
            "ok": fidelity.get("ok"), "backend": fidelity.get("backend"),
            "limit": limit_of(fidelity),
            "host_only": limited_by_host(fidelity),
            "cpu_busy_max": monitor.get("cpu_busy_mean_max"),
            "wake_p99_us_max": monitor.get("wake_p99_us_max"),
            "qoe_per_s": players["qoe_per_s_mean"],
            "rebuffer_s": players["rebuffer_s_total"],
            "completed": f"{players['completed']}/{players['sessions']}"}


def limit_of(fidelity: dict[str, Any]) -> str | None:
    """What broke a step: its first violated invariant, or `rtt_check` when the only fault
    was the end-of-run RTT check (`cdnlab.measure.fidelity`); None when nothing did."""
    violations = fidelity.get("violations") or []
    if violations:
        return str(violations[0]["invariant"])
    return "rtt_check" if fidelity.get("rtt_ok") is False else None


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


@contextlib.contextmanager
def _steps_dir(keep: Path | None) -> Iterator[Path]:
    """Where the steps' bundles go: `keep`, or a scratch directory removed afterwards."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="cdnlab-scale-") as scratch:
            yield Path(scratch)
        return
    yield keep


def check_keep(keep: Path) -> None:
    """Refuse a `--keep` directory that already holds files (a step's bundle would be
    mixed with, or written over, an earlier run's)."""
    if keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
        raise ValueError(f"--keep {keep}: exists and is not an empty directory; "
                         "name a new directory (it is created)")


def run(quick: bool, shaping: str, cpu_awake: str, most: int | None = None,
        keep: Path | None = None) -> int:
    """`most`: stop after this many viewers (the steps double from 2); `keep`: where the
    steps' bundles are kept (see the module's docstring)."""
    if keep is not None:
        check_keep(keep)
        keep.mkdir(parents=True, exist_ok=True)
    largest, play_s = (32, 12.0) if quick else (256, 20.0)
    largest = min(largest, most) if most else largest
    rows: list[dict[str, Any]] = []
    columns = ("viewers", "playing_peak", "ok", "cpu_busy_max", "wake_p99_us_max",
               "qoe_per_s", "rebuffer_s", "completed", "attempts")
    print(f"scale: {SCENARIO}, closed loop, {play_s:g} s of playing per step; "
          "baseline: the first step")
    print("".join(f"{c:>16}" for c in columns))
    with _steps_dir(keep) as scratch:
        viewers = 2
        while viewers <= largest:
            row = step(viewers, play_s, shaping, cpu_awake, scratch) | {"attempts": 1}
            while row["host_only"] and row["attempts"] < HOST_ATTEMPTS:
                print(f"scale: {viewers} viewers again: the host alone broke the step "
                      f"({row['limit']})", flush=True)
                again = row["attempts"] + 1
                row = step(viewers, play_s, shaping, cpu_awake,
                           scratch / f"attempt-{again}") | {"attempts": again}
            rows.append(row)
            print("".join(f"{_cell(row[c]):>16}" for c in columns), flush=True)
            if not row["ok"]:
                break
            viewers *= 2
    faithful = [r["viewers"] for r in rows if r["ok"]]
    broken = next((r for r in rows if not r["ok"]), None)
    base = rows[0]
    if base["qoe_per_s"] and rows[-1]["qoe_per_s"] is not None:
        print(f"scale: QoE per media second {rows[-1]['qoe_per_s']:.3g} at "
              f"{rows[-1]['viewers']} viewers against {base['qoe_per_s']:.3g} at "
              f"{base['viewers']} (baseline)")
    print(f"scale: viewers_max={max(faithful) if faithful else 0} "
          f"backend={base['backend']} limit={broken['limit'] if broken else 'none'}")
    if keep is not None:
        print(f"scale: each step's bundle is in {keep}")
    return 0
