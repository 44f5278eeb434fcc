"""Every ABR algorithm by name (`nodes.common.conventions.ABR_ALGORITHMS`), and `make_abr`,
which the player, the simulator and the scenario's `abr_params` all go through."""

from __future__ import annotations

from typing import Any

from nodes.client.abr import Abr, Bba, Bola, Fixed, RobustMpc, ThroughputRule
from nodes.client.dashjs import DashDynamic

ALGORITHMS: dict[str, type[Abr]] = {cls.name: cls for cls in (
    ThroughputRule, Bba, Bola, RobustMpc, DashDynamic, Fixed)}


def make_abr(name: str, **params: Any) -> Abr:
    try:
        cls = ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown ABR algorithm {name!r} (known: "
                         f"{', '.join(ALGORITHMS)})") from None
    try:
        return cls(**params)
    except TypeError as err:
        raise ValueError(f"{name}: bad parameters {params}: {err}") from None
