"""The program watch on real processes (no root, no network): each exit recorded with its
signal or code, its stderr and its cause, timed by the exit itself."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cdnlab.scenario.watch import ProgramWatch, Watched
from nodes.common.events import EventLog


def _python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)


def _watch(tmp_path: Path, watched: list[Watched]) -> tuple[ProgramWatch, Path]:
    path = tmp_path / "programs.jsonl"
    watch = ProgramWatch(None, EventLog(path, "watch", time.time()),
                         sources=(lambda _emu: watched,))
    watch.start()
    return watch, path


def _records(path: Path) -> dict[str, dict[str, Any]]:
    return {r["program"]: r for r in map(json.loads, path.read_text().splitlines())}


def _stderr_of(process: subprocess.Popen[bytes]) -> Any:
    return lambda: process.stderr.read().decode() if process.stderr else ""


def test_exits_are_recorded_with_their_cause_when_they_happen(tmp_path: Path) -> None:
    killed = _python("import sys, time; print('serving', file=sys.stderr, flush=True); "
                     "time.sleep(60)")
    crashed = _python("import sys; print('bad config', file=sys.stderr); sys.exit(2)")
    finished = _python("pass")
    stopped = _python("import time; time.sleep(60)")
    asked = {"stopped": False}
    watch, path = _watch(tmp_path, [
        Watched("killed", "h1", "dns", killed, _stderr_of(killed), lambda: False),
        Watched("crashed", "h1", "edges", crashed, _stderr_of(crashed), lambda: False),
        Watched("finished", "h2", "players", finished, _stderr_of(finished), lambda: False,
                serves=False, ok_exit_codes=frozenset({0, 1})),
        Watched("stopped", "h2", "probes", stopped, _stderr_of(stopped),
                lambda: asked["stopped"])])
    try:
        time.sleep(1.0)
        killed_at = time.time()
        killed.send_signal(signal.SIGKILL)
        asked["stopped"] = True
        stopped.terminate()
        time.sleep(1.0)
    finally:
        watch.stop()
        for process in (killed, stopped):
            if process.poll() is None:
                process.kill()
                process.wait()
    records = _records(path)
    assert set(records) == {"killed", "crashed", "finished", "stopped"}
    kill = records["killed"]
    assert (kill["signal"], kill["code"], kill["cause"]) == ("SIGKILL", None, "fault")
    assert kill["stderr"] == ["serving"]
    # timed by the exit (pidfd), not by the watch's 0.2 s refresh
    assert abs((watch.log.epoch + kill["t"]) - killed_at) < 0.1, kill
    assert (records["crashed"]["code"], records["crashed"]["cause"]) == (2, "fault")
    assert records["crashed"]["stderr"] == ["bad config"]
    assert records["finished"]["cause"] == "done"
    assert (records["stopped"]["signal"], records["stopped"]["cause"]) == ("SIGTERM",
                                                                          "stopped")
