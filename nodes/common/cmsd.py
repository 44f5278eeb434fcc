"""Common Media Server Data (CTA-5006): what an edge tells the player about a response and
about itself, and how cdnlab's players read it. The edges write it (nginx, see
`nodes/edge/sites.py`); the Python player reads it here.

Two response headers, each an RFC 8941 structured field:

    CMSD-Static   a Dictionary, fixed for the object:   ot=v,sf=d,st=v
    CMSD-Dynamic  a List, one member per server on the way, the last the nearest to the
                  player; each a String naming the server, with parameters:
                  "edge_a";etp=42000;mb=9000;du

Keys cdnlab's edges send, with their units (CTA-5006 section 4):

    ot   object type: m manifest, v video, a audio, i init, o other  (Static)
    sf   streaming format: d (DASH)                                  (Static)
    st   stream type: v (on demand)                                  (Static)
    etp  estimated throughput to this client, kbit/s                 (Dynamic)
    mb   maximum suggested bitrate, kbit/s                           (Dynamic)
    du   duress: the server is overloaded (a bare key: true)         (Dynamic)

A player reads the last member of CMSD-Dynamic (dash.js's CmsdModel does the same) and
keeps `mb` until a later response replaces it (dash.js: mb is one of its PERSISTENT_PARAMS).
"""

from __future__ import annotations

from typing import Any

STATIC = "CMSD-Static"
DYNAMIC = "CMSD-Dynamic"


def _split(text: str, separator: str) -> list[str]:
    """`text` split on `separator` outside double quotes (a `\\` escapes inside them)."""
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _bare_item(text: str) -> Any:
    """An RFC 8941 bare item: a quoted string, a boolean (?1/?0), an integer or decimal,
    else a token (kept as str)."""
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if text in ("?1", "?0"):
        return text == "?1"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _parameters(parts: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        params[key.strip()] = _bare_item(value.strip()) if sep else True
    return params


def decode_static(value: str) -> dict[str, Any]:
    """A CMSD-Static Dictionary as a dict (a bare key is True)."""
    return _parameters(_split(value, ","))


def decode_dynamic(value: str) -> list[tuple[Any, dict[str, Any]]]:
    """A CMSD-Dynamic List: (server named, its parameters) per member, in order."""
    members = []
    for member in _split(value, ","):
        item, *params = _split(member, ";")
        members.append((_bare_item(item), _parameters(params)))
    return members


def nearest(headers: dict[str, str]) -> dict[str, Any]:
    """The parameters of the last CMSD-Dynamic member of a response (lower-case header
    names, as the player's HTTP client keeps them); {} when there is none."""
    value = headers.get(DYNAMIC.lower())
    if not value:
        return {}
    members = decode_dynamic(value)
    return members[-1][1] if members else {}
