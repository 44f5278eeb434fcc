"""Reading a results bundle: run.json and the JSONL event files the run kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class Bundle:
    def __init__(self, root: Path) -> None:
        self.root = root
        if not (root / "run.json").is_file():
            raise FileNotFoundError(f"{root} is not a results bundle (no run.json)")
        self.run = json.loads((root / "run.json").read_text())
        self.events_dir = root / "events"
        self._parsed: dict[Path, list[dict[str, Any]]] = {}  # each file read once

    def lines(self, pattern: str) -> list[dict[str, Any]]:
        """Every event of the files matching `pattern`; each file is read and parsed once
        per Bundle, however many figures ask for it (the records are shared: read only)."""
        found: list[dict[str, Any]] = []
        for path in sorted(self.events_dir.glob(pattern)):
            if path not in self._parsed:
                self._parsed[path] = self._parse(path)
            found += self._parsed[path]
        return found

    @staticmethod
    def _parse(path: Path) -> list[dict[str, Any]]:
        records = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a kill
        return records

    def engine(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.lines("engine.jsonl") if e.get("event") == event]

    @property
    def scenario_t(self) -> float:
        """Event time `t` (since the network came up) of scenario second 0."""
        start = self.run.get("scenario_epoch")
        epoch = self.run.get("epoch")
        return float(start - epoch) if start and epoch else 0.0
