"""The push fill agent: `python -m nodes.origin fill` on the origin host, placing the most
popular titles on push-mode clusters during a window of scenario time, at a capped rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cdnlab.services.base import NodeProgram
from cdnlab.services.edge import EdgeService


class FillService(NodeProgram):
    part = "fill"
    serves = False  # it ends when its window closes

    def __init__(self, emu: Any, store: Path, edges: list[EdgeService], ranking: list[str],
                 start_s: float, end_s: float, rate_mbps: float, capacity_mb: float,
                 host: str = "origin", name: str = "fill") -> None:
        clusters: dict[str, list[str]] = {}
        for edge in edges:
            clusters.setdefault(edge.cluster, []).append(edge.fill_endpoint)
        plan = {"store": str(store), "window": {"start_s": start_s, "end_s": end_s},
                "ranking": ranking,
                "clusters": [{"name": name_, "servers": servers, "capacity_mb": capacity_mb,
                              "rate_mbps": rate_mbps} for name_, servers in clusters.items()]}
        work = Path(emu.run_dir) / "work" / host
        work.mkdir(parents=True, exist_ok=True)
        self.plan_path = work / f"{name}.yaml"
        self.plan_path.write_text(yaml.safe_dump(plan, sort_keys=False))
        self.events_path = Path(emu.run_dir) / "events" / f"{name}.jsonl"
        super().__init__(emu, host, "nodes.origin", [
            "fill", "--plan", str(self.plan_path), "--events", str(self.events_path),
            "--node", name, "--epoch", f"{emu.t0:.6f}"], name)
