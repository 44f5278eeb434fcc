"""The agent's tether, run here as on another machine: a program under it gets the signals
named on its stdin, its exit status comes back, and it ends when the tether's parent (the
ssh session) dies; remote `Popen` objects send their signals that way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from cdnlab.machines.remote import tethered
from cdnlab.net.ledger import process_start_time

# reports each SIGHUP, exits 7 on SIGTERM
PROGRAM = textwrap.dedent("""
    import signal, sys, time
    signal.signal(signal.SIGHUP, lambda *_: print("hup", flush=True))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
    print("ready", flush=True)
    while True:
        time.sleep(0.05)
""")


def tether(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cdnlab.machines.agent", "tether", "", "--",
                             *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_signals_named_on_stdin_reach_the_program_and_its_status_returns() -> None:
    process = tether(sys.executable, "-c", PROGRAM)
    assert process.stdout is not None and process.stdin is not None
    assert process.stdout.readline().strip() == "ready"
    process.stdin.write("HUP\n")
    process.stdin.flush()
    assert process.stdout.readline().strip() == "hup"
    process.stdin.write("TERM\n")
    process.stdin.flush()
    assert process.wait(10) == 7


def test_a_closed_stdin_leaves_the_program_running_until_it_ends() -> None:
    process = tether(sys.executable, "-c", "import time; time.sleep(0.5); raise SystemExit(3)")
    assert process.stdin is not None
    process.stdin.close()  # what communicate() does: not a stop
    assert process.wait(10) == 3


def test_remote_popen_signals_go_through_the_tether() -> None:
    process = tethered(tether(sys.executable, "-c", PROGRAM))
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGHUP)
    assert process.stdout.readline().strip() == "hup"
    process.terminate()
    assert process.wait(10) == 7


def test_kill_ends_a_session_whose_far_end_does_not_answer() -> None:
    """A session that ignores the KILL line (a wedged machine) is itself ended."""
    process = tethered(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                        stdin=subprocess.PIPE))
    try:
        process.kill()
        assert process.wait(10) == -9
    finally:
        if process.poll() is None:  # the check failed: end it here, as nothing else will
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def test_the_program_ends_when_the_session_dies() -> None:
    """The tether's parent stands for the ssh session: SIGKILL it, and the tether ends
    the program (SIGTERM) by the kernel's parent-death signal."""
    session = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import subprocess, sys, time
            child = subprocess.Popen([sys.executable, "-m", "cdnlab.machines.agent",
                                      "tether", "", "--", sys.executable, "-c",
                                      {PROGRAM!r}], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
            assert child.stdout.readline().strip() == "ready"
            print(child.pid, flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    assert session.stdout is not None
    tether_pid = int(session.stdout.readline())
    children = Path(f"/proc/{tether_pid}/task/{tether_pid}/children").read_text().split()
    program, started = int(children[0]), process_start_time(int(children[0]))
    tether_started = process_start_time(tether_pid)
    os.kill(session.pid, signal.SIGKILL)
    session.wait()
    try:
        deadline = time.monotonic() + 10
        while process_start_time(program) == started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process_start_time(program) != started, "the program outlived its session"
        deadline = time.monotonic() + 10
        while process_start_time(tether_pid) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process_start_time(tether_pid) is None
    finally:  # a failure leaves nothing running: exactly these two, if still theirs
        for pid, start in ((program, started), (tether_pid, tether_started)):
            if process_start_time(pid) == start:
                os.kill(pid, signal.SIGKILL)
