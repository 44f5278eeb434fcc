"""ABR algorithms on constructed states, and the playback buffer and QoE arithmetic."""

from __future__ import annotations

import pytest

from nodes.client.abr import (
    ALGORITHMS,
    AbrState,
    Bba,
    Bola,
    Dynamic,
    Fixed,
    RobustMpc,
    ThroughputRule,
    harmonic_mean,
    make_abr,
)
from nodes.client.buffer import PlaybackBuffer
from nodes.client.qoe import session_metrics

LADDER = (300.0, 750.0, 1200.0, 1850.0, 2850.0, 4300.0)


def state(buffer_s: float = 10.0, throughputs: list[float] | None = None,
          last: int | None = 2, **more: object) -> AbrState:
    return AbrState(LADDER, 4.0, buffer_s, 30.0, throughputs or [], last, 3, 100,
                    **more)  # type: ignore[arg-type]


def test_throughput_rule_takes_the_highest_rung_below_the_safe_harmonic_mean() -> None:
    rule = ThroughputRule()
    assert rule.choose(state(throughputs=[])).quality == 0, "no measurement: lowest"
    samples = [2000.0, 4000.0, 8000.0, 8000.0, 8000.0]
    assert harmonic_mean(samples) == pytest.approx(5 / (1 / 2000 + 1 / 4000 + 3 / 8000))
    # 0.9 × 4705.9 = 4235 kbit/s: 2850 fits, 4300 does not
    assert rule.choose(state(throughputs=samples)).quality == 4
    assert rule.choose(state(throughputs=[50_000.0] * 5)).quality == 5
    assert rule.choose(state(throughputs=[100.0] * 5)).quality == 0
    assert rule.choose(state(throughputs=[100.0] * 10 + [4000.0] * 5)).quality == 4, \
        "only the last five count"


def test_bba_maps_reservoir_cushion_and_above() -> None:
    bba = Bba()
    assert bba.choose(state(buffer_s=4.9)).quality == 0
    assert bba.choose(state(buffer_s=15.0)).quality == 5
    middle = bba.choose(state(buffer_s=10.0)).quality  # halfway: 2300 kbit/s → 1850
    assert LADDER[middle] == 1850.0
    qualities = [bba.choose(state(buffer_s=b / 2)).quality for b in range(0, 40)]
    assert qualities == sorted(qualities), "more buffer never means less quality"


def test_bola_rises_with_the_buffer_and_waits_when_full() -> None:
    bola = Bola(avoid_oscillation=False)
    qualities = [bola.choose(state(buffer_s=b)).quality for b in range(0, 30)]
    assert qualities[0] == 0 and qualities[-1] == 5
    assert qualities == sorted(qualities)
    full = bola.choose(state(buffer_s=30.0))
    assert full.quality == 5 and full.wait_s > 0


def test_bola_o_does_not_switch_up_beyond_the_throughput() -> None:
    guarded = Bola()
    slow = [900.0] * 5  # sustains 750 at most
    assert guarded.choose(state(buffer_s=25.0, throughputs=slow, last=1)).quality == 1
    assert guarded.choose(state(buffer_s=25.0, throughputs=slow, last=4)).quality >= 4, \
        "never forced below where it already is"


def test_robust_mpc_plans_for_the_horizon() -> None:
    mpc = RobustMpc()
    assert mpc.choose(state(throughputs=[])).quality == 0
    assert mpc.choose(state(buffer_s=20.0, throughputs=[20_000.0] * 5, last=5)).quality == 5
    low = RobustMpc().choose(state(buffer_s=2.0, throughputs=[800.0] * 5, last=0))
    assert LADDER[low.quality] <= 800.0, "it would stall otherwise"
    errors = RobustMpc()
    errors.choose(state(throughputs=[4000.0] * 5))
    shaky = errors.choose(state(buffer_s=4.0, throughputs=[4000.0] * 4 + [1000.0], last=4))
    assert shaky.quality < 4, "a large prediction error discounts the estimate"


def test_dynamic_switches_rules_with_hysteresis_and_keeps_quality() -> None:
    dynamic = Dynamic()
    fast = [20_000.0] * 5
    assert dynamic.choose(state(buffer_s=4.0, throughputs=fast, last=0)).quality == 5
    entering = dynamic.choose(state(buffer_s=12.5, throughputs=fast, last=5))
    assert entering.quality == 5, "BOLA starts from the placeholder, not from the bottom"
    assert dynamic._using_bola
    dynamic.choose(state(buffer_s=8.0, throughputs=fast, last=5))
    assert dynamic._using_bola, "between 6 and 12 s it stays with BOLA"
    dynamic.choose(state(buffer_s=5.0, throughputs=fast, last=5))
    assert not dynamic._using_bola


def test_fixed_and_the_registry() -> None:
    assert Fixed().choose(state()).quality == 5
    assert Fixed(quality=1).choose(state()).quality == 1
    assert Fixed(kbps=2000).choose(state()).quality == 3
    assert set(ALGORITHMS) == {"throughput", "bba", "bola", "mpc", "dynamic", "fixed"}
    assert make_abr("bba", reservoir_s=2.0).params()["reservoir_s"] == 2.0
    with pytest.raises(ValueError, match="unknown ABR algorithm 'pensieve'"):
        make_abr("pensieve")
    with pytest.raises(ValueError, match="bad parameters"):
        make_abr("bola", horizon=3)


def test_buffer_starts_drains_stalls_and_resumes() -> None:
    buffer = PlaybackBuffer(startup_s=4.0, resume_s=2.0)
    buffer.add(2.0, now=1.0)
    assert not buffer.playing and buffer.started_at is None
    buffer.add(2.0, now=1.5)
    assert buffer.playing and buffer.started_at == 1.5
    buffer.advance(3.5)
    assert buffer.level_s == pytest.approx(2.0)
    buffer.advance(7.0)  # ran dry at 5.5
    assert not buffer.playing and buffer.level_s == 0
    buffer.add(2.0, now=8.0)
    assert buffer.stalls == [(5.5, 2.5)] and buffer.playing
    assert buffer.played_s == pytest.approx(4.0)


def test_qoe_is_the_linear_model() -> None:
    metrics = session_metrics([300.0, 1200.0, 1200.0, 750.0], [(3.0, 1.5)], 0.4)
    expected = (300 + 1200 + 1200 + 750) / 1000 - 4.3 * 1.5 - (900 + 450) / 1000
    assert metrics["qoe"] == pytest.approx(expected)
    assert metrics["switches"] == 2 and metrics["switch_kbps_mean"] == 675.0
    assert metrics["rebuffer_count"] == 1 and metrics["startup_s"] == 0.4
    assert metrics["avg_bitrate_kbps"] == pytest.approx(862.5, abs=0.1)
