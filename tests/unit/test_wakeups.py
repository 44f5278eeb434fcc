"""Keeping CPUs awake and timers precise (cdnlab.net.cpu_awake, cdnlab.net.sched) and
timer lateness (cdnlab.measure.lateness): real processes, no root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cdnlab.errors import CdnlabError
from cdnlab.measure import lateness, monitor
from cdnlab.net import cpu_awake, sched
from cdnlab.net.ledger import process_start_time
from nodes.common import procfs


def _idle_ticks() -> int:
    return int(Path("/proc/stat").read_text().split()[4])


def test_kept_awake_means_one_idle_class_spinner_per_cpu_and_no_idle_time() -> None:
    awake = cpu_awake.CpuAwake("on")
    awake.start()
    try:
        cpus = sorted(os.sched_getaffinity(0))
        assert awake.active and len(awake.spinners) == len(cpus)
        time.sleep(0.5)  # the spinners' interpreters start and pin themselves
        for cpu, spinner in zip(cpus, awake.spinners, strict=True):
            assert spinner.poll() is None
            assert os.sched_getscheduler(spinner.pid) == os.SCHED_IDLE
            assert os.sched_getaffinity(spinner.pid) == {cpu}
        before = _idle_ticks()
        time.sleep(1.0)
        # the kernel counts idle time in ticks of 10 ms: a CPU that never idles adds none
        assert _idle_ticks() - before <= 5
        assert awake.describe()["active"] and awake.describe()["reason"] == "on as asked"
    finally:
        awake.stop()
    assert not awake.active


def test_stop_leaves_no_spinner() -> None:
    awake = cpu_awake.CpuAwake("on")
    awake.start()
    pids = [(s.pid, process_start_time(s.pid)) for s in awake.spinners]
    awake.stop()
    assert pids and all(process_start_time(pid) != start for pid, start in pids)


def test_spinners_die_with_the_process_that_started_them() -> None:
    """A run killed outright (SIGKILL, no teardown) still leaves no spinner behind."""
    child = subprocess.run(
        [sys.executable, "-c",
         "import os, time\n"
         "from cdnlab.net.cpu_awake import CpuAwake\n"
         "awake = CpuAwake('on'); awake.start(); time.sleep(0.5)\n"
         "print(' '.join(str(s.pid) for s in awake.spinners), flush=True)\n"
         "os.kill(os.getpid(), 9)\n"],
        capture_output=True, text=True, check=False, cwd=Path(__file__).parents[2])
    assert child.returncode == -9, child.stderr
    pids = [int(pid) for pid in child.stdout.split()]
    assert pids
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(process_start_time(p) for p in pids):
        time.sleep(0.05)
    assert [p for p in pids if process_start_time(p) is not None] == []


def test_off_starts_nothing_and_auto_records_its_measure() -> None:
    off = cpu_awake.CpuAwake("off")
    off.start()
    assert not off.active and off.describe() == {
        "mode": "off", "active": False, "reason": "off as asked", "steal_share_awake": None,
        "host_throttles": None, "idle_after_s": None, "idle_wake_latency": None,
        "awake_wake_latency": None}
    auto = cpu_awake.CpuAwake("auto")
    auto.start()
    try:
        described = auto.describe()
        idle, awake = described["idle_wake_latency"], described["awake_wake_latency"]
        for measured in (idle, awake):
            assert measured["samples"] == 300
            assert 0 <= measured["median_us"] <= measured["p99_us"] <= measured["max_us"]
            assert 0 <= measured["late_share"] <= 1
        helps = idle["late_share"] > 0 and awake["late_share"] <= idle["late_share"] / 2
        assert auto.active == described["active"] == helps, described
        assert described["steal_share_awake"] is None, "confirm judges it, the network up"
        # the spinners are left running exactly when kept awake, and never left stopped
        assert all(Path(f"/proc/{s.pid}/stat").read_text().split(") ")[1][0] in "RS"
                   for s in auto.spinners)
        # confirm: the host's steal while they spun decides too (a host that caps a guest's
        # CPU stops a vCPU for its whole period once a busy guest used its quota up)
        time.sleep(cpu_awake.STEAL_PROBE_S)
        auto.confirm()
        described = auto.describe()
        if helps:
            steal = described["steal_share_awake"]
            assert 0 <= steal <= 1
            assert described["host_throttles"] == (steal > cpu_awake.STEAL_TOLERATED)
        expected = helps and not described["host_throttles"]
        assert auto.active == described["active"] == expected, described
        if described["host_throttles"]:
            assert "the host took" in described["reason"] and not auto.spinners
            assert "the host took" in lateness.summary(described)
    finally:
        auto.stop()
    assert auto.describe()["active"] == expected and not auto.spinners


def test_steal_is_what_the_host_took_from_a_guest_kept_busy() -> None:
    """/proc/stat's steal, as the monitor and `confirm` read it: with every CPU kept busy
    for a few seconds, the spinners' own CPU time and the steal together account for the
    cores' time (the kernel charges a stolen tick to steal, not to the task). A host that
    caps its guests' CPU (this machine's, at times) takes a visible share; one that does
    not takes little or none, and the sum holds either way."""
    busy = [subprocess.Popen(["sh", "-c", "while :; do :; done"])
            for _ in range(len(os.sched_getaffinity(0)))]
    try:
        time.sleep(0.2)  # the shells are past exec and spinning
        before = procfs.steal_ticks()
        spun_before = sum(procfs.process_ticks(p.pid) for p in busy)
        time.sleep(2.5)
        after = procfs.steal_ticks()
        spun_after = sum(procfs.process_ticks(p.pid) for p in busy)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    share = procfs.steal_share(before, after)
    spun = (spun_after - spun_before) / (after[1] - before[1])
    assert after[1] > before[1] and 0 <= share <= 1
    # the rest (this test, the kernel's own work, any other process) is a few percent
    assert 0.9 <= spun + share <= 1.02, (spun, share)


def _kept_awake_on_trial() -> cpu_awake.CpuAwake:
    """`auto` past its decision and `confirm`, the CPUs kept awake, whatever this host's
    wake-ups would have decided."""
    awake = cpu_awake.CpuAwake("auto")
    awake._spin()
    awake.kept_awake = True
    return awake


def test_watch_leaves_the_cpus_to_idle_once_the_host_takes_a_period(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Any steal at all counts here (the tolerance below zero), so the first period ends
    the trial: the spinners are gone, the decision and its reason say when and why."""
    monkeypatch.setattr(cpu_awake, "STEAL_TOLERATED", -1.0)
    awake = _kept_awake_on_trial()
    pids = [s.pid for s in awake.spinners]
    try:
        awake.watch(period_s=0.2)
        deadline = time.monotonic() + 5
        while awake.spinners and time.monotonic() < deadline:
            time.sleep(0.05)
        described = awake.describe()
        assert not awake.spinners and not awake.active and not described["active"]
        assert described["host_throttles"] and 0.1 <= described["idle_after_s"] <= 1.0
        assert described["reason"].startswith("left to idle") and "the host took" in (
            described["reason"])
        assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    finally:
        awake.stop()


def test_watch_keeps_the_cpus_awake_while_the_host_takes_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_awake, "STEAL_TOLERATED", 1.0)  # no share is over it
    awake = _kept_awake_on_trial()
    try:
        awake.watch(period_s=0.1)
        time.sleep(0.5)
        assert awake.active and awake.describe()["idle_after_s"] is None
        assert all(s.poll() is None for s in awake.spinners)
    finally:
        awake.stop()  # joins the watch
    assert not awake.spinners and awake._watching is not None
    assert not awake._watching.is_alive()


def test_a_spinner_stopped_mid_run_keeps_its_last_ticks_in_the_monitor(
        tmp_path: Path) -> None:
    """Once `watch` stops a spinner its ticks read 0; the monitor keeps the last reading,
    so the interval it died in counts no spinning, not minus all of it."""
    spinner = subprocess.Popen(["sh", "-c", "while :; do :; done"])
    try:
        sampler = monitor.Sampler(tmp_path / "f.jsonl", time.time(), None, {0: spinner.pid})
        time.sleep(0.3)
        first = sampler._spun()
        assert first[0] > 0
    finally:
        spinner.kill()
        spinner.wait()
    assert sampler._spun() == first


def test_an_unknown_mode_is_refused_by_name() -> None:
    with pytest.raises(CdnlabError, match="unknown --cpu-awake mode 'sometimes'"):
        cpu_awake.CpuAwake("sometimes")


def test_wake_latency_restores_the_callers_timer_slack() -> None:
    slack = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/timerslack_ns")
    before = slack.read_text() if slack.exists() else None
    figures = lateness.wake_latency(samples=50, sleep_s=0.0005)
    assert figures.samples == 50 and figures.median_us >= 0
    if before is not None:
        assert slack.read_text() == before


def test_precise_timers_and_realtime_in_a_child() -> None:
    probe = ("import os\n"
             "from cdnlab.net import sched\n"
             "sched.precise_timers()\n"
             "slack = open('/proc/self/timerslack_ns').read().strip()\n"
             "policy = sched.realtime()\n"
             "print(policy, os.sched_getscheduler(0) == os.SCHED_FIFO, slack)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).parents[2])
    policy, fifo, slack = done.stdout.split()
    assert slack == "1"
    # refused without the privilege: the policy says so, and the process stays normal
    assert (policy == f"fifo:{sched.DELAY_PRIORITY}") == (fifo == "True")
    if os.geteuid() == 0:
        assert policy == f"fifo:{sched.DELAY_PRIORITY}"


def test_headers_say_whether_the_cpus_were_kept_awake() -> None:
    from cdnlab.measure.fidelity import FidelityReport, setup_text

    idle = {"median_us": 31.0, "p99_us": 1716.4, "max_us": 3999.0, "late_share": 0.2133,
            "samples": 300}
    awake = {"mode": "auto", "active": True, "reason": "kept awake: …",
             "idle_wake_latency": idle, "awake_wake_latency": idle | {"late_share": 0.0033}}
    assert lateness.summary(awake) == ("CPUs kept awake; wake-ups over 100 µs late: 21.3 % "
                                      "idle, 0.3 % awake")
    assert lateness.summary({**awake, "active": False, "idle_wake_latency": None}) == \
        "CPUs left to idle"
    assert lateness.summary(None) == ""
    assert setup_text("netem", "kernel") == "netem shaping, kernel switches"
    assert setup_text(None, "kernel", awake).startswith("kernel switches, CPUs kept awake; ")
    report = FidelityReport("nfqueue", "bridge", cpu_awake=awake)
    assert report.table().splitlines()[0] == (
        "fidelity (nfqueue shaping, bridge switches, CPUs kept awake; wake-ups over 100 µs "
        "late: 21.3 % idle, 0.3 % awake)")
    assert report.summary()["cpu_awake"] == awake



HOG = ("import os, sys, time\n"
       "os.sched_setaffinity(0, {int(sys.argv[1])})\n"
       "os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))\n"
       "print('ready', flush=True)\n"
       "while True:\n"
       "    end = time.monotonic() + 0.003\n"
       "    while time.monotonic() < end:\n"
       "        pass\n"
       "    time.sleep(0.003)\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="a SCHED_FIFO hog needs root")
def test_lateness_the_run_queue_explains_is_told_apart(tmp_path: Path) -> None:
    """Beside a real-time hog on the same CPU (3 ms busy, 3 ms asleep), a late wake-up
    waited in the run queue: `timed_sleeps` puts the lateness there, and so the run
    monitor's samples, pinned there too, carry a `wake_host_p99_us` (lateness less that
    wait) far below their `wake_p99_us`."""
    import threading

    cpu = min(os.sched_getaffinity(0))
    hog = subprocess.Popen([sys.executable, "-c", HOG, str(cpu)], stdout=subprocess.PIPE,
                           text=True)
    before = os.sched_getaffinity(0)
    sampler = monitor.Sampler(tmp_path / "f.jsonl", time.time(), None, interval_s=0.2)
    thread = threading.Thread(target=sampler.run)
    try:
        assert hog.stdout is not None and hog.stdout.readline().strip() == "ready"
        os.sched_setaffinity(0, {cpu})  # this thread, and the sampler's, which inherits it
        thread.start()
        slept = lateness.timed_sleeps(300)
        time.sleep(0.6)
    finally:
        sampler.stopping.set()
        thread.join(timeout=10)
        os.sched_setaffinity(0, before)
        hog.kill()
        hog.wait()
    assert all(queued is not None for _, queued in slept), "no run_delay account here"
    late = [(x, q) for x, q in slept if q is not None and x > 1000]
    assert len(late) >= 30, sorted(x for x, _ in slept)[-10:]  # the hog held the CPU
    queued = sum(q for _, q in late)
    assert queued >= 0.8 * sum(x for x, _ in late), (queued, sum(x for x, _ in late))
    samples = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    samples = [s for s in samples if s.get("event") == "sample"]
    assert len(samples) >= 3, samples
    for sample in samples:
        assert sample["wake_p99_us"] > 1000, sample
        assert 0 <= sample["wake_host_p99_us"] < sample["wake_p99_us"] / 2, sample
