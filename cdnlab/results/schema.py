"""summary.json, every field: its type and what it means, in one place. `problems(summary)`
checks a summary against it (a key neither documented nor allowed, a documented key
missing, a value of the wrong type), so the document and the code cannot drift apart; a
test runs it on real runs' summaries.

Notation: a key ending in `?` may be absent; `*` stands for names the run chooses
(clusters, ISPs, resolvers, algorithms, reasons); `Maybe(x)` is x or null (null: not
measured, or not applicable to this run); `[x]` is a list of x.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NUM = (int, float)


@dataclass(frozen=True)
class Maybe:
    inner: Any


def f(kind: Any, meaning: str) -> tuple[Any, str]:
    return (kind, meaning)


SPREAD = {"requests": f(int, "requests the edge logs record (hits and misses)"),
          "hit_ratio": f(Maybe(NUM), "requests served from cache / requests"),
          "byte_hit_ratio": f(Maybe(NUM), "bytes served from cache / bytes"),
          "bytes": f(int, "bytes served")}
SESSION = {k: f(Any, "a session's metrics, as nodes/client/qoe.py defines them")
           for k in ("node", "segments", "startup_s", "rebuffer_count", "rebuffer_s",
                     "avg_bitrate_kbps", "switches", "switch_kbps_mean", "qoe",
                     "qoe_per_segment", "qoe_per_s", "rebuffer_penalty", "session", "title",
                     "algo", "completed", "error", "stalls_by_track", "wall_s")}
SESSION["failure?"] = f(Maybe(str), "why a session failed, one of nodes/client/failures.py "
                                    "REASONS (null when it completed)")
SESSION |= {f"{k}?": f(Any, "a browser viewer's own, as nodes/browser/records.py and "
                           "__main__.py define them")
            for k in ("player", "ended_by", "downloads", "browser", "dashjs", "launch_s",
                      "usage", "driver_exit")}
BROWSERS = Maybe({
    "sessions": f(int, "browser viewers' sessions (dash.js in headless Chromium)"),
    "completed": f(int, "of them, those that ended with dash.js's end event (or played "
                        "their segment count)"),
    "ended_by": {"*": f(int, "sessions by how they ended: ended (dash.js's PLAYBACK_ENDED), "
                             "limit_reached, error, driver_error")},
    "launch_s_mean": f(Maybe(NUM), "mean seconds from starting Chromium to dash.js running"),
    "cpu_cores_mean": f(Maybe(NUM), "mean over viewers of each one's CPU time / wall time "
                                    "(its whole process tree)"),
    "pss_peak_mb_mean": f(Maybe(NUM), "mean over viewers of each one's peak proportional "
                                      "set size, MB"),
    "pss_peak_mb_max": f(Maybe(NUM), "the largest of them"),
    "versions": [f(str, "Chromium and dash.js versions seen")],
})
RESOLVER = {k: f(Any, "see cdnlab/results/resolvers.py") for k in (
    "kind", "ecs", "address", "clients", "fallback", "resolutions", "redirector_queries",
    "queries", "cache_hits", "cache_hit_ratio", "ecs_queries")}
BOUNDARIES = Maybe({
    "origin_egress?": f(int, "bytes leaving the origin host"),
    "transit_out?": f(int, "bytes leaving the transit network (routers of role transit or "
                           "cloud) toward anything but the origin"),
    "ixp_in?": f(int, "bytes entering the IXP fabric from its members"),
    "access_down?": f(int, "bytes delivered to client hosts over their access links"),
    "access_up?": f(int, "bytes client hosts sent"),
    "into_isp": {"*": f(int, "bytes entering the ISP router from the IXP, transit or "
                             "another ISP")},
})
VIOLATION = {"invariant": f(str, "cpu_saturated, host_steal, timer_late, host_late, "
                                 "delay_late, kernel_drops, rate_short, event_late or "
                                 "probe_loss (cdnlab/measure/verdict.py)"),
             "where": f(Maybe(str), "a delay queue, an event kind or a probing cluster"),
             "from_s": f(NUM, "scenario second it began"), "to_s": f(NUM, "and ended"),
             "worst": f(NUM, "the worst value"), "limit": f(NUM, "the limit"),
             "unit": f(str, "of worst and limit"),
             "parts?": f(Maybe(dict), "cpu_saturated: the parts that took most of the run's "
                                      "CPU in that window, part → share of it")}

SCHEMA: dict[str, Any] = {
    "scenario": f(Maybe(str), "the scenario's name"),
    "seed": f(Maybe(int), "the seed every random choice came from"),
    "interrupted": f(Maybe(str), "why the run stopped early (interrupted, timed out, a "
                                 "failure), or null"),
    "mode": f(str, "pull or push (the CDN's default mode)"),
    "dns": {
        "answers": f(int, "answers the redirector gave for the service name"),
        "judged?": f(int, "answers whose querier (or client subnet) is a client host, "
                          "judged against its true RTTs"),
        "lowest_rtt_share?": f(Maybe(NUM), "judged answers naming the cluster with the lowest "
                                           "true RTT among the clusters up"),
        "spill_share?": f(Maybe(NUM), "answers the spill controller sent elsewhere"),
        "extra_rtt_ms_mean?": f(Maybe(NUM), "true RTT above the lowest, over the answers "
                                            "that were not the lowest"),
        "not_lowest?": f(int, "judged answers that were not the lowest"),
        "reasons?": {"*": f(int, "answers per policy reason")},
        "answers_by_cluster?": {"*": f(int, "answers per cluster")},
        "resolvers?": {"*": RESOLVER},
        "lowest_rtt_share_by_resolver?": {"*": f(Maybe(NUM), "players' resolutions through "
                                                             "the resolver naming the "
                                                             "viewer's lowest-RTT cluster")},
        "resolver_failovers?": f(int, "nameservers players' stub resolvers gave up on"),
    },
    "cache": {"*": SPREAD},
    "network": {
        "bytes": {"*": f(int, "per link class, every link of the class, both directions "
                              "(a byte crossing two links of a class counts twice)")},
        "bytes_viewing?": {"*": f(int, "the same from the first arrival on")},
        "boundaries?": BOUNDARIES,
        "boundaries_viewing?": BOUNDARIES,
        "seconds?": f(NUM, "the span the link counters covered"),
    },
    "origin": {
        "bytes_by_cluster": {"*": f(int, "bytes the origin served (its access log), by the "
                                         "cluster that asked; `clients` for viewers sent "
                                         "there directly")},
        "bytes_viewing_by_cluster": {"*": f(int, "the same from the first arrival on")},
    },
    "fill": Maybe({
        "bytes": f(int, "bytes the fill agents pushed"),
        "rate_mbps": f(Maybe(NUM), "mean paced rate per cluster, the agents' own count"),
        "cap_mbps": f(NUM, "the configured cap per cluster"),
        "complete": f(bool, "every cluster received every title"),
        "titles": {"*": f(int, "titles pushed to the cluster")},
        "wire_mbps_by_cluster": {"*": f(Maybe(NUM), "the fill's rate into each cluster on "
                                                    "the wire (kernel counters of its "
                                                    "uplinks, headers included)")},
        "in_window": f(bool, "the fill began and ended inside its window"),
    }),
    "modes": Maybe({"*": f(str, "each cluster's mode")}),
    "players": {
        "sessions": f(int, "sessions that ended"),
        "completed": f(int, "of them, those that played to the end"),
        "concurrent_peak": f(Maybe(int), "sessions playing at once, the peak"),
        "concurrent_mean": f(Maybe(NUM), "and the mean from the first start to the last end"),
        "qoe_mean": f(Maybe(NUM), "mean QoE (per segment sum, MPC/Pensieve's linear form)"),
        "qoe_per_s_mean": f(Maybe(NUM), "mean QoE per media second"),
        "startup_s_mean": f(Maybe(NUM), "mean time to the first frame"),
        "rebuffer_s_total": f(NUM, "stall seconds after playback began, all sessions"),
        "rebuffer_count_total": f(int, "stalls, all sessions"),
        "stalls_by_track": {"*": f(int, "stalls by the track that ran dry")},
        "avg_bitrate_kbps_mean": f(Maybe(NUM), "mean of the sessions' mean video bitrates"),
        "switches_mean": f(Maybe(NUM), "mean representation switches per session"),
        "jain_fairness": {"*": f(Maybe(NUM), "Jain's index of mean bitrate among viewers "
                                             "behind the ISP")},
        "by_algo": {"*": {"sessions": f(int, "sessions of the algorithm"),
                          "avg_bitrate_kbps": f(Maybe(NUM), "their mean bitrate"),
                          "rebuffer_s": f(NUM, "their stall seconds"),
                          "switches": f(Maybe(NUM), "their mean switches"),
                          "qoe": f(Maybe(NUM), "their mean QoE"),
                          "qoe_per_s": f(Maybe(NUM), "their mean QoE per media second")}},
        "jain_fairness_mean": f(Maybe(NUM), "mean of the per-ISP indices"),
        "browsers": BROWSERS,
        "failures_by_reason": {"*": f(int, "sessions that failed (or started and never ended: "
                                           "'did not end'), by reason "
                                           "(nodes/client/failures.py)")},
        "per_session": [SESSION],
    },
    "cmcd": {
        "requests": f(int, "media and manifest requests in the servers' access logs"),
        "with_cmcd": f(int, "of them, those carrying CMCD (CTA-5004; cdnlab/results/cmcd.py)"),
        "sessions": f(int, "distinct CMCD session ids among them"),
        "by": {"*": {"*": {"requests": f(int, "requests with this value of the key"),
                           "bytes": f(int, "bytes served to them")}}},
    },
    "fidelity": Maybe({
        "backend?": f(str, "shaping backend"), "datapath?": f(str, "switch datapath"),
        "ok": f(Maybe(bool), "RTTs right at the end and no invariant broken all along"),
        "rtt_err_max_pct?": f(Maybe(NUM), "largest RTT error at the end, %"),
        "rtt_err_max_ms?": f(Maybe(NUM), "and in ms"),
        "rtt_remeasured?": f(Maybe(int), "RTT pairs that missed their bound at the end and "
                                         "were measured once more (the first samples: "
                                         "events/fidelity.json rtt_first; null: no RTTs)"),
        "rate_err_max_pct?": f(Maybe(NUM), "largest goodput error, % (null: not measured)"),
        "loss_err_max_pp?": f(Maybe(NUM), "largest loss error, points (null: not measured)"),
        "cpu_awake?": f(Maybe(dict), "the CPU-awake decision and its measurements"),
        "rtt_ok": f(Maybe(bool), "the end-of-run RTT check"),
        "monitored": f(bool, "the run monitor sampled this run"),
        "violations": [VIOLATION],
        "verdict": f(str, "the verdict in words"),
        "monitor": Maybe({
            "samples": f(int, "monitor samples (one a second per machine)"),
            "machines": f(int, "machines sampled: 1, or a split run's machines "
                               "(cdnlab/machines)"),
            "cpu_busy_mean_max": f(Maybe(NUM), "highest mean busy share of the cores"),
            "steal_share_max": f(Maybe(NUM), "highest share of the cores' time the "
                                             "hypervisor took in one sample (/proc/stat "
                                             "steal; cdnlab/measure/monitor.py)"),
            "runnable_max": f(Maybe(int), "longest run queue"),
            "run_cpu_share_mean": f(Maybe(NUM), "mean CPU share of the run's processes"),
            "wake_p99_us_max": f(Maybe(NUM), "worst per-second p99 timer lateness, µs"),
            "delay_lag_max_us": f(Maybe(NUM), "latest a delay queue released a packet, µs"),
            "queues": f(Maybe(int), "shaped link directions whose kernel queue was read "
                                    "(cdnlab/measure/qdisc.py)"),
            "queue_drops": f(Maybe(int), "packets those queues dropped (a full bottleneck "
                                         "buffer: the emulated network's loss)"),
            "cpu_by_part": Maybe({"*": {
                "cpu_s": f(NUM, "CPU seconds this part of the run took (its child cgroup's "
                                "cpu.stat; cdnlab/net/cgroup.py PARTS), on the head machine"),
                "peak_share": f(NUM, "its largest share of all cores in one sample")}}),
        }),
    }),
    "faults": Maybe({
        "unplanned": f(int, "program exits nobody asked for (cdnlab/scenario/watch.py)"),
        "injected": f(int, "exits, pauses, origin faults and DNS drops timeline fault "
                           "events caused"),
        "events_applied": f(int, "timeline fault events applied (kill_program, "
                                 "stop_program, pause_program, resume_program, "
                                 "restart_program, origin_fault, dns_drop, "
                                 "fill_cache)"),
        "unexplained_failures": f(int, "failed sessions whose reason no fault before them "
                                       "can cause (cdnlab/results/faults.py EXPLAINS), "
                                       "sessions that never ended included"),
        "list": [{
            "t_s": f(NUM, "scenario second of the exit, or the fault's start"),
            "until_s": f(Maybe(NUM), "and its end, for a fault that lasts (a pause, "
                                     "origin_fault, dns_drop, fill_cache)"),
            "program": f(str, "the program's name"), "host": f(Maybe(str), "its host"),
            "part": f(Maybe(str), "its part (cdnlab/net/cgroup.py PARTS)"),
            "what": f(str, "exit, or the timeline event kind of a fault that lasts"),
            "how": f(str, "on SIGNAL, with code N, or what the fault did"),
            "signal": f(Maybe(str), "the signal that ended it"),
            "code": f(Maybe(int), "its exit code"),
            "cause": f(str, "unplanned or injected"),
            "injected_by": f(Maybe(str), "the timeline event kind that caused it"),
            "stderr": [f(str, "the last lines of its stderr")],
            "restarted_after_s": f(Maybe(NUM), "seconds from the exit until it was healthy "
                                               "again (under supervise, or a timeline "
                                               "restart_program after stop_program)"),
            "effect": {
                "requests_failed": f(int, "viewers' requests that failed while it lasted "
                                          "(from its start to its end, restart, or the "
                                          "run's end)"),
                "resolutions_failed": f(int, "nameservers that gave viewers no answer then"),
                "origin_5xx": f(int, "responses of 500 or more the origin gave then"),
                "cache_writes_failed": f(Maybe(int), "cache writes the edge's nginx "
                                                     "failed on a full disk (its error "
                                                     "log), for fill_cache; else null")},
            "sessions_failed_after": {"*": f(int, "sessions that failed from this fault "
                                                  "until the next, by reason")}}],
    }),
    "routing": {
        "mode": f(str, "how viewers reached clusters: dns, steering or anycast (scenario "
                       "routing)"),
        "anycast": Maybe({
            "predicted": {"*": f(str, "each client host's catchment by the routes BGP "
                                      "installed when the network came up")},
            "lowest_rtt": {"*": f(Maybe(bool), "whether that catchment was the host's "
                                               "lowest-RTT cluster at second 0 (the true "
                                               "RTT matrix); null if not judged")},
            "extra_rtt_ms": {"*": f(Maybe(NUM), "its true RTT above the lowest then")},
            "served_before_events": {"*": [f(str, "the clusters that delivered the host's "
                                                  "video segments before the first event")]},
            "as_predicted": {"*": f(bool, "those were its predicted catchment and no other")},
            "announcements": [{
                "kind": f(str, "anycast_withdrawn or anycast_announced (the health watch)"),
                "cluster": f(str, "the cluster whose speaker changed"),
                "reason": f(Maybe(str), "down, overloaded (routing.withdraw_above) or up "
                                        "(cdnlab/scenario/health.py announce_now)"),
                "load": f(Maybe(NUM), "the cluster's load the redirector held then, when "
                                      "load may withdraw"),
                "at_s": f(NUM, "scenario second BGP had settled after it"),
                "convergence_s": f(Maybe(NUM), "seconds from the change to the last route "
                                               "change (cdnlab/net/bgp.py)"),
                "catchments": Maybe({"*": f(str, "each client's catchment after it")})}]}),
        "bgp_changes": Maybe([{
            "cause": f(str, "the change in words (a link cut or restored, a withdrawal, an "
                            "announcement, a policy set)"),
            "by": f(Maybe(str), "what made it: timeline (an event) or health (the watch)"),
            "at_s": f(NUM, "scenario second the change was applied"),
            "convergence_s": f(Maybe(NUM), "seconds from then to the last route change any "
                                           "router's kernel saw (cdnlab/net/bgp.py)"),
            "routers_changed": [f(str, "a router whose BGP routes differ afterwards")],
            "unreachable": {"*": [f(str, "a subnet the router had no route to afterwards")]},
            "catchments": Maybe({"*": f(str, "with anycast: each client's catchment "
                                             "afterwards")})}]),
        "steering": Maybe({
            "requests": f(int, "steering requests the players made "
                               "(nodes/client/steering.py)"),
            "answered_by_status": {"*": f(int, "those requests by HTTP status ('None': "
                                               "no answer)")},
            "pathway_changes": {"*": f(int, "changes of the pathway in use, by reason "
                                            "(start, steering, failure, duress, retry)")},
            "segments_by_pathway": {"*": f(int, "video segments each pathway delivered")},
            "server_manifests": f(int, "manifests the steering server logged (steer lines "
                                       "of the decision log)"),
            "judged": f(int, "manifests whose first pathway could be judged against the "
                             "true RTTs (cdnlab/results/truth.py)"),
            "lowest_rtt_share": f(Maybe(NUM), "of those, the share whose first pathway was "
                                              "the client's lowest-RTT cluster"),
            "extra_rtt_ms_mean": f(Maybe(NUM), "the mean true RTT above the lowest where "
                                               "it was not")}),
        "cmsd": Maybe({
            "duress_raised": {"*": f(int, "times each edge server's monitor raised CMSD "
                                          "duress (utilisation over cdn.shed_above)")},
            "duress_seen": {"*": f(int, "segment responses with du the players took, by "
                                        "cluster (each moved its session away)")},
            "segments_capped": f(int, "video segments whose bitrate CMSD's mb capped below "
                                      "the ABR's choice")}),
        "segments": {
            "judged": f(int, "video segments whose delivering cluster could be judged "
                             "against the true RTTs of their viewer's host "
                             "(cdnlab/results/routing.py)"),
            "lowest_rtt_share": f(Maybe(NUM), "of those, the share delivered by the host's "
                                              "lowest-RTT cluster up then"),
            "extra_rtt_ms_per_segment": f(Maybe(NUM), "the true RTT above the lowest, "
                                                      "averaged over every judged segment "
                                                      "(0 for the lowest)")},
        "moves": [{
            "kind": f(str, "cluster_down or cluster_capacity"),
            "cluster": f(str, "the cluster the event hit"),
            "at_s": f(NUM, "scenario second it was applied"),
            "affected": f(int, "sessions whose last video segment before it came from that "
                               "cluster and that played on"),
            "moved": f(int, "of those, sessions that later asked another cluster for a "
                            "segment"),
            "to_90pct_s": f(Maybe(NUM), "seconds from the event until 90 % of the affected "
                                        "sessions had (null: fewer moved)")}],
        "overloads": [{
            "cluster": f(str, "the cluster a cluster_capacity event cut"),
            "at_s": f(NUM, "scenario second it was applied"),
            "mbps": f(NUM, "the capacity it was cut to"),
            "threshold": f(NUM, "the cluster's threshold (cdn.threshold)"),
            "utilisation_max": f(Maybe(NUM), "the peak of the cluster's utilisation from "
                                             "then until the timeline's next event (over "
                                             "the last segment's time, its servers' mean "
                                             "per second)"),
            "seconds_over_threshold": f(Maybe(int), "seconds of that window it was above "
                                                    "the threshold"),
            "noticed_s": f(Maybe(NUM), "seconds from the cut until its monitor first saw it "
                                       "over the threshold (null: never)"),
            "settled_s": f(Maybe(NUM), "seconds from the cut until the downloads no signal "
                                       "given on noticing could have prevented had ended "
                                       "(each session's, from the cluster, begun before it "
                                       "had in full a response begun after noticing, or "
                                       "before noticing if it had left by then)"),
            "seconds_over_after_settled": f(Maybe(int), "seconds wholly after settled_s, "
                                                        "within the window, it was above the "
                                                        "threshold (null: no such second)")}],
    },
    "events": {"applied": [f(str, "timeline events applied, by kind")],
               "failed": [f(str, "timeline events that failed, by kind")]},
}


def _type_ok(value: Any, kind: Any) -> bool:
    if kind is Any:
        return True
    if isinstance(kind, Maybe):
        return value is None or _type_ok(value, kind.inner)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def problems(value: Any, schema: Any = None, where: str = "summary") -> list[str]:
    """Everything in `value` that the schema does not say, and everything it says that
    `value` lacks."""
    schema = SCHEMA if schema is None else schema
    if isinstance(schema, Maybe):
        return [] if value is None else problems(value, schema.inner, where)
    if isinstance(schema, tuple):
        kind, _meaning = schema
        return [] if _type_ok(value, kind) else [
            f"{where}: {type(value).__name__} {value!r:.40} is not {kind}"]
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [p for n, item in enumerate(value) for p in problems(item, schema[0],
                                                                    f"{where}[{n}]")]
    if not isinstance(value, dict):
        return [f"{where}: expected a mapping"]
    found: list[str] = []
    keys = {k.rstrip("?"): k for k in schema if k != "*"}
    for name, key in keys.items():
        if name not in value and not key.endswith("?"):
            found.append(f"{where}.{name}: missing")
    for name, inner in value.items():
        if name in keys:
            found += problems(inner, schema[keys[name]], f"{where}.{name}")
        elif "*" in schema:
            found += problems(inner, schema["*"], f"{where}.{name}")
        else:
            found.append(f"{where}.{name}: not in the schema (cdnlab/results/schema.py)")
    return found
