"""An emulated router's FRR daemons: `python -m nodes.router serve` on a router node, with
the BGP configuration `nodes/router/config.py` renders. The daemons drop root, which clears
the kernel's parent-death signal, so their PIDs (the program's `frr.pids`) go into the
run's ledger once they answer: a killed run's `cdnlab clean` ends them by PID. The daemons
run as user frr, so their files live under /run/cdnlab-frr/<run>/<router>/ (the bundle
may be where frr cannot go); the bundle keeps each router's config and, once it stops,
its daemons' logs (work/<router>/)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from cdnlab.services.base import NodeProgram, ServiceError
from nodes.router.__main__ import VTYSH
from nodes.router.config import BgpRouter

FRR_BASE = Path("/run/cdnlab-frr")  # per run, per router: where user frr can reach


class RouterService(NodeProgram):
    part = "routing"

    def __init__(self, emu: Any, router: BgpRouter, interval_s: float = 1.0,
                 speaker: bool = False) -> None:
        """`speaker`: bgpd alone on a host (`--speaker`), announcing without zebra."""
        self.router = router
        self.run_work = FRR_BASE / emu.run_id
        self.work = self.run_work / router.name
        self.kept = Path(emu.run_dir) / "work" / router.name  # config and logs, in the bundle
        self.config = self.kept / "frr.conf"
        super().__init__(emu, router.name, "nodes.router", [
            "serve", "--config", str(self.config), "--work", str(self.work),
            "--interval", f"{interval_s:g}", "--node", router.name,
            "--epoch", f"{emu.t0:.6f}",
            "--events", str(Path(emu.run_dir) / "events" / f"{router.name}.bgp.jsonl"),
            *(["--speaker"] if speaker else [])],
            f"frr_{router.name}")

    def _reachable(self) -> None:
        """The daemons' directory where user frr can reach it: the bundle may sit below
        directories only root may enter (a home, pytest's), so not there. The run's
        directory under FRR_BASE is in its ledger, removed with the run or by `cdnlab
        clean`."""
        FRR_BASE.mkdir(mode=0o755, exist_ok=True)
        if not self.run_work.exists():
            self.emu.ledger.add_directory(self.run_work)  # recorded before it exists
            self.run_work.mkdir(mode=0o755)
        self.work.mkdir(exist_ok=True)
        self.kept.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self._reachable()
        self.config.write_text(self.router.render())
        pids = self.work / "frr.pids"
        pids.unlink(missing_ok=True)  # a restart's are new
        super().start()
        deadline = time.monotonic() + 20
        while not pids.exists():
            if not self.running or time.monotonic() > deadline:
                raise ServiceError(f"{self.name} on {self.host} did not start its daemons: "
                                   f"{self.stderr_tail()}")
            time.sleep(0.05)
        for pid in pids.read_text().split():
            self.emu.ledger.add_process(int(pid), f"FRR daemon of {self.host}")

    def stop(self, grace_s: float = 5.0) -> int | None:
        """Stop the program (and so its daemons); their logs are kept in the bundle."""
        status = super().stop(grace_s)
        for log in self.work.glob("*.log") if self.work.is_dir() else ():
            shutil.copyfile(log, self.kept / log.name)
        return status

    def originate(self, prefix: str, on: bool) -> None:
        """Start or stop announcing `prefix` (`network` in bgpd's running configuration,
        over its vty socket): the sessions stay up and the change goes out at once."""
        self.configure(["configure terminal", f"router bgp {self.router.asn}",
                        "address-family ipv4 unicast",
                        f"{'' if on else 'no '}network {prefix}"])

    def configure(self, commands: list[str]) -> None:
        """Run vtysh commands, in order, in one session with bgpd (configuration modes
        carry from one to the next); any output is an error."""
        argv = [VTYSH, "--vty_socket", str(self.work)]
        for command in commands:
            argv += ["-c", command]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        said = (done.stdout + done.stderr).strip()
        if done.returncode or said:
            raise ServiceError(f"{self.name} on {self.host}: `{'; '.join(commands)}` "
                               f"failed: {said}")
