"""The pieces of RFC 8941 structured field values that CMCD (CTA-5004, `cmcd.py`) and CMSD
(CTA-5006, `cmsd.py`) payloads are written in: splitting a list or a member's parameters
outside quoted strings, and reading a bare item."""

from __future__ import annotations

from typing import Any


def split_unquoted(text: str, separator: str) -> list[str]:
    """`text` split on `separator` outside double quotes (a `\\` escapes inside them and is
    kept, for `bare_item` to undo); parts stripped, empty ones dropped."""
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


def unquote_string(text: str) -> str:
    """A quoted string's content, its `\\"` and `\\\\` escapes undone."""
    out, escaped = [], False
    for char in text[1:-1]:
        if escaped or char != "\\":
            out.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def bare_item(text: str) -> Any:
    """A bare item: a quoted string, a boolean (?1/?0), an integer or decimal, else a token
    (kept as str)."""
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return unquote_string(text)
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
