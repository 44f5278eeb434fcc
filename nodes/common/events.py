"""JSONL event logs, the one output format of every node program.

Each line is one JSON object with `t` (seconds since the run started, from the run's epoch
given on the command line, else since the program started), `node`, `event`, and the
event's own fields. Lines are written whole and flushed, so a reader never sees half a line
and a killed program loses at most the line it was writing.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO


class EventLog:
    def __init__(self, path: Path | None, node: str, epoch: float | None = None) -> None:
        self.node = node
        self.epoch = time.time() if epoch is None else epoch
        self.path = path
        self._lock = threading.Lock()
        self._out: TextIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._out = path.open("a", encoding="utf-8")

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        return self.emit_at(time.time(), event, **fields)

    def emit_at(self, wall: float, event: str, **fields: Any) -> dict[str, Any]:
        """An event that happened at `wall` (epoch seconds), written now: for programs that
        relay another's timed events (the browser viewer's dash.js events)."""
        record = {"t": round(wall - self.epoch, 6), "node": self.node, "event": event,
                  **fields}
        line = json.dumps(record, separators=(",", ":"), default=str)
        with self._lock:
            if self._out is not None:
                self._out.write(line + "\n")
                self._out.flush()
        return record

    def close(self) -> None:
        with self._lock:
            if self._out is not None:
                self._out.close()
                self._out = None


def stderr_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def new_lines(path: Path, offset: int) -> tuple[list[bytes], int]:
    """The whole lines appended to `path` from byte `offset` on, and the offset after them;
    a line still being written waits for the next call. For readers that follow a log."""
    if not path.exists():
        return [], offset
    with path.open("rb") as stream:
        stream.seek(offset)
        data = stream.read()
    complete = data[:data.rfind(b"\n") + 1]
    return complete.splitlines(), offset + len(complete)
