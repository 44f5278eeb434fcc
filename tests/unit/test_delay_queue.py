"""The delay server's per-direction queue (`cdnlab/net/shaping/delayd.c`, driven through
its `--replay` mode, so the code under test is the code that serves links): delay from
arrival, order-keeping jitter, seeded loss."""

from __future__ import annotations

import subprocess

import pytest

from cdnlab.net.shaping import helper


def replay(lines: list[str]) -> list[str]:
    done = subprocess.run([str(helper.ensure_built()), "--replay"], input="\n".join(lines),
                          capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def queue(delay: float = 0, jitter: float = 0, loss: float = 0, seed: int = 1) -> str:
    return f"queue {delay} {jitter} {loss} {seed}"


@pytest.mark.parametrize("values", [(-1, 0, 0), (0, 0, 100), (0, -2, 0)])
def test_bad_impairments_are_refused(values: tuple[float, float, float]) -> None:
    assert replay([queue(*values)])[0] == "error impairment out of range"


def test_packets_are_held_for_their_delay_from_arrival() -> None:
    out = replay([queue(delay=20), "admit 10.001 10.0 1", "due 10.019 10.019",
                  "due 10.020 10.020", "due 10.030 10.030"])
    assert out == ["ok", "keep 10.020000000", "none", "last 1", "none"]


def test_jitter_never_reorders_and_stays_in_bounds() -> None:
    lines = [queue(delay=20, jitter=10)]
    lines += [f"admit {i * 0.0005:.4f} {i * 0.0005:.4f} {i}" for i in range(2000)]
    out = replay([*lines, "due 10 10"])
    releases = [float(line.split()[1]) for line in out[1:-1]]
    assert releases == sorted(releases)
    held = [r - i * 0.0005 for i, r in enumerate(releases)]
    assert min(held) >= 0.010 - 1e-9 and max(held) <= 0.030 + 0.011
    assert max(held) - min(held) > 0.015  # the jitter spreads releases over its range
    assert out[-1] == "last 1999"


@pytest.mark.parametrize("loss", [1.0, 5.0, 30.0])
def test_loss_rate_follows_the_setting(loss: float) -> None:
    out = replay([queue(loss=loss)] + [f"admit 0 0 {i}" for i in range(20000)])
    dropped = out.count("drop")
    assert 100.0 * dropped / 20000 == pytest.approx(loss, abs=0.5)


def test_same_seed_drops_the_same_packets() -> None:
    def run(seed: int) -> list[str]:
        return replay([queue(loss=10, seed=seed)] + [f"admit 0 0 {i}" for i in range(500)])

    assert run(7) == run(7)
    assert run(7) != run(8)
