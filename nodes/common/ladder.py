"""Bitrate ladders: a rung is a bitrate at a resolution, written `750k@640x360`.

Shared by the origin (what it encodes or synthesises), the engine (a scenario's ladder) and
the ABR simulator, so none of them needs another's internals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_RUNG = re.compile(r"^(?P<kbps>\d+)k@(?P<w>\d+)x(?P<h>\d+)$")


class LadderError(ValueError):
    """A rung that cannot be read; the message names where and the expected form."""


@dataclass(frozen=True)
class Rung:
    kbps: int
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.kbps}k@{self.width}x{self.height}"


# The ladder of ABR research (Pensieve, Sabre…): 300–4300 kbit/s, 240p to 1080p.
DEFAULT_LADDER = (Rung(300, 426, 240), Rung(750, 640, 360), Rung(1200, 854, 480),
                  Rung(1850, 1280, 720), Rung(2850, 1920, 1080), Rung(4300, 1920, 1080))


def parse_rung(value: Any, where: str) -> Rung:
    """A rung from `750k@640x360` or `{kbps, width, height}`."""
    if isinstance(value, dict):
        try:
            return Rung(int(value["kbps"]), int(value["width"]), int(value["height"]))
        except (KeyError, TypeError, ValueError) as err:
            raise LadderError(f"{where}: a rung needs kbps, width and height ({err})") from err
    match = _RUNG.match(str(value).strip())
    if not match:
        raise LadderError(f"{where}: rung {value!r} is not of the form 750k@640x360")
    rung = Rung(int(match["kbps"]), int(match["w"]), int(match["h"]))
    if rung.kbps <= 0 or rung.width % 2 or rung.height % 2 or rung.width <= 0:
        raise LadderError(f"{where}: rung {value!r} needs a positive bitrate and an even "
                          "width and height")
    return rung


def fit_to_source(ladder: tuple[Rung, ...], width: int, height: int) -> tuple[Rung, ...]:
    """The rungs a master of `width`x`height` can fill: none above its resolution (encoding
    pixels that were never there costs encoder time and bits and shows nothing), as
    per-title encoding ladders adapt to their source. When every rung is above it, the
    lowest rung at the source's own (even) size."""
    kept = tuple(r for r in ladder if r.width <= width and r.height <= height)
    if kept:
        return kept
    lowest = min(ladder, key=lambda r: r.kbps)
    return (Rung(lowest.kbps, width - width % 2, height - height % 2),)
