"""Why a session failed, in a few words a run's summary can count: each session record keeps
its `error` (the detail) and its `failure` (one of the reasons below), so a fault in a run
shows as the failures it explains ("no DNS answer", not a lower completion rate)."""

from __future__ import annotations

import asyncio
import errno
from dataclasses import dataclass

from nodes.client.dnsclient import ResolveError, ServerFailed

NO_DNS_ANSWER = "no DNS answer"  # every nameserver timed out, refused or failed (SERVFAIL)
DNS_ERROR = "DNS error"  # an answer, but no address in it (NXDOMAIN, no A record)
CONNECTION_REFUSED = "connection refused"
CONNECTION_RESET = "connection reset"  # closed or reset mid-response
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"  # no route (a link down), host unreachable
HTTP_5XX = "HTTP 5xx"
HTTP_4XX = "HTTP 4xx"
BAD_MANIFEST = "bad manifest"
DID_NOT_END = "did not end"  # the player was stopped (or killed) before the session ended
OTHER = "other"

REASONS = (NO_DNS_ANSWER, DNS_ERROR, CONNECTION_REFUSED, CONNECTION_RESET, TIMEOUT,
           UNREACHABLE, HTTP_5XX, HTTP_4XX, BAD_MANIFEST, DID_NOT_END, OTHER)

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


@dataclass(frozen=True)
class Failure:
    reason: str  # one of REASONS
    detail: str


def reason_of(error: BaseException | None, status: int | None = None) -> str:
    """The reason for an exception a request or resolution ended with, or for an HTTP
    status that ended a session."""
    if status is not None:
        return HTTP_5XX if status >= 500 else HTTP_4XX
    if isinstance(error, ServerFailed):
        return NO_DNS_ANSWER
    if isinstance(error, ResolveError):
        return DNS_ERROR
    if isinstance(error, ConnectionRefusedError):
        return CONNECTION_REFUSED
    if isinstance(error, (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError,
                          ConnectionAbortedError)):
        return CONNECTION_RESET
    if isinstance(error, TimeoutError):
        return TIMEOUT
    if isinstance(error, OSError) and error.errno in _UNREACHABLE:
        return UNREACHABLE
    text = str(error)
    if text.startswith("HTTP 5"):
        return HTTP_5XX
    if text.startswith("HTTP 4"):
        return HTTP_4XX
    if type(error).__name__ == "ManifestError":
        return BAD_MANIFEST
    return OTHER


# Chromium's net error names (net/base/net_error_list.h) in a browser viewer's messages
_CHROMIUM = (("ERR_NAME_NOT_RESOLVED", NO_DNS_ANSWER),
             ("ERR_NAME_RESOLUTION_FAILED", NO_DNS_ANSWER),
             ("ERR_CONNECTION_REFUSED", CONNECTION_REFUSED),
             ("ERR_CONNECTION_RESET", CONNECTION_RESET), ("ERR_EMPTY_RESPONSE", CONNECTION_RESET),
             ("ERR_TIMED_OUT", TIMEOUT), ("ERR_CONNECTION_TIMED_OUT", TIMEOUT),
             ("ERR_ADDRESS_UNREACHABLE", UNREACHABLE), ("ERR_NETWORK_CHANGED", UNREACHABLE))


def reason_of_message(message: str | None, ended: bool) -> str:
    """The reason for a browser viewer's failed session, from dash.js's or Chromium's
    message; `ended`: whether dash.js reported an end at all."""
    if not ended:
        return DID_NOT_END
    text = message or ""
    return next((reason for name, reason in _CHROMIUM if name in text), OTHER)
