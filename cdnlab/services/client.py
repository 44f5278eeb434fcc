"""Viewers: `python -m nodes.client` on a client host, running a plan of DASH sessions that
resolve the service name (at the redirector, or through the host's recursive resolvers) and
stream from the cluster it chooses; or `python -m nodes.browser`, the same for viewers that
are dash.js in headless Chromium. The server → cluster map comes from the topology, so
segment logs name clusters. Both write `<host><tag>.players.jsonl` and a summary."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from cdnlab.services.base import NodeProgram, ServiceError


def cluster_args(emu: Any) -> list[str]:
    return [f"--cluster={name}={','.join(emu.ip(s) for s in servers)}"
            for name, servers in emu.topology.clusters().items()]


class PlayerProgram(NodeProgram):
    """A node program that plays sessions and ends with a summary of them."""

    part = "players"
    serves = False
    ok_exit_codes = frozenset({0, 1})  # 1: a session failed (each says why in its record)

    summary_path: Path
    events_path: Path

    def wait(self, timeout_s: float) -> dict[str, Any]:
        """Wait for every session to end; the summary (every session's metrics)."""
        assert self.process is not None
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired as err:
            raise ServiceError(f"{self.name}: sessions still running after {timeout_s:g} s"
                               ) from err
        if not self.summary_path.exists():
            raise ServiceError(f"{self.name} wrote no summary (exit "
                               f"{self.process.returncode}): {self.stderr_tail()}")
        return dict(json.loads(self.summary_path.read_text()))

    def player_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.events_path.read_text().splitlines()]


class BrowserService(PlayerProgram):
    """dash.js viewers in headless Chromium on one host, resolving through `resolv_conf`."""

    part = "browsers"

    def __init__(self, emu: Any, host: str, service: str, sessions: list[dict[str, Any]],
                 resolv_conf: Path, tag: str = "") -> None:
        work = Path(emu.run_dir) / "work" / host
        work.mkdir(parents=True, exist_ok=True)
        plan = work / f"browser-sessions{tag}.yaml"
        plan.write_text(yaml.safe_dump(sessions, sort_keys=False))
        self.summary_path = work / f"browser-summary{tag}.json"
        self.events_path = Path(emu.run_dir) / "events" / f"{host}-browser{tag}.players.jsonl"
        super().__init__(emu, host, "nodes.browser", [
            "--service", service, "--resolv-conf", str(resolv_conf), "--plan", str(plan),
            "--work", str(work), "--raw-dir", str(Path(emu.run_dir) / "logs"),
            *cluster_args(emu), "--events", str(self.events_path),
            "--summary", str(self.summary_path), "--node", host, "--epoch", f"{emu.t0:.6f}"],
            f"browsers_{host}{tag}")


class ClientService(PlayerProgram):
    def __init__(self, emu: Any, host: str, resolvers: list[str], service: str,
                 sessions: list[dict[str, Any]], tag: str = "",
                 resolv_conf: Path | None = None) -> None:
        """`resolvers`: the nameservers to ask (the redirector itself, without recursive
        resolvers), or `resolv_conf`, the host's resolver configuration; `tag` tells
        apart several player processes on one host (a surge)."""
        work = Path(emu.run_dir) / "work" / host
        work.mkdir(parents=True, exist_ok=True)
        plan = work / f"sessions{tag}.yaml"
        plan.write_text(yaml.safe_dump(sessions, sort_keys=False))
        self.summary_path = work / f"summary{tag}.json"
        events = Path(emu.run_dir) / "events" / f"{host}{tag}.players.jsonl"
        clusters = cluster_args(emu)
        super().__init__(emu, host, "nodes.client", [
            "--service", service, *(["--resolv-conf", str(resolv_conf)] if resolv_conf else
                                    [f"--resolver={r}" for r in resolvers]),
            "--plan", str(plan), *clusters,
            "--events", str(events), "--summary", str(self.summary_path), "--node", host,
            "--epoch", f"{emu.t0:.6f}", "--seed", str(emu.seed)], f"players_{host}{tag}")
        self.events_path = events
