"""Recursive resolvers: `python -m nodes.resolver` (unbound) on each resolver host the
scenario names, pointed at the redirector, with EDNS Client Subnet on or off; and the
resolver configuration (resolv.conf) each client's players read their nameservers from."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cdnlab.services.base import NodeProgram, ServiceError

# what the clients' stub resolvers are told (resolv.conf(5)): a server that does not
# answer within a second is skipped for the next, and the list is tried twice
STUB_OPTIONS = "options timeout:1 attempts:2"


class ResolverService(NodeProgram):
    part = "resolvers"

    def __init__(self, emu: Any, host: str, authority: str, ecs: bool) -> None:
        self._again = (emu, host, authority, ecs)
        self.address = emu.ip(host)
        self.ecs = ecs
        work = Path(emu.run_dir) / "work" / host
        events = Path(emu.run_dir) / "events" / f"{host}.resolver.jsonl"
        self.events_path = events
        super().__init__(emu, host, "nodes.resolver", [
            "serve", "--address", self.address, "--authority", authority, "--work", str(work),
            "--events", str(events), "--node", host, "--epoch", f"{emu.t0:.6f}",
            *(["--ecs"] if ecs else [])], f"resolver_{host}")

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.events_path.exists() and any(
                    json.loads(line).get("event") == "ready"
                    for line in self.events_path.read_text().splitlines()):
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise ServiceError(f"{self.name} on {self.host} did not answer within {timeout_s:g} s:"
                           f" {self.stderr_tail()}")

    def again(self) -> ResolverService:
        """A new, not yet started resolver with the same settings (a timeline
        `resolver_up`); its cache starts empty, as a restarted unbound's does."""
        return ResolverService(*self._again)


def write_resolv_conf(path: Path, nameservers: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"nameserver {address}\n" for address in nameservers) +
                    STUB_OPTIONS + "\n")
    return path
