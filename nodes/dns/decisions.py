"""The decision log: one JSON line per answer a policy made, the raw material for "what
share of clients got the lowest-RTT cluster".

    {"t", "node", "event": "answer", "client", "subnet", "service", "cluster", "reason",
     "lowest", "spill_share", "candidates": [{"cluster", "rtt_ms", "load", "usable",
     "why_not"}], …the spill's load figures}

Lines are buffered and written at most every half second (and at exit), so logging keeps
up with tens of thousands of answers a second.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TextIO

from nodes.dns.policies import Decision


class DecisionLog:
    def __init__(self, path: Path | None, node: str, epoch: float) -> None:
        self.node = node
        self.epoch = epoch
        self._out: TextIO | None = path.open("a", encoding="utf-8") if path else None
        self._lines: list[str] = []
        self._last_flush = time.monotonic()

    def answer(self, client: str, subnet: str | None, service: str,
               decision: Decision) -> None:
        if self._out is None:
            return
        record: dict[str, Any] = {
            "t": round(time.time() - self.epoch, 6), "node": self.node, "event": "answer",
            "client": client, "subnet": subnet, "service": service,
            "cluster": decision.cluster, "reason": decision.reason, "lowest": decision.lowest,
            "spill_share": round(decision.spill_share, 4),
            "candidates": [{"cluster": c.cluster, "rtt_ms": c.rtt_ms, "load": c.load,
                            "usable": c.usable, "why_not": c.why_not}
                           for c in decision.candidates], **decision.extra}
        self._lines.append(json.dumps(record, separators=(",", ":")))
        if len(self._lines) >= 4096 or time.monotonic() - self._last_flush > 0.5:
            self.flush()

    def flush(self) -> None:
        if self._out is not None and self._lines:
            self._out.write("\n".join(self._lines) + "\n")
            self._out.flush()
            self._lines.clear()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()
        if self._out is not None:
            self._out.close()
            self._out = None
