"""`python -m nodes.router serve --config FRR.conf --work DIR [--speaker] [--interval S]
[--events F] [--node N] [--epoch T]`

An emulated router's routing daemons: Debian's FRR `zebra` (which programs the kernel's
routes) and `bgpd`, each in the foreground in this node's network namespace, with this
router's own config, PID files, zserv socket and vty sockets in DIR. With `--speaker`,
`bgpd` alone without zebra (`-Z`): a host that announces prefixes (an anycast cluster's
server) and keeps its own routes. The daemons drop root
for user frr (FRR's vty group, frrvty, is frr's and not root's), so DIR is made frr's.
Dropping root also clears the kernel's parent-death signal, so the daemons would outlive
this program if it were killed: once both answer, DIR/frr.pids lists them for the engine
to record (its ledger ends them by PID), and the program logs `ready`. Then every interval
a `bgp` event: each neighbour's state and prefixes received (`vtysh --vty_socket DIR -c
"show bgp summary json"`). SIGTERM stops bgpd, then zebra. Exit 2 on bad arguments or a
missing FRR, 3 when a daemon exits on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nodes.common.events import EventLog, stderr_line
from nodes.common.lifecycle import Terminated, exit_on_sigterm, spawn_child

FRR = Path("/usr/lib/frr")
VTYSH = "/usr/bin/vtysh"
DAEMONS = ("zebra", "bgpd")  # in start order; stopped in reverse
USER = "frr"
READY_S = 15.0


def missing() -> list[str]:
    """What this machine lacks to run a router, each with the fix."""
    lacking = [f"{FRR / d}" for d in DAEMONS if not (FRR / d).exists()]
    if not Path(VTYSH).exists():
        lacking.append(VTYSH)
    try:
        pwd.getpwnam(USER)
    except KeyError:
        lacking.append(f"user {USER}")
    return [f"{', '.join(lacking)} (sudo make setup installs Debian's frr)"] if lacking else []


def summary(work: Path) -> dict[str, Any]:
    """bgpd's neighbour summary, as vtysh gives it in JSON; {} when it does not answer."""
    done = subprocess.run([VTYSH, "--vty_socket", str(work), "-c", "show bgp summary json"],
                          capture_output=True, text=True, timeout=5, check=False)
    with contextlib.suppress(ValueError):
        return dict(json.loads(done.stdout or "{}"))
    return {}


def peers(work: Path) -> dict[str, dict[str, Any]]:
    """Per neighbour address: its session state and the prefixes received from it."""
    unicast = summary(work).get("ipv4Unicast") or {}
    return {address: {"state": peer.get("state"), "prefixes": peer.get("pfxRcd", 0)}
            for address, peer in (unicast.get("peers") or {}).items()}


class Daemons:
    def __init__(self, config: Path, work: Path, speaker: bool = False) -> None:
        self.config = config
        self.work = work
        self.speaker = speaker
        self.daemons = ("bgpd",) if speaker else DAEMONS
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def argv(self, daemon: str) -> list[str]:
        work = self.work
        return [str(FRR / daemon), "-u", USER, "-g", USER, "-f", str(self.config),
                "-i", str(work / f"{daemon}.pid"), "-z", str(work / "zserv.api"),
                "--vty_socket", str(work), "--log", f"file:{work / daemon}.log",
                *(["-Z"] if self.speaker else [])]

    def start(self) -> None:
        """Each daemon, waiting for it to answer (zebra's zserv socket, bgpd's vty) before
        the next; FRR's own stderr goes to DIR/<daemon>.out."""
        answers = {"zebra": self.work / "zserv.api", "bgpd": self.work / "bgpd.vty"}
        for daemon in self.daemons:
            with (self.work / f"{daemon}.out").open("wb") as out:
                self.processes[daemon] = spawn_child(self.argv(daemon), stdin=subprocess.DEVNULL,
                                                     stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + READY_S
            while not answers[daemon].exists():
                if self.processes[daemon].poll() is not None or time.monotonic() > deadline:
                    text = (self.work / f"{daemon}.out").read_text(errors="replace")
                    raise RuntimeError(f"{daemon} did not start: {text.strip()[-300:]}")
                time.sleep(0.05)

    def exited(self) -> str | None:
        return next((d for d, p in self.processes.items() if p.poll() is not None), None)

    def stop(self, timeout_s: float = 5.0) -> None:
        for daemon in reversed(self.daemons):
            process = self.processes.get(daemon)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve(args: argparse.Namespace) -> int:
    lacking = missing()
    if lacking:
        stderr_line(f"router: missing {'; '.join(lacking)}")
        return 2
    source = Path(args.config)
    if not source.is_file():
        stderr_line(f"router: no config file {source}")
        return 2
    exit_on_sigterm()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    frr = pwd.getpwnam(USER)
    config = work / "frr.conf"
    if source.resolve() != config.resolve():
        shutil.copyfile(source, config)
    for path in (work, config):
        os.chown(path, frr.pw_uid, frr.pw_gid)
    log = EventLog(Path(args.events) if args.events else None, args.node, args.epoch)
    daemons = Daemons(config, work, args.speaker)
    status = 0
    try:
        daemons.start()
        written = work / "frr.pids.tmp"
        written.write_text("".join(f"{p.pid}\n" for p in daemons.processes.values()))
        written.replace(work / "frr.pids")
        log.emit("ready", daemons={d: p.pid for d, p in daemons.processes.items()})
        while True:
            gone = daemons.exited()
            if gone is not None:
                log.emit("daemon_exit", daemon=gone,
                         code=daemons.processes[gone].returncode)
                stderr_line(f"router: {gone} exited on its own; the router ends with it")
                status = 3
                break
            found = peers(work)
            log.emit("bgp", peers=found,
                     established=sum(1 for p in found.values() if p["state"] == "Established"),
                     prefixes=sum(int(p["prefixes"] or 0) for p in found.values()))
            time.sleep(args.interval)
    except RuntimeError as err:
        stderr_line(f"router: {err}")
        status = 2
    except (KeyboardInterrupt, Terminated):
        pass
    finally:
        daemons.stop()
        log.emit("stopped")
        log.close()
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes.router", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--config", required=True, help="the router's frr.conf")
    p.add_argument("--work", required=True, help="its PID files, sockets and logs")
    p.add_argument("--speaker", action="store_true",
                   help="bgpd alone, without zebra: announce, install nothing")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--events")
    p.add_argument("--node", default="router")
    p.add_argument("--epoch", type=float)
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
