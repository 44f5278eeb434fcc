"""`CpuAwake`: the CPUs kept out of their idle halt while a network is up (engine, network
layer), so the timers that pace emulated packets fire on time. `auto` measures first and
keeps them awake only where that helps and the host does not throttle a guest kept busy
(README, "Timers that fire on time")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from cdnlab.errors import CdnlabError
from cdnlab.measure.lateness import WakeLatency, lateness_us
from nodes.common.procfs import steal_share, steal_ticks

SPINNER_START_S = 5.0  # at most, for the spinners' interpreters to start
# what `doctor` waits with the CPUs kept awake before `confirm` (a run confirms once its
# network is up, seconds later): a host with a CPU quota lets an idle guest burst first
STEAL_PROBE_S = 2.0
STEAL_TOLERATED = 0.01  # of all cores' time: more, and the host is throttling the guest
# after `confirm`, `auto` reads the steal this often for as long as the CPUs are kept awake:
# a host whose quota a quiet bring-up never used up can run out of it under the workload
WATCH_S = 1.0
MODES = ("auto", "on", "off")


class CpuAwake:
    """Keeps every CPU this process may use out of its idle halt, between `start` and
    `stop`. `mode` is `on`, `off` or `auto`: measure wake-ups with the CPUs idle and kept
    awake, and keep them awake only if some idle wake-ups are late and keeping awake at
    least halves their share, and, checked by `confirm` once the network is up, the host
    took no more than `STEAL_TOLERATED` of the CPU time while they spun. The share,
    unlike p99 (3 of 300 sleeps), is not swayed by one stall of the host. The steal check
    is there because a spinner is only idle to the guest: a host that caps a guest's CPU
    (a cgroup quota on the VM) sees every vCPU busy, runs out of the quota and stops a
    vCPU for the rest of its period: stalls of a whole period (README) against the
    fraction of a millisecond the spinners save."""

    def __init__(self, mode: str = "auto") -> None:
        if mode not in MODES:
            raise CdnlabError(f"unknown --cpu-awake mode {mode!r}: use {', '.join(MODES)}")
        self.mode = mode
        self.ledger: Any = None  # a run's Ledger, given to `start`
        self.idle: WakeLatency | None = None  # measured by `auto`, CPUs left to idle
        self.awake: WakeLatency | None = None  # and with the CPUs kept awake
        self.reason = "not started"
        self.steal_awake: float | None = None  # the host's share of CPU time while spinning
        self.host_throttles: bool | None = None  # that share over STEAL_TOLERATED
        self._trial: tuple[int, int] | None = None  # steal_ticks() when kept awake by auto
        self.idle_after_s: float | None = None  # seconds after `confirm` that `watch` gave up
        self._watching: threading.Thread | None = None
        self._lock = threading.Lock()  # `stop` from the engine and from the watch
        self._stopping = threading.Event()
        self.kept_awake = False  # the decision, which `describe` reports also after `stop`
        self.spinners: list[subprocess.Popen[bytes]] = []
        self.pinned: dict[int, int] = {}  # CPU → the PID of the spinner on it

    @property
    def active(self) -> bool:
        return bool(self.spinners)

    def start(self, ledger: Any = None) -> None:
        """Spinners (recorded in `ledger` if given) as `mode` says; `auto` measures first."""
        self.ledger = ledger
        if self.mode == "off":
            self.reason = "off as asked"
            return
        if self.mode == "on":
            self.reason = "on as asked"
            self._spin()
            self.kept_awake = True
            return
        self._spin()
        self.idle, self.awake = self._compare()
        if self.idle.late_share > 0 and self.awake.late_share <= self.idle.late_share / 2:
            self.kept_awake = True
            self.reason = "kept awake: at most half as many late wake-ups as idle"
            self._trial = steal_ticks()  # until `confirm`: does the host throttle them?
        else:
            self.reason = "left to idle: keeping awake did not halve the late wake-ups"
            self.stop()

    def confirm(self) -> None:
        """`auto`, once the network is up (seconds of spinning later): if the host took
        over `STEAL_TOLERATED` of the CPU time since the spinners were kept, it throttles
        a busy guest, and the CPUs are left to idle from now on."""
        if self._trial is None:
            return
        self.steal_awake = steal_share(self._trial, steal_ticks())
        self._trial = None
        self.host_throttles = self.steal_awake > STEAL_TOLERATED
        if self.host_throttles:
            self.kept_awake = False
            self.reason = (f"left to idle: the host took {self.steal_awake:.0%} of the CPU "
                           "time while they were kept awake (it throttles a busy guest)")
            self.stop()

    def watch(self, period_s: float = WATCH_S) -> None:
        """`auto`, after `confirm` kept the CPUs awake: read the steal every `period_s`
        in a thread and, the first time the host took over `STEAL_TOLERATED` of a
        period's CPU time, leave the CPUs to idle for the rest of the network's life
        (`idle_after_s` says when). `bench scale` met this: a bring-up that confirmed
        the spinners, then steal at 16 viewers with both vCPUs kept busy."""
        if self.mode != "auto" or not self.spinners or self._watching is not None:
            return
        since = time.monotonic()
        self._stopping.clear()

        def loop() -> None:
            before = steal_ticks()
            while not self._stopping.wait(period_s):
                now = steal_ticks()
                share = steal_share(before, now)
                before = now
                if share > STEAL_TOLERATED:
                    self._give_up(share, time.monotonic() - since)
                    return

        self._watching = threading.Thread(target=loop, name="cpu-awake-watch", daemon=True)
        self._watching.start()

    def _give_up(self, share: float, after_s: float) -> None:
        with self._lock:
            if not self.spinners:
                return
            self.kept_awake, self.host_throttles = False, True
            self.steal_awake, self.idle_after_s = share, round(after_s, 1)
            self.reason = (f"left to idle {after_s:.0f} s after the network came up: the host "
                           f"took {share:.0%} of a second's CPU time while they were kept "
                           "awake (it throttles a busy guest)")
            self._kill()

    def _spin(self) -> None:
        """One spinner per CPU; returns once every spinner has reached its idle class."""
        parent = os.getpid()
        for cpu in sorted(os.sched_getaffinity(0)):
            spinner = subprocess.Popen(
                [sys.executable, "-m", "cdnlab.net.sched", str(cpu), str(parent)],
                stdin=subprocess.DEVNULL)
            self.spinners.append(spinner)
            self.pinned[cpu] = spinner.pid
            if self.ledger is not None:
                self.ledger.add_process(spinner.pid, f"CPU {cpu} kept awake")
        deadline = time.monotonic() + SPINNER_START_S
        for spinner in self.spinners:
            while time.monotonic() < deadline and spinner.poll() is None:
                try:
                    if os.sched_getscheduler(spinner.pid) == os.SCHED_IDLE:
                        break
                except OSError:
                    break
                time.sleep(0.01)

    def _compare(self, rounds: int = 3, per_round: int = 100) -> tuple[WakeLatency, WakeLatency]:
        """Wake-ups with the spinners paused (SIGSTOP) and running, in alternate rounds, so
        a busy moment of the host falls on both measures alike."""
        idle: list[float] = []
        awake: list[float] = []
        for _ in range(rounds):
            self._signal(signal.SIGSTOP)
            idle += lateness_us(per_round)
            self._signal(signal.SIGCONT)
            awake += lateness_us(per_round)
        return WakeLatency.of(idle), WakeLatency.of(awake)

    def _signal(self, signum: int) -> None:
        for spinner in self.spinners:
            if spinner.poll() is None:
                spinner.send_signal(signum)

    def stop(self) -> None:
        self._stopping.set()
        if self._watching is not None and self._watching is not threading.current_thread():
            self._watching.join()
        with self._lock:
            self._kill()

    def _kill(self) -> None:
        for spinner in self.spinners:
            if spinner.poll() is None:
                spinner.kill()
            spinner.wait()
        self.spinners.clear()
        self.pinned.clear()

    def describe(self) -> dict[str, Any]:
        """For run.json and the fidelity report: the mode, the decision and the measures."""
        return {"mode": self.mode, "active": self.kept_awake, "reason": self.reason,
                "steal_share_awake": self.steal_awake, "host_throttles": self.host_throttles,
                "idle_after_s": self.idle_after_s,
                "idle_wake_latency": self.idle.to_dict() if self.idle else None,
                "awake_wake_latency": self.awake.to_dict() if self.awake else None}
