"""The decision log: one JSON line per answer a policy made (a DNS answer, or a steering
manifest: `"event": "steer"`), the raw material for "what share of clients got the
lowest-RTT cluster". `client` is the querier's address (a
recursive resolver's when viewers ask through one), `subnet` the client subnet it sent.

    {"t", "node", "event": "answer", "client", "subnet", "service", "cluster", "reason",
     "lowest", "spill_share", "candidates": [{"cluster", "rtt_ms", "load", "usable",
     "why_not"}], …the spill's load figures}

Lines are buffered and written in chunks of 256 or every half second (and at exit), so
logging keeps up with tens of thousands of answers a second; the candidates' JSON is made
once per candidate list (policies share one list per network and second), the rest per
line.
"""

from __future__ import annotations

import json
import threading
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
        self._strings: dict[str | None, str] = {}
        self._candidate_cache: dict[int, tuple[tuple[Any, ...], str]] = {}
        self._lock = threading.Lock()  # the steering server's threads log here too

    def answer(self, client: str, subnet: str | None, service: str,
               decision: Decision, event: str = "answer",
               more: dict[str, object] | None = None) -> None:
        """One line: `answer` for a DNS answer, `steer` for a steering manifest (with the
        steering server's own fields in `more`)."""
        if self._out is None:
            return
        candidates = self._candidates_json(decision.candidates)
        fields = decision.extra | more if more else decision.extra
        extra = json.dumps(fields, separators=(",", ":"))[1:-1] if fields else ""
        line = (
            f'{{"t":{time.time() - self.epoch:.6f},"node":{self._quoted(self.node)},'
            f'"event":"{event}","client":{self._quoted(client)},'
            f'"subnet":{self._quoted(subnet)},"service":{self._quoted(service)},'
            f'"cluster":{self._quoted(decision.cluster)},"reason":"{decision.reason}",'
            f'"lowest":{self._quoted(decision.lowest)},'
            f'"spill_share":{decision.spill_share:.4f},"candidates":{candidates}'
            f'{"," + extra if extra else ""}}}')
        with self._lock:
            self._lines.append(line)
            if len(self._lines) >= 256 or time.monotonic() - self._last_flush > 0.5:
                self._flush()

    def _quoted(self, text: str | None) -> str:
        found = self._strings.get(text)
        if found is None:
            if len(self._strings) > 65536:
                self._strings.clear()
            found = self._strings[text] = json.dumps(text)
        return found

    def _candidates_json(self, candidates: tuple[Any, ...]) -> str:
        held = self._candidate_cache.get(id(candidates))
        if held is None or held[0] is not candidates:
            if len(self._candidate_cache) > 4096:
                self._candidate_cache.clear()
            text = json.dumps([{"cluster": c.cluster, "rtt_ms": c.rtt_ms, "load": c.load,
                                "usable": c.usable, "why_not": c.why_not} for c in candidates],
                              separators=(",", ":"))
            held = self._candidate_cache[id(candidates)] = (candidates, text)
        return held[1]

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _flush(self) -> None:
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
