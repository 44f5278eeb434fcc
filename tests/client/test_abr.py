"""ABR algorithms on constructed states, and the playback buffer and QoE arithmetic."""

from __future__ import annotations

import pytest

from nodes.client import dashjs
from nodes.client.abr import (
    AbrState,
    Bba,
    Bola,
    Fixed,
    RobustMpc,
    ThroughputRule,
    harmonic_mean,
)
from nodes.client.algorithms import ALGORITHMS, make_abr
from nodes.client.buffer import PlaybackBuffer
from nodes.client.dashjs import DashDynamic
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


def bba_buffer_for(f_kbps: float) -> float:
    """The buffer at which BBA-0's f(B) is `f_kbps` (max buffer 30, segments 4: the
    algorithm sees 26 s, reservoir 9.75 s, cushion 13.65 s)."""
    return 9.75 + (f_kbps - 300.0) / 4000.0 * 13.65


def test_bba_0_follows_algorithm_1_with_its_hysteresis() -> None:
    """Huang et al. 2014, Algorithm 1: R_min up to the reservoir, R_max past the cushion,
    and in between the rate moves only when f(B) crosses Rate+ or Rate−."""
    bba = Bba()
    assert bba.choose(state(buffer_s=9.7)).quality == 0
    assert bba.choose(state(buffer_s=23.5)).quality == 5
    at_1500 = bba_buffer_for(1500.0)
    assert bba.choose(state(buffer_s=at_1500, last=2)).quality == 2, "between: holds 1200"
    held = bba.choose(state(buffer_s=at_1500, last=3))
    assert (held.quality, held.rule) == (3, "hold"), "1850 holds above Rate− (1200)"
    up = bba.choose(state(buffer_s=bba_buffer_for(2000.0), last=2))
    assert (up.quality, up.rule) == (3, "rate_up"), "f ≥ Rate+: the highest rung below f"
    down = bba.choose(state(buffer_s=bba_buffer_for(1000.0), last=3))
    assert (down.quality, down.rule) == (2, "rate_down"), "f ≤ Rate−: the lowest above f"


def test_dynamic_uses_dashjs_bola_constants() -> None:
    """dash.js 5 BolaRule on the default ladder: buffer time max(target, 10 + 2·6) = 22 s,
    γp 2.2188, Vp 4.5069; BOLA moves up a rung at 7.25, 10.60, 12.65, 14.60, 16.51 s."""
    bola = dashjs._Bola.for_ladder(list(LADDER), 18.0)
    assert (bola.gp, bola.vp) == (pytest.approx(2.2188, abs=1e-4),
                                  pytest.approx(4.5069, abs=1e-4))
    ups = [bola.min_level_for(q) for q in range(1, 6)]
    assert ups == pytest.approx([7.25, 10.60, 12.65, 14.60, 16.51], abs=0.01)
    assert [bola.quality_for_level(level) for level in (7.2, 7.3, 16.6)] == [0, 1, 5]


def test_dynamic_switches_rules_at_fractions_of_the_buffer_target() -> None:
    """dash.js switches to BOLA above 12 s and back below 6 s of its 18 s buffer target;
    at a 30 s target that is 20 s and 10 s, judged also just after an append."""
    assert pytest.approx(12.0) == dashjs.SWITCH_ON_FRACTION * 18
    assert pytest.approx(6.0) == dashjs.SWITCH_OFF_FRACTION * 18
    dynamic = DashDynamic()
    fast = [20_000.0] * 5
    timing = {"download_s": [0.5] * 5}
    first = dynamic.choose(state(buffer_s=4.0, throughputs=fast, last=0, **timing))
    assert (first.quality, first.rule) == (5, "throughput")
    peaked = dynamic.choose(state(buffer_s=18.0, throughputs=fast, last=5,
                                  level_after_last_s=21.0, **timing))
    assert dynamic._using_bola and peaked.rule == "bola_startup"
    dynamic.choose(state(buffer_s=12.0, throughputs=fast, last=5, **timing))
    assert dynamic._using_bola, "between 10 and 20 s it stays with BOLA"
    dynamic.choose(state(buffer_s=9.0, throughputs=fast, last=5, **timing))
    assert not dynamic._using_bola


def test_dynamic_starts_from_dashjs_initial_bitrate() -> None:
    assert DashDynamic().choose(state(throughputs=[])).quality == 1, "1000 kbit/s: 750"
    assert ThroughputRule().choose(state(throughputs=[])).quality == 0, "Sabre: lowest"
    assert ThroughputRule(initial_kbps=2000).choose(state(throughputs=[])).quality == 3


def test_dynamic_placeholder_is_used_up_before_waiting_and_reset_on_a_stall() -> None:
    dynamic = DashDynamic(guards=False)
    fast, timing = [20_000.0] * 5, {"download_s": [0.5] * 5}
    dynamic.choose(state(buffer_s=12.0, throughputs=fast, last=5, level_after_last_s=22.0,
                         **timing))  # start-up: placeholder up to the top rung's level
    bola = dynamic._bola
    assert bola is not None and bola.placeholder_s > 0
    steady = dynamic.choose(state(buffer_s=21.0, throughputs=fast, last=5,
                                  level_after_last_s=22.0, **timing))
    assert bola.steady and steady.quality == 5
    bola.placeholder_s = 30.0
    capped = dynamic.choose(state(buffer_s=21.0, throughputs=fast, last=5,
                                  level_after_last_s=22.0, waited_s=1.0, **timing))
    assert capped.wait_s == 0.0, "a placeholder left over is spent before any wait"
    dynamic.choose(state(buffer_s=21.0, throughputs=fast, last=5, stalled=True,
                         level_after_last_s=22.0, **timing))
    assert bola.placeholder_s == pytest.approx(0.0, abs=1e-9), "reset when the buffer empties"


def test_dynamic_guards_cap_the_primary_rule() -> None:
    """InsufficientBufferRule: an empty buffer asks for the lowest rung, else at most
    0.7 × throughput × buffer / segment; SwitchHistoryRule: after many drops from a rung,
    at most one below it."""
    dynamic = DashDynamic()
    fast, timing = [4000.0] * 5, {"download_s": [1.0] * 5}
    short = dynamic.choose(state(buffer_s=2.0, throughputs=fast, last=4, **timing))
    assert (short.quality, short.rule) == (2, "insufficient_buffer"), "0.7·4000·2/4 = 1400"
    empty = DashDynamic().choose(state(buffer_s=0.0, throughputs=fast, last=4, **timing))
    assert (empty.quality, empty.rule) == (0, "insufficient_buffer")
    history = DashDynamic()
    history._history.extend([(4, 3), (3, 4)] * 4)
    capped = history.choose(state(buffer_s=28.0, throughputs=[20_000.0] * 5, last=4,
                                  **{"download_s": [0.5] * 5}))
    assert (capped.quality, capped.rule) == (3, "switch_history"), "4 drops from rung 4"


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


def test_fixed_and_the_registry() -> None:
    assert Fixed().choose(state()).quality == 5
    assert Fixed(quality=1).choose(state()).quality == 1
    assert Fixed(kbps=2000).choose(state()).quality == 3
    assert set(ALGORITHMS) == {"throughput", "bba", "bola", "mpc", "dynamic", "fixed"}
    assert make_abr("bba", reservoir=0.2).params()["reservoir"] == 0.2
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
