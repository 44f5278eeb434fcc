"""The monitor's per-core busy share (`cdnlab.measure.monitor.core_busy`): from the cores'
idle residency where cpuidle keeps it, less the spinners; /proc/stat's ticks otherwise."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from cdnlab.measure.monitor import core_busy, core_idle_us, cpu_times
from nodes.common.procfs import TICKS_PER_S, process_ticks


def test_residency_gives_busy_over_wall_time_less_the_spinner() -> None:
    ticks = [(0, 0), (0, 0)]
    # core 0: 0.3 s idle of 1 s, its spinner 0.1 s; core 1: idle throughout
    busy = core_busy(ticks, ticks, [1_000_000, 5_000_000], [1_300_000, 6_000_000],
                     {0: 0}, {0: int(0.1 * TICKS_PER_S)}, 1.0)
    assert busy == [0.6, 0.0]


def test_ticks_where_a_core_has_no_residency() -> None:
    busy = core_busy([(10, 100), (0, 100)], [(60, 200), (100, 200)], None, None,
                     {1: 0}, {1: 50}, 1.0)
    assert busy == [0.5, 0.5]


def _spin(seconds: float) -> None:
    os.sched_setaffinity(0, {0})
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.skipif(core_idle_us() is None, reason="no cpuidle driver on this machine")
def test_a_core_kept_running_reads_busy_and_its_spinner_reads_idle() -> None:
    """Real readings: a process spinning on core 0 makes it busy, and the same process
    named as core 0's spinner (as `--cpu-awake` names its own) takes that back out."""
    child = multiprocessing.get_context("fork").Process(target=_spin, args=(1.5,))
    child.start()
    try:
        time.sleep(0.2)
        assert child.pid is not None
        cores, idle, spun = cpu_times()[0], core_idle_us(), {0: process_ticks(child.pid)}
        at = time.monotonic()
        time.sleep(1.0)
        now_cores, now_idle = cpu_times()[0], core_idle_us()
        now_spun, seconds = {0: process_ticks(child.pid)}, time.monotonic() - at
    finally:
        child.join()
    busy = core_busy(cores, now_cores, idle, now_idle, {}, {}, seconds)[0]
    assert busy >= 0.9
    # the spinner had most of the core (all of it on an idle host): that much comes off
    assert core_busy(cores, now_cores, idle, now_idle, spun, now_spun, seconds)[0] <= \
        busy - 0.5
