"""Nothing a run created survives it: after an exception, after SIGTERM, and (with
`cdnlab clean`) after SIGKILL, where the run itself could do nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from cdnlab.net import autogroups
from cdnlab.net.emulation import Emulation
from cdnlab.net.ledger import LEDGER_DIR, Ledger, process_start_time
from cdnlab.services.router import FRR_BASE
from cdnlab.topology import load_topology
from tests.net.conftest import alive, recorded_processes
from tests.net.test_bgp_topology import frr_daemons

pytestmark = pytest.mark.root

HOLD_UP = textwrap.dedent("""
    import sys, time
    from cdnlab.net.emulation import Emulation
    from cdnlab.topology import load_topology
    with Emulation(load_topology(sys.argv[1])) as emu:
        print(emu.ledger.path, flush=True)
        time.sleep(600)
""")


def test_an_exception_inside_a_run_tears_everything_down(nothing_left_behind: None) -> None:
    on = autogroups.enabled()
    with pytest.raises(RuntimeError, match="boom"), \
            Emulation(load_topology("minimal")) as emu:
        processes = recorded_processes(emu)
        assert len(processes) > 5 and alive(processes) != []
        # the run's processes share one CPU group; `nothing_left_behind` sees it back
        assert emu.autogroups == ("off for the run" if on else "off" if on is False else None)
        assert not autogroups.enabled()
        raise RuntimeError("boom")
    assert alive(processes) == []


def processes_of(record: Any) -> list[tuple[int, int | None]]:
    return [(int(p["pid"]), p["start"]) for p in record.processes]  # type: ignore[misc]


def start_held_run(topology: str = "minimal") -> tuple[subprocess.Popen[str], Path]:
    run = subprocess.Popen([sys.executable, "-c", HOLD_UP, topology], stdout=subprocess.PIPE,
                           text=True)
    assert run.stdout is not None
    ledger_path = Path(run.stdout.readline().strip())
    assert ledger_path.exists(), "the run did not come up"
    return run, ledger_path


def test_sigterm_tears_everything_down(nothing_left_behind: None) -> None:
    run, ledger_path = start_held_run()
    record = Ledger.load(ledger_path).record
    run.send_signal(signal.SIGTERM)
    run.wait(timeout=60)
    assert not ledger_path.exists()
    assert all(process_start_time(int(p["pid"])) != p["start"] for p in record.processes)


def test_cdnlab_clean_removes_what_a_killed_run_left(nothing_left_behind: None) -> None:
    run, ledger_path = start_held_run()
    record = Ledger.load(ledger_path).record
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    # the kernel ends what the run started (PR_SET_PDEATHSIG): its hosts' namespaces go,
    # and their interfaces with them; the bridges in the root namespace stay for clean
    deadline = time.monotonic() + 10
    while alive(processes_of(record)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive(processes_of(record)) == []
    assert record.linux_bridges or record.ovs_bridges
    assert all(Path(f"/sys/class/net/{b}").exists() for b in record.linux_bridges), \
        "a SIGKILLed run leaves its bridges (that is what clean is for)"
    done = subprocess.run([sys.executable, "-m", "cdnlab.cli", "clean"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"clean: {len(done.stdout.splitlines()) - 1} leftover item(s) removed" in done.stdout
    assert not ledger_path.exists()
    assert not any(Path(f"/sys/class/net/{i}").exists()
                   for i in record.interfaces + record.linux_bridges)
    assert not any(LEDGER_DIR.glob(f"{record.run_id}*"))


def test_cdnlab_clean_ends_the_frr_daemons_of_a_killed_bgp_run(
        nothing_left_behind: None) -> None:
    """FRR's daemons drop root, which clears the parent-death signal: a SIGKILLed run's
    routers and anycast speakers keep running (holding their namespaces) until `cdnlab
    clean` ends them by the PIDs the ledger holds, and removes their directory."""
    before = frr_daemons()
    run, ledger_path = start_held_run("anycast_transit")
    try:
        record = Ledger.load(ledger_path).record
        daemons = [(pid, start) for pid, start in processes_of(record)
                   if pid not in before and pid in frr_daemons()]
        run_dirs = [Path(d) for d in record.directories if Path(d).parent == FRR_BASE]
    finally:
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
    # three routers (zebra and bgpd) and two speakers (bgpd alone)
    assert len(daemons) == 8, daemons
    assert run_dirs and all(d.is_dir() for d in run_dirs), record.directories
    time.sleep(1)
    assert alive(daemons) == [pid for pid, _ in daemons], "FRR's daemons outlive a SIGKILLed run"
    done = subprocess.run([sys.executable, "-m", "cdnlab.cli", "clean"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert alive(daemons) == [] and frr_daemons() <= before
    assert not any(d.exists() for d in run_dirs) and not list(FRR_BASE.glob("*"))
    assert not ledger_path.exists()


def test_a_name_clash_is_refused_before_anything_is_made(nothing_left_behind: None) -> None:
    subprocess.run(["ip", "link", "add", "edge1", "type", "bridge"], check=True)
    try:
        with pytest.raises(Exception, match="edge1 already exist"):
            Emulation(load_topology("minimal")).start()
        assert Path("/sys/class/net/edge1").exists()
    finally:
        subprocess.run(["ip", "link", "del", "edge1"], check=True)


def test_after_a_reboot_clean_removes_what_persists_and_touches_no_process(
        nothing_left_behind: None, tmp_path: Path) -> None:
    """A ledger written in an earlier boot (as after a kill and a reboot): its OVS bridge
    (kept in OVS's database across boots) and directory are removed; its PIDs belong to
    the old kernel, so a process that has one of them now is left alone."""
    if subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True,
                      check=False).returncode:
        pytest.skip("Open vSwitch is not running (cdnlab doctor --fix starts it)")
    bystander = subprocess.Popen(["sleep", "60"])
    bridge, directory = "cdnrb0", tmp_path / "kept"
    directory.mkdir()
    subprocess.run(["ovs-vsctl", "--timeout=5", "add-br", bridge], check=True)
    ledger = Ledger("rebooted-run")
    ledger.record.boot = "an-earlier-boot"
    ledger.record.owner_pid = os.getpid()  # alive now, but in another boot it means nothing
    ledger.add_process(bystander.pid, "a PID the old kernel gave the run")
    ledger.add_ovs_bridge(bridge)
    ledger.add_directory(directory)
    try:
        doctor = subprocess.run([sys.executable, "-m", "cdnlab.cli", "doctor"],
                                capture_output=True, text=True, check=False)
        assert "run rebooted-run (interrupted, an earlier boot): 1 OVS bridge(s), " \
               "1 directory(ies) recorded" in doctor.stdout, doctor.stdout
        done = subprocess.run([sys.executable, "-m", "cdnlab.cli", "clean"],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert f"rebooted-run: ovs bridge {bridge}" in done.stdout
        assert not directory.exists() and not ledger.path.exists()
        assert bystander.poll() is None, "a PID from an earlier boot was signalled"
    finally:
        bystander.kill()
        bystander.wait()
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", bridge],
                       check=False)
        ledger.path.unlink(missing_ok=True)
