"""Reachability: every L3 host pings every other one (engine, measurement)."""

from __future__ import annotations

from typing import Any


def unreachable(emu: Any, count: int = 1, timeout_s: float = 2.0) -> list[tuple[str, str]]:
    """Ping every other L3 host from every host; the (source, target) pairs that failed."""
    hosts = emu.topology.hosts()
    failed: list[tuple[str, str]] = []
    for src in hosts:
        targets = [h for h in hosts if h != src]
        script = " ".join(
            f"(ping -c{count} -W{timeout_s:g} -q {emu.ip(t)} >/dev/null 2>&1 "
            f"|| echo FAIL {t}) &" for t in targets) + " wait"
        out = emu.node(src).cmd(script)
        failed += [(src, line.split()[1]) for line in out.splitlines()
                   if line.startswith("FAIL ")]
    return failed
