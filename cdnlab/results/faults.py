"""The `faults` section of a run's summary: what broke during the run, who caused it, and
which sessions failed after it and why.

A fault is a program exit the program watch recorded with cause `fault` (nobody asked for
it) or `injected` (a timeline fault event ended it), or what a timeline event caused for a
while: a pause, an origin answering errors or slowly, a DNS server dropping queries, an
edge's cache disk full.
`unexplained_failures` counts the failed sessions no fault before them can explain.
Each is listed at its scenario second with its signal or exit code, the end of its stderr,
its restart under `supervise` (when it came back), and the sessions that failed from its
moment until the next fault, counted by their `failure` reason: "dns exited on SIGKILL at
20.1 s; 4 sessions failed after it: no DNS answer 4".
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from cdnlab.results.bundle import Bundle
from cdnlab.scenario.spec import PROGRAM_EVENTS, TIMED_FAULTS
from nodes.client import failures

CAUSES = ("fault", "injected")
FAULT_EVENTS = PROGRAM_EVENTS + TIMED_FAULTS
LASTING = ("pause_program", *TIMED_FAULTS)
PART_OF = {"origin": "origin", "dns": "dns"}  # programs named by the timeline's faults

# the session failures a fault on a part of the run can cause: the DNS redirector down,
# paused or dropping queries leaves resolutions unanswered; an edge down refuses or resets
# connections, times out when paused, and a cluster with no server left gets SERVFAIL; the
# origin down or failing makes edges answer 5xx on a miss (or slowly: timeouts); probes
# and resolvers feed or relay the redirector's answers
EXPLAINS: dict[str, tuple[str, ...]] = {
    "dns": (failures.NO_DNS_ANSWER, failures.TIMEOUT),
    "edges": (failures.CONNECTION_REFUSED, failures.CONNECTION_RESET, failures.TIMEOUT,
              failures.NO_DNS_ANSWER, failures.HTTP_5XX, failures.UNREACHABLE),
    "origin": (failures.HTTP_5XX, failures.TIMEOUT, failures.CONNECTION_RESET),
    "probes": (failures.NO_DNS_ANSWER,),
    "resolvers": (failures.NO_DNS_ANSWER, failures.TIMEOUT),
}


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
        restart = next((r["after_s"] for r in records if r.get("event") == "program_restart"
                        and r["program"] == exit_["program"] and r["t"] >= exit_["t"]), None)
        if restart is None and exit_.get("injected") == "stop_program":
            restart = _restarted_by_the_timeline(bundle, exit_["program"], exit_["t"] - base)
        faults.append({
            "t_s": round(exit_["t"] - base, 3), "program": exit_["program"],
            "host": exit_.get("host"), "part": exit_.get("part"), "what": "exit",
            "how": _how(exit_), "signal": exit_.get("signal"), "code": exit_.get("code"),
            "cause": "unplanned" if exit_["cause"] == "fault" else "injected",
            "injected_by": exit_.get("injected"), "stderr": exit_.get("stderr") or [],
            "restarted_after_s": restart})
    for fault in faults:
        fault["until_s"] = None
        fault["part"] = fault["part"] or PART_OF.get(fault["program"])
    faults += _lasting_faults(bundle)
    faults.sort(key=lambda f: f["t_s"])
    failed = failed_sessions(bundle)
    for fault in faults:
        fault["effect"] = _effect(bundle, fault)
    for n, fault in enumerate(faults):
        until = faults[n + 1]["t_s"] if n + 1 < len(faults) else float("inf")
        after = Counter(s["failure"] for s in failed
                        if s["t_s"] is not None and fault["t_s"] <= s["t_s"] < until)
        fault["sessions_failed_after"] = dict(after)
    applied = [e for e in bundle.engine("event_applied") if e["kind"] in FAULT_EVENTS]
    return {
        "unplanned": sum(1 for f in faults if f["cause"] == "unplanned"),
        "injected": sum(1 for f in faults if f["cause"] == "injected"),
        "events_applied": len(applied),
        "unexplained_failures": sum(1 for s in failed if not _explained(s, faults)),
        "list": faults,
    }


def _restarted_by_the_timeline(bundle: Bundle, program: str, since: float) -> float | None:
    """Seconds from a stop_program's exit until a restart_program had started it again."""
    for event in bundle.engine("event_applied"):
        done = float(event["at"]) + float(event.get("late_s") or 0) + \
            float(event.get("apply_s") or 0)
        if event["kind"] == "restart_program" and event["args"]["program"] == program \
                and done >= since:
            return round(done - since, 3)
    return None


def _lasting_faults(bundle: Bundle) -> list[dict[str, Any]]:
    """Pauses, origin faults and DNS drops: from the event's start to its end (the
    matching resume_program, or the engine's `fault_end`)."""
    base = bundle.scenario_t
    applied = bundle.engine("event_applied")
    ends = bundle.engine("fault_end")
    found = []
    for event in applied:
        kind, args = event["kind"], event.get("args") or {}
        if kind not in LASTING:
            continue
        start = round(float(event["at"]) + float(event.get("late_s") or 0), 3)
        if kind == "pause_program":
            program, how = args["program"], "paused (SIGSTOP)"
            end = next((float(e["at"]) + float(e.get("late_s") or 0) for e in applied
                        if e["kind"] == "resume_program" and e["args"]["program"] == program
                        and float(e["at"]) >= float(event["at"])), None)
        else:
            program = "origin" if kind == "origin_fault" else \
                args["edge"] if kind == "fill_cache" else "dns"
            how = ("dropped DNS over UDP" if kind == "dns_drop" else
                   "had its cache disk full" if kind == "fill_cache" else
                   f"answered HTTP {args['status']}" if "status" in args else
                   f"answered at {args['slow_kbps']} kbit/s")
            ended = next((e for e in ends if e["kind"] == kind and e.get("args") == args
                          and e["t"] - base >= start), None)
            end = ended["t"] - base if ended else None
        found.append({
            "t_s": start, "program": program, "host": args.get("edge"),
            "part": "edges" if kind == "fill_cache" else PART_OF.get(program),
            "cache_writes_failed": ended.get("cache_writes_failed")
            if kind == "fill_cache" and ended else None,
            "what": kind, "how": how, "signal": "SIGSTOP" if kind == "pause_program" else None,
            "code": None, "cause": "injected", "injected_by": kind, "stderr": [],
            "restarted_after_s": None, "until_s": None if end is None else round(end, 3)})
    return found


def _effect(bundle: Bundle, fault: dict[str, Any]) -> dict[str, int | None]:
    """What the viewers and the origin saw while the fault lasted (from its start to its
    end, its restart, or the end of the run): requests that failed, resolutions that got
    no answer (`resolver_failed`), responses of 500 or more the origin gave, and for a full
    cache disk the cache writes nginx failed (the engine's `fault_end` counts them)."""
    start = fault["t_s"]
    end = fault.get("until_s")
    if end is None and fault.get("restarted_after_s") is not None:
        end = start + fault["restarted_after_s"]
    end = float("inf") if end is None else end
    base = bundle.scenario_t
    players = [e for e in bundle.lines("*.players.jsonl") if start <= e["t"] - base < end]
    scenario_epoch = float(bundle.run.get("scenario_epoch") or 0)
    origin = [e for e in bundle.lines("origin.access.jsonl")
              if start <= float(e.get("time", 0)) - scenario_epoch < end]
    return {"requests_failed": sum(1 for e in players if e.get("event") == "request_failed"),
            "resolutions_failed": sum(1 for e in players
                                      if e.get("event") == "resolver_failed"),
            "origin_5xx": sum(1 for e in origin if int(e.get("status", 0)) >= 500),
            "cache_writes_failed": fault.pop("cache_writes_failed", None)}


def _explained(session: dict[str, Any], faults: list[dict[str, Any]]) -> bool:
    """Whether a failed session's reason is one a fault before it can cause: the faulted
    program's part says which (EXPLAINS)."""
    if session["t_s"] is None:  # never ended: the run stopped its player
        return False
    return any(f["t_s"] <= session["t_s"]
               and session["failure"] in EXPLAINS.get(f["part"] or "", ())
               for f in faults)


def fault_lines(faults: dict[str, Any] | None) -> list[str]:
    """One line per fault, for the end of `cdnlab run` and the report."""
    if not faults:
        return []
    lines = []
    for f in faults["list"]:
        what = "exited" if f["what"] == "exit" else ""
        by = f" (injected: {f['injected_by']})" if f["cause"] == "injected" else \
            " (unplanned)"
        restarted = f", restarted after {f['restarted_after_s']:g} s" \
            if f["restarted_after_s"] is not None else ""
        seen = f["effect"]
        saw = (f"; while it lasted: {seen['requests_failed']} requests failed, "
               f"{seen['resolutions_failed']} resolutions unanswered, origin 5xx "
               f"{seen['origin_5xx']}"
               + (f", cache writes failed {seen['cache_writes_failed']}"
                  if seen.get("cache_writes_failed") is not None else ""))
        failed = f["sessions_failed_after"]
        effect = (f"; {sum(failed.values())} sessions failed after it: "
                  + ", ".join(f"{reason} {n}" for reason, n in sorted(failed.items()))
                  if failed else "; no session failed after it")
        until = f" until {f['until_s']:.1f} s" if f.get("until_s") is not None else ""
        lines.append(f"{f['program']} {what + ' ' if what else ''}{f['how']} at "
                     f"{f['t_s']:.1f} s{until}{by}{restarted}{saw}{effect}")
    return lines
