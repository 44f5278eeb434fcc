"""Timer lateness: how late a short sleep wakes on this machine, the figure behind
`--cpu-awake auto`, `bench wakeups` and every fidelity header."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cdnlab.net.sched import PR_GET_TIMERSLACK, PR_SET_TIMERSLACK, prctl, precise_timers

LATE_US = 100.0  # a wake-up later than this is late (a 1 ms delay off by 10 %)


@dataclass(frozen=True)
class WakeLatency:
    """How late a 1 ms sleep wakes, in microseconds, over `samples` sleeps."""

    median_us: float
    p99_us: float
    max_us: float
    late_share: float  # of the sleeps, those woken over LATE_US late
    samples: int

    @classmethod
    def of(cls, late_us: list[float]) -> WakeLatency:
        late = sorted(late_us)
        share = sum(1 for x in late if x > LATE_US) / len(late)
        return cls(round(late[len(late) // 2], 1), round(late[int(0.99 * len(late))], 1),
                   round(late[-1], 1), round(share, 4), len(late))

    def to_dict(self) -> dict[str, float]:
        return {"median_us": self.median_us, "p99_us": self.p99_us, "max_us": self.max_us,
                "late_share": self.late_share, "samples": self.samples}


def lateness_us(samples: int, sleep_s: float = 0.001) -> list[float]:
    """Sleep `samples` times for `sleep_s`; how late each wake-up was. Timer slack is 1 ns
    meanwhile, so the figures are the machine's, not the default slack's."""
    return [late for late, _queued in timed_sleeps(samples, sleep_s, queued=False)]


def run_queue_wait_ns() -> int | None:
    """The nanoseconds this thread has spent runnable but waiting for a CPU
    (/proc/thread-self/schedstat, its second field: the scheduler's `run_delay`); None
    where the kernel keeps no such account (no CONFIG_SCHED_INFO)."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as stat:
            return int(stat.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None


def timed_sleeps(samples: int, sleep_s: float = 0.001,
                 queued: bool = True) -> list[tuple[float, float | None]]:
    """Sleep `samples` times for `sleep_s`: per sleep, how late it woke (µs) and, with
    `queued`, how much of that it spent woken but waiting in this machine's run queue
    (µs; `run_queue_wait_ns`, None where unknown). Lateness the run queue does not explain
    happened before the wake-up reached the scheduler: in a VM, the hypervisor running
    the virtual CPU late (it took the core, or woke a halted one late)."""
    previous = prctl(PR_GET_TIMERSLACK, 0)
    precise_timers()
    found: list[tuple[float, float | None]] = []
    try:
        for _ in range(samples):
            waited = run_queue_wait_ns() if queued else None
            started = time.monotonic()
            time.sleep(sleep_s)
            late = (time.monotonic() - started - sleep_s) * 1e6
            now = run_queue_wait_ns() if waited is not None else None
            found.append((late, None if now is None or waited is None
                          else (now - waited) / 1000))
    finally:
        if previous > 0:
            prctl(PR_SET_TIMERSLACK, previous)
    return found


def wake_latency(samples: int = 300, sleep_s: float = 0.001) -> WakeLatency:
    """`lateness_us`, summarised."""
    return WakeLatency.of(lateness_us(samples, sleep_s))


def summary(described: dict[str, Any] | None) -> str:
    """`CPUs kept awake; wake-ups over 100 µs late: 21.3 % idle, 0.3 % awake` from
    `CpuAwake.describe()`, for one-line headers, with the host's steal while they were
    kept awake where it decided; empty for None."""
    if not described:
        return ""
    idle, awake = described.get("idle_wake_latency"), described.get("awake_wake_latency")
    figures = (f"; wake-ups over {LATE_US:g} µs late: {100 * idle['late_share']:.1f} % idle, "
               f"{100 * awake['late_share']:.1f} % awake" if idle and awake else "")
    if described.get("host_throttles"):
        figures += (f"; the host took {100 * described['steal_share_awake']:.0f} % of the "
                    "CPU time while awake")
    return f"CPUs {'kept awake' if described['active'] else 'left to idle'}{figures}"


