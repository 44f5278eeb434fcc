"""`cdnlab bench wakeups`: how late this machine's timers fire, and what keeping CPUs awake buys.

Every emulated delay and htb rate is paced by a timer, so a timer's lateness is a floor
under the emulator's error (see `cdnlab.net.cpu_awake`). Sleeps of 1 ms are timed three ways:
with the CPUs left to idle (the baseline), with every CPU kept awake by `CpuAwake`, and
the same again from a SCHED_FIFO process, as the nfqueue delay processes run. Ratios are
each row's lateness over the baseline's, measured in the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys

from cdnlab.measure.lateness import WakeLatency, wake_latency
from cdnlab.net.cpu_awake import CpuAwake

REALTIME_PROBE = ("import json, sys\n"
                  "from cdnlab.measure import lateness\nfrom cdnlab.net import sched\n"
                  "policy = sched.realtime()\n"
                  "print(json.dumps([policy, lateness.wake_latency(int(sys.argv[1])).to_dict()]))")


def _realtime_latency(samples: int) -> tuple[str, WakeLatency]:
    """Measured in a child process, so this one's scheduling stays as it was."""
    done = subprocess.run([sys.executable, "-c", REALTIME_PROBE, str(samples)],
                          capture_output=True, text=True, check=True)
    policy, figures = json.loads(done.stdout)
    return policy, WakeLatency(**figures)


def table(rows: list[tuple[str, WakeLatency]]) -> str:
    base = rows[0][1]
    lines = [f"timer lateness of a 1 ms sleep ({base.samples} sleeps each); ratio = p99 / "
             "baseline p99",
             f"  {'CPUs':<34}{'median':>10}{'p99':>10}{'max':>10}{'>100µs':>9}{'ratio':>8}"]
    for label, w in rows:
        ratio = w.p99_us / base.p99_us if base.p99_us > 0 else 0.0
        lines.append(f"  {label:<34}{w.median_us:>8.0f}µs{w.p99_us:>8.0f}µs{w.max_us:>8.0f}µs"
                     f"{100 * w.late_share:>8.1f}%{ratio:>8.3f}")
    return "\n".join(lines)


def run(samples: int) -> int:
    rows = [("left to idle (baseline)", wake_latency(samples))]
    awake = CpuAwake("on")
    awake.start()
    try:
        rows.append(("kept awake", wake_latency(samples)))
        policy, latency = _realtime_latency(samples)
        rows.append((f"kept awake, delay process ({policy})", latency))
    finally:
        awake.stop()
    print(table(rows))
    (_, idle), (_, kept), (_, delay) = rows
    print(f"wakeups: idle_p99_us={idle.p99_us:.0f} awake_p99_us={kept.p99_us:.0f} "
          f"delay_process_p99_us={delay.p99_us:.0f} idle_late_pct={100 * idle.late_share:.1f} "
          f"awake_late_pct={100 * kept.late_share:.1f}")
    return 0
