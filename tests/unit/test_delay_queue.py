"""The delay process's per-direction queue: delay, order-keeping jitter, seeded loss."""

from __future__ import annotations

import random

import pytest

from cdnlab.net.shaping.delayd import QueueState, parse_impairment


def queue(delay: float = 0, jitter: float = 0, loss: float = 0, seed: int = 1) -> QueueState:
    state = QueueState(0, rng=random.Random(seed))
    state.configure(parse_impairment({"delay_ms": delay, "jitter_ms": jitter, "loss_pct": loss}))
    return state


@pytest.mark.parametrize("values", [{"delay_ms": -1}, {"loss_pct": 100}, {"jitter_ms": "x"}])
def test_bad_impairments_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        parse_impairment(values)


def test_packets_are_held_for_their_delay_from_arrival() -> None:
    state = queue(delay=20)
    assert state.admit(now=10.001, arrived=10.0, packet_id=1)
    assert state.due(10.019, 10.019) is None
    assert state.due(10.020, 10.020) == 1
    assert not state.held


def test_jitter_never_reorders_and_stays_in_bounds() -> None:
    state = queue(delay=20, jitter=10)
    releases = []
    for i in range(2000):
        t = i * 0.0005
        state.admit(t, t, i)
        releases.append(state.held[-1][0] - t)
    ordered = [r for r, _ in state.held]
    assert ordered == sorted(ordered)
    assert min(releases) >= 0.010 - 1e-9 and max(releases) <= 0.030 + 0.011
    assert state.due(10.0, 10.0) == 1999


@pytest.mark.parametrize("loss", [1.0, 5.0, 30.0])
def test_loss_rate_follows_the_setting(loss: float) -> None:
    state = queue(loss=loss)
    kept = sum(state.admit(0.0, 0.0, i) for i in range(20000))
    assert state.dropped == 20000 - kept
    assert 100.0 * state.dropped / 20000 == pytest.approx(loss, abs=0.5)


def test_same_seed_drops_the_same_packets() -> None:
    first, second = queue(loss=10, seed=7), queue(loss=10, seed=7)
    assert [first.admit(0, 0, i) for i in range(500)] == [second.admit(0, 0, i)
                                                          for i in range(500)]
    third = queue(loss=10, seed=8)
    assert [first.admit(0, 0, i) for i in range(500)] != [third.admit(0, 0, i)
                                                          for i in range(500)]
