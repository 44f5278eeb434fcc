"""`--json`: every command that prints figures can print them as one JSON document of one
shape instead, for scripts:

    {"cdnlab": VERSION, "command": "bench dns", "ok": true, "data": {...}}

`ok` is what the exit status says; `data` is the command's own figures (a bundle's summary,
a fidelity report, a benchmark's result line as a mapping). Whatever the command would
have printed for people goes to stderr meanwhile, so stdout holds the document alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator
from importlib import metadata
from typing import Any


def version() -> str:
    try:
        return metadata.version("cdnlab")
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install .)"


def envelope(command: str, ok: bool, data: Any) -> str:
    return json.dumps({"cdnlab": version(), "command": command, "ok": ok, "data": data},
                      indent=1, default=str)


class _Tee(io.TextIOBase):
    """Writes to stderr, and keeps a copy."""

    def __init__(self) -> None:
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        sys.stderr.write(text)
        return self.copy.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextlib.contextmanager
def people_output_to_stderr() -> Iterator[io.StringIO]:
    """Send what would go to stdout to stderr; the copy of it is yielded."""
    tee = _Tee()
    with contextlib.redirect_stdout(tee):
        yield tee.copy


def result_lines(printed: str, name: str) -> list[dict[str, Any]]:
    """The `NAME: key=value key=value …` lines a benchmark prints its results on (one per
    backend or case), each as a mapping; numbers as numbers, a unit suffix (%, pp) left
    off the number, `–` (not measured) as null."""
    results = []
    for line in printed.splitlines():
        if not line.startswith(f"{name}:") or "=" not in line:
            continue
        found: dict[str, Any] = {}
        for pair in line.partition(":")[2].split():
            key, sep, value = pair.partition("=")
            if not sep:
                continue
            number = value.removesuffix("%").removesuffix("pp")
            if number == "–":  # not measured
                found[key] = None
                continue
            try:
                found[key] = int(number) if number.lstrip("-").isdigit() else float(number)
            except ValueError:
                found[key] = value
        results.append(found)
    return results
