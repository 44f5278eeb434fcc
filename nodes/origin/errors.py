"""Why an ingest was refused: one error type carrying the reason and the HTTP status the
ingest endpoint answers with, so the CLI and the endpoint report the same words."""

from __future__ import annotations


class ContentError(Exception):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def disk_full(detail: str) -> ContentError:
    return ContentError(f"disk full while {detail}: nothing was published", 507)
