"""The `faults` section of a run's summary: what broke during the run, who caused it, and
which sessions failed after it and why.

A fault is a program exit the program watch recorded with cause `fault` (nobody asked for
it) or `injected` (a timeline fault event ended it), or a pause a timeline event caused.
Each is listed at its scenario second with its signal or exit code, the end of its stderr,
its restart under `supervise` (when it came back), and the sessions that failed from its
moment until the next fault, counted by their `failure` reason: "dns exited on SIGKILL at
20.1 s; 4 sessions failed after it: no DNS answer 4".
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from cdnlab.results.bundle import Bundle
from cdnlab.scenario.spec import PROGRAM_EVENTS

CAUSES = ("fault", "injected")


def failed_sessions(bundle: Bundle) -> list[dict[str, Any]]:
    """Every session that did not complete, with its `failure` reason and the scenario
    second it ended at; a session that started and never ended counts as `did not end`."""
    events = bundle.lines("*.players.jsonl")
    ended = {e["session"] for e in events if e.get("event") == "session_end"}
    failed = [{"session": e["session"], "t_s": e["t"] - bundle.scenario_t,
               "failure": e.get("failure") or "other", "error": e.get("error")}
              for e in events if e.get("event") == "session_end" and not e.get("completed")]
    failed += [{"session": e["session"], "t_s": None, "failure": "did not end", "error": None}
               for e in events if e.get("event") == "session_start"
               and e["session"] not in ended]
    return failed


def _how(record: dict[str, Any]) -> str:
    if record.get("signal"):
        return f"on {record['signal']}"
    if record.get("code") is not None:
        return f"with code {record['code']}"
    return "(status unknown)"


def faults_summary(bundle: Bundle) -> dict[str, Any] | None:
    """None for a bundle without the program watch's log (not watched: not measured)."""
    if not (bundle.events_dir / "programs.jsonl").exists():
        return None
    base = bundle.scenario_t
    records = bundle.lines("programs.jsonl")
    faults: list[dict[str, Any]] = []
    for exit_ in (r for r in records if r.get("event") == "program_exit"
                  and r.get("cause") in CAUSES):
        restart = next((r for r in records if r.get("event") == "program_restart"
                        and r["program"] == exit_["program"] and r["t"] >= exit_["t"]), None)
        faults.append({
            "t_s": round(exit_["t"] - base, 3), "program": exit_["program"],
            "host": exit_.get("host"), "part": exit_.get("part"), "what": "exit",
            "how": _how(exit_), "signal": exit_.get("signal"), "code": exit_.get("code"),
            "cause": "unplanned" if exit_["cause"] == "fault" else "injected",
            "injected_by": exit_.get("injected"), "stderr": exit_.get("stderr") or [],
            "restarted_after_s": restart["after_s"] if restart else None})
    for applied in bundle.engine("event_applied"):
        if applied["kind"] == "pause_program":
            faults.append({
                "t_s": round(float(applied["at"]) + float(applied.get("late_s") or 0), 3),
                "program": applied["args"]["program"], "host": None, "part": None,
                "what": "pause", "how": "on SIGSTOP", "signal": "SIGSTOP", "code": None,
                "cause": "injected", "injected_by": "pause_program", "stderr": [],
                "restarted_after_s": None})
    faults.sort(key=lambda f: f["t_s"])
    failed = failed_sessions(bundle)
    for n, fault in enumerate(faults):
        until = faults[n + 1]["t_s"] if n + 1 < len(faults) else float("inf")
        after = Counter(s["failure"] for s in failed
                        if s["t_s"] is not None and fault["t_s"] <= s["t_s"] < until)
        fault["sessions_failed_after"] = dict(after)
    injected_events = [e for e in bundle.engine("event_applied") if e["kind"] in PROGRAM_EVENTS]
    return {
        "unplanned": sum(1 for f in faults if f["cause"] == "unplanned"),
        "injected": sum(1 for f in faults if f["cause"] == "injected"),
        "events_applied": len(injected_events),
        "list": faults,
    }


def fault_lines(faults: dict[str, Any] | None) -> list[str]:
    """One line per fault, for the end of `cdnlab run` and the report."""
    if not faults:
        return []
    lines = []
    for f in faults["list"]:
        what = "paused" if f["what"] == "pause" else "exited"
        by = f" (injected: {f['injected_by']})" if f["cause"] == "injected" else \
            " (unplanned)"
        restarted = f", restarted after {f['restarted_after_s']:g} s" \
            if f["restarted_after_s"] is not None else ""
        failed = f["sessions_failed_after"]
        effect = (f"; {sum(failed.values())} sessions failed after it: "
                  + ", ".join(f"{reason} {n}" for reason, n in sorted(failed.items()))
                  if failed else "; no session failed after it")
        lines.append(f"{f['program']} {what} {f['how']} at {f['t_s']:.1f} s{by}{restarted}"
                     f"{effect}")
    return lines
