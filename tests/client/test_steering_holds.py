"""The Python player's steering client judges a pathway's hold as at the moment the player
capped its choice (`SteeringClient.peek(at)` / `choose(at)`): a hold that ends between the
cap and the request does not send the segment to another cluster than the one whose CMSD
`mb` capped it, while a failure that comes in between still counts. The MPD is a real
steered one, as the origin publishes it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nodes.client.steering import AVOID_S, SteeringClient
from nodes.common.conventions import STEERED_MPD
from nodes.common.dash import parse_mpd
from nodes.origin.profiles import DEFAULT_LADDER
from tests.client.test_player_steering import steered_title


def client(tmp_path: Path) -> tuple[SteeringClient, list[dict[str, Any]]]:
    store = tmp_path / "store"
    steered_title(store, 9, {"a": "a.cluster.cdn.lab:80", "b": "b.cluster.cdn.lab:80"},
                  DEFAULT_LADDER[:2], duration_s=4)
    presentation = parse_mpd((store / "synth-0001" / STEERED_MPD).read_bytes())
    changes: list[dict[str, Any]] = []
    steering = SteeringClient(presentation, "http://a.cluster.cdn.lab/synth-0001/"
                              f"{STEERED_MPD}", lambda event, **kw: changes.append(kw))
    return steering, changes


def test_a_hold_ending_between_cap_and_request_keeps_the_capped_pathway(
        tmp_path: Path) -> None:
    steering, changes = client(tmp_path)
    assert steering.choose().name == "a"
    steering.failed("a", "duress")
    steering.failed_at["a"] -= AVOID_S - 0.2  # said AVOID_S - 0.2 s ago: 0.2 s of hold left
    decided = time.monotonic()  # the cap
    assert steering.peek(decided) == "b"
    time.sleep(0.3)  # the hold is over now
    assert steering.peek() == "a", "asked now, a is usable again"
    assert steering.choose(decided).name == "b", "the request goes where the cap looked"
    assert steering.choose().name == "a"
    assert [(c["pathway"], c["reason"]) for c in changes] == [
        ("a", "start"), ("b", "duress"), ("a", "retry")]


def test_a_failure_after_the_cap_still_counts(tmp_path: Path) -> None:
    steering, _ = client(tmp_path)
    decided = time.monotonic()
    assert steering.peek(decided) == "a"
    steering.failed("a")
    assert steering.choose(decided).name == "b"
