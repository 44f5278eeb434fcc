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
keeps `mb` until a later response replaces it (dash.js: mb is one of its PERSISTENT_PARAMS;
it keeps one per object type, the Python player one per server named, see
nodes/client/player.py).
"""

from __future__ import annotations

from typing import Any

from nodes.common.sfv import bare_item, split_unquoted

STATIC = "CMSD-Static"
DYNAMIC = "CMSD-Dynamic"


def _parameters(parts: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        params[key.strip()] = bare_item(value.strip()) if sep else True
    return params


def decode_static(value: str) -> dict[str, Any]:
    """A CMSD-Static Dictionary as a dict (a bare key is True)."""
    return _parameters(split_unquoted(value, ","))


def decode_dynamic(value: str) -> list[tuple[Any, dict[str, Any]]]:
    """A CMSD-Dynamic List: (server named, its parameters) per member, in order."""
    members = []
    for member in split_unquoted(value, ","):
        item, *params = split_unquoted(member, ";")
        members.append((bare_item(item), _parameters(params)))
    return members


def nearest(headers: dict[str, str]) -> dict[str, Any]:
    """The parameters of the last CMSD-Dynamic member of a response (lower-case header
    names, as the player's HTTP client keeps them); {} when there is none."""
    return nearest_member(headers)[1]


def nearest_member(headers: dict[str, str]) -> tuple[Any, dict[str, Any]]:
    """The last CMSD-Dynamic member of a response: (the server it names, its
    parameters); (None, {}) when there is none."""
    value = headers.get(DYNAMIC.lower())
    members = decode_dynamic(value) if value else []
    return members[-1] if members else (None, {})
