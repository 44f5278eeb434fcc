"""An emulated router's FRR daemons: `python -m nodes.router serve` on a router node, with
the BGP configuration `nodes/router/config.py` renders. The daemons drop root, which clears
the kernel's parent-death signal, so their PIDs (the program's `frr.pids`) go into the
run's ledger once they answer: a killed run's `cdnlab clean` ends them by PID. The daemons
run as user frr, so the directories from the run's down to the router's are made
traversable for others (execute, not read: a private temporary run directory is 0700)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from cdnlab.services.base import NodeProgram, ServiceError
from nodes.router.__main__ import VTYSH
from nodes.router.config import BgpRouter


class RouterService(NodeProgram):
    part = "routing"

    def __init__(self, emu: Any, router: BgpRouter, interval_s: float = 1.0,
                 speaker: bool = False) -> None:
        """`speaker`: bgpd alone on a host (`--speaker`), announcing without zebra."""
        self.router = router
        self.work = Path(emu.run_dir) / "work" / router.name / "frr"
        self.config = Path(emu.run_dir) / "work" / router.name / "frr.conf"
        super().__init__(emu, router.name, "nodes.router", [
            "serve", "--config", str(self.config), "--work", str(self.work),
            "--interval", f"{interval_s:g}", "--node", router.name,
            "--epoch", f"{emu.t0:.6f}",
            "--events", str(Path(emu.run_dir) / "events" / f"{router.name}.bgp.jsonl"),
            *(["--speaker"] if speaker else [])],
            f"frr_{router.name}")

    def _traversable(self) -> None:
        """The run's directory and those below it down to the router's work directory
        (which the program gives to frr), executable for group and others."""
        run_dir = Path(self.emu.run_dir)
        self.work.mkdir(parents=True, exist_ok=True)
        below = self.work.relative_to(run_dir).parts
        for depth in range(len(below)):
            path = run_dir.joinpath(*below[:depth])
            path.chmod(path.stat().st_mode | 0o011)

    def start(self) -> None:
        self._traversable()
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

    def originate(self, prefix: str, on: bool) -> None:
        """Start or stop announcing `prefix` (`network` in bgpd's running configuration,
        over its vty socket): the sessions stay up and the change goes out at once."""
        command = f"{'' if on else 'no '}network {prefix}"
        done = subprocess.run(
            [VTYSH, "--vty_socket", str(self.work), "-c", "configure terminal",
             "-c", f"router bgp {self.router.asn}", "-c", "address-family ipv4 unicast",
             "-c", command], capture_output=True, text=True, timeout=10, check=False)
        said = (done.stdout + done.stderr).strip()
        if done.returncode or said:
            raise ServiceError(f"{self.name} on {self.host}: `{command}` failed: {said}")
