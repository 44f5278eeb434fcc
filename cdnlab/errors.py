"""Errors a user can act on: each names the file, the place in it, the problem and the fix.

Every layer of cdnlab (topology specs, traces, the CLI) raises `SpecError` for bad input, so
the command line prints one clear line and exits non-zero instead of a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def choices(name: object, known: Iterable[str], what: str = "") -> str:
    """A fix for an unknown name: the nearest known one first, when one is close, then
    the whole list (`did you mean 'edge_a'? known clusters: edge_a, edge_x`)."""
    options = sorted(str(k) for k in known)
    close = difflib.get_close_matches(str(name), options, n=1, cutoff=0.6)
    listing = f"known{' ' + what if what else ''}: {', '.join(options) or 'none'}"
    return f"did you mean {close[0]!r}? {listing}" if close else listing


class CdnlabError(Exception):
    """Base class of errors cdnlab reports to the user as one line."""


class SpecError(CdnlabError):
    """Bad input in a file the user wrote."""

    def __init__(self, source: str, where: str, problem: str, fix: str = "") -> None:
        self.source = source
        self.where = where
        self.problem = problem
        self.fix = fix
        text = f"{source}: {where}: {problem}" if where else f"{source}: {problem}"
        if fix:
            text += f" (fix: {fix})"
        super().__init__(text)


class EnvironmentProblem(CdnlabError):
    """This machine lacks something the request needs; the message says how to get it."""
