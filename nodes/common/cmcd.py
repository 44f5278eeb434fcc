"""Common Media Client Data (CTA-5004, 2020): what a player tells the CDN about each request,
written and read here for players (which send it) and for the engine (which reads it back
from the servers' logs).

The payload is a comma-separated list of `key=value` in alphabetical key order (§3.2);
a true boolean is the key alone, a string is double-quoted (with `\\` and `"` escaped),
a token (`ot`, `sf`, `st`) and an integer are bare. Query mode (§2.2) sends it URL-encoded
as the single query argument `CMCD` (what dash.js does by default, and what the Python
player does). Keys used by cdnlab's Python player, with their units (§3.3):

    br   encoded bitrate of the object, kbit/s      bl   buffer length, ms, rounded to 100
    bs   buffer starvation since the last request   cid  content id (the title)
    d    object duration, ms                        mtp  measured throughput, kbit/s, to 100
    nor  next object request (relative URL)         ot   object type: m manifest, v video,
    sf   streaming format: d (DASH)                      a audio, i init
    sid  session id                                 st   stream type: v (on demand)
    su   startup (buffer empty, playback not begun) tb   top bitrate of the ladder, kbit/s
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from nodes.common.sfv import split_unquoted, unquote_string

TOKEN_KEYS = {"ot", "sf", "st"}  # bare tokens, never quoted
QUERY_ARG = "CMCD"


def encode(data: dict[str, Any]) -> str:
    """The payload string; keys whose value is None or False are left out (§3.2)."""
    parts = []
    for key in sorted(data):
        value = data[key]
        if value is None or value is False:
            continue
        if value is True:
            parts.append(key)
        elif isinstance(value, str) and key not in TOKEN_KEYS:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'{key}="{escaped}"')
        elif isinstance(value, float):
            parts.append(f"{key}={round(value)}")
        else:
            parts.append(f"{key}={value}")
    return ",".join(parts)


def query(data: dict[str, Any]) -> str:
    """`CMCD=<payload, URL-encoded>`, to append after `?` or `&`."""
    return f"{QUERY_ARG}={quote(encode(data), safe='')}"


def decode(payload: str) -> dict[str, Any]:
    """A payload (URL-encoded or not) as a dict: integers as int, a bare key as True,
    quoted strings unescaped, tokens as str. Commas inside quotes do not split."""
    text = unquote(payload) if "%" in payload else payload
    found: dict[str, Any] = {}
    for item in split_unquoted(text, ","):
        key, sep, value = item.partition("=")
        if not sep:
            found[key] = True
        elif value.startswith('"') and value.endswith('"') and len(value) >= 2:
            found[key] = unquote_string(value)
        else:
            try:
                found[key] = int(value)
            except ValueError:
                found[key] = value
    return found
