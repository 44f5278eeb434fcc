"""Errors a user can act on: each names the file, the place in it, the problem and the fix.

Every layer of cdnlab (topology specs, traces, the CLI) raises `SpecError` for bad input, so
the command line prints one clear line and exits non-zero instead of a traceback.
"""

from __future__ import annotations


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
