"""Nothing a run created survives it: after an exception, after SIGTERM, and (with
`cdnlab clean`) after SIGKILL, where the run itself could do nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cdnlab.net.emulation import Emulation
from cdnlab.net.ledger import LEDGER_DIR, Ledger, process_start_time
from cdnlab.topology import load_topology
from tests.net.conftest import alive, recorded_processes

pytestmark = pytest.mark.root

HOLD_UP = textwrap.dedent("""
    import sys, time
    from cdnlab.net.emulation import Emulation
    from cdnlab.topology import load_topology
    with Emulation(load_topology("minimal")) as emu:
        print(emu.ledger.path, flush=True)
        time.sleep(600)
""")


def test_an_exception_inside_a_run_tears_everything_down(nothing_left_behind: None) -> None:
    with pytest.raises(RuntimeError, match="boom"), \
            Emulation(load_topology("minimal")) as emu:
        processes = recorded_processes(emu)
        assert len(processes) > 5 and alive(processes) != []
        raise RuntimeError("boom")
    assert alive(processes) == []


def start_held_run() -> tuple[subprocess.Popen[str], Path]:
    run = subprocess.Popen([sys.executable, "-c", HOLD_UP], stdout=subprocess.PIPE, text=True)
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
    left = [p for p in record.processes if process_start_time(int(p["pid"])) == p["start"]]
    assert left, "a SIGKILLed run leaves its node processes (that is what clean is for)"
    assert any(Path(f"/sys/class/net/{i}").exists() for i in record.interfaces)
    done = subprocess.run([sys.executable, "-m", "cdnlab.cli", "clean"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"clean: {len(done.stdout.splitlines()) - 1} leftover item(s) removed" in done.stdout
    assert not ledger_path.exists()
    assert all(process_start_time(int(p["pid"])) != p["start"] for p in record.processes)
    assert not any(Path(f"/sys/class/net/{i}").exists() for i in record.interfaces)
    assert not any(LEDGER_DIR.glob(f"{record.run_id}*"))


def test_a_name_clash_is_refused_before_anything_is_made(nothing_left_behind: None) -> None:
    subprocess.run(["ip", "link", "add", "edge1", "type", "bridge"], check=True)
    try:
        with pytest.raises(Exception, match="edge1 already exist"):
            Emulation(load_topology("minimal")).start()
        assert Path("/sys/class/net/edge1").exists()
    finally:
        subprocess.run(["ip", "link", "del", "edge1"], check=True)
