"""What the engine runs on the other machines of a split run, over ssh (`python -m
cdnlab.machines.agent …`; the standard library, the ledger's code and
`nodes.common.lifecycle` only).

    open RUN_ID          make the run's cgroup on this machine; print its path ("" if none)
    check FILE           print this machine's view: Python, project root, FILE's content
    tether CGROUP -- ARGV
                         join the cgroup, run ARGV (stdin /dev/null) and exit with its
                         status; each line on stdin names a signal to pass on to it (`TERM`,
                         `HUP`, `KILL`: the engine's `terminate()`, `send_signal()` and
                         `kill()` of the program); and when the ssh session goes (the engine
                         or the connection died: the kernel's parent-death signal) or this
                         process gets SIGTERM, SIGHUP or SIGINT, end ARGV (SIGTERM, SIGKILL
                         after 5 s)
    undo                 read a ledger record (JSON) on stdin and remove what it names here:
                         the cgroup's processes, bridges, interfaces; print what went

The shell line `join_prefix` is the light form of `tether` for short commands (one `sh`, no
Python start): the command joins the cgroup and is `exec`ed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from nodes.common.lifecycle import die_with_parent

GRACE_S = 5.0
PASSED_SIGNALS = {"TERM": signal.SIGTERM, "HUP": signal.SIGHUP, "KILL": signal.SIGKILL,
                  "INT": signal.SIGINT, "USR1": signal.SIGUSR1, "USR2": signal.SIGUSR2}


def join_prefix(cgroup: str | None) -> list[str]:
    """argv words that make the rest of the argv join `cgroup` and then run (exec)."""
    if not cgroup:
        return []
    return ["sh", "-c", 'echo $$ > "$0/cgroup.procs" 2>/dev/null; exec "$@"', cgroup]


def _join(cgroup: str) -> None:
    if cgroup:
        with contextlib.suppress(OSError):
            Path(cgroup, "cgroup.procs").write_text(f"{os.getpid()}\n")


def tether(cgroup: str, argv: list[str]) -> int:
    _join(cgroup)
    die_with_parent(signal.SIGTERM)  # the ssh session went: end the program (gracefully)
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL)

    def end_child() -> None:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
            try:
                child.wait(GRACE_S)
            except subprocess.TimeoutExpired:
                child.kill()

    def pass_signals() -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in sys.stdin:
                name = line.strip().upper()
                if name in PASSED_SIGNALS and child.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        child.send_signal(PASSED_SIGNALS[name])

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, lambda *_: threading.Thread(target=end_child).start())
    threading.Thread(target=pass_signals, daemon=True).start()
    status = child.wait()
    return status if status >= 0 else 128 - status


def open_run(run_id: str) -> str:
    from cdnlab.net.cgroup import RunCgroup

    cgroup = RunCgroup.create(run_id)
    return str(cgroup.path) if cgroup else ""


def undo(record: dict[str, object]) -> list[str]:
    """Remove what `record` names on this machine, with the ledger's own code."""
    from cdnlab.net.ledger import Ledger, boot_id

    fields = {"run_id": str(record["run_id"]), "owner_pid": 0, "owner_start": None,
              "created": 0.0, "boot": boot_id(),
              **{k: record.get(k) or [] for k in ("ovs_bridges", "linux_bridges",
                                                  "interfaces", "mounts")},
              "cgroup": record.get("cgroup") or None}
    with tempfile.TemporaryDirectory(prefix="cdnlab-undo-") as scratch:
        path = Path(scratch) / "ledger.json"
        path.write_text(json.dumps(fields))
        return Ledger.load(path).close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cdnlab.machines.agent")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("open").add_argument("run_id")
    sub.add_parser("check").add_argument("file")
    tethered = sub.add_parser("tether")
    tethered.add_argument("cgroup")
    tethered.add_argument("argv", nargs=argparse.REMAINDER)
    sub.add_parser("undo")
    args = parser.parse_args(argv)
    if args.action == "open":
        print(open_run(args.run_id))
    elif args.action == "check":
        try:
            shared = Path(args.file).read_text()
        except OSError:
            shared = None
        root = Path(__file__).resolve().parents[2]
        print(json.dumps({"python": sys.executable, "root": str(root), "shared": shared,
                          "root_user": os.geteuid() == 0}))
    elif args.action == "tether":
        command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        return tether(args.cgroup, command)
    elif args.action == "undo":
        for line in undo(json.loads(sys.stdin.read())):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
