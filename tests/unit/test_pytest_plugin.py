"""cdnlab's pytest plugin, tested with pytest's own pytester: its fixtures and marker are
there for a test file that knows nothing of this repository, and a root test is skipped
with the reason when not root; and how often `run_scenario(faithful=True)` makes a run
judged unfaithful again, by whom the verdict blames."""

from __future__ import annotations

from typing import Any

import pytest

from cdnlab import pytest_plugin
from cdnlab.measure import verdict


def test_a_user_test_file_gets_the_fixtures_and_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="""
        import pytest

        @pytest.mark.root
        def test_uses_it(run_scenario, cdnlab_results):
            assert callable(run_scenario) and cdnlab_results.is_dir()
    """)
    result = pytester.runpytest("-p", "cdnlab.pytest_plugin", "--strict-markers")
    result.assert_outcomes(passed=1)
    listed = pytester.runpytest("-p", "cdnlab.pytest_plugin", "--fixtures")
    listed.stdout.fnmatch_lines(["cdnlab_results -- *", "run_scenario -- *"])


def test_root_tests_are_skipped_with_the_reason_when_not_root(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytest_plugin.os, "geteuid", lambda: 1000)
    pytester.makepyfile(test_user="""
        import pytest

        @pytest.mark.root
        def test_needs_root():
            raise AssertionError("ran without root")

        def test_plain():
            pass
    """)
    result = pytester.runpytest_inprocess("-p", "cdnlab.pytest_plugin", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([f"*{pytest_plugin.NOT_ROOT}*"])


def judged(steal: float, wake_us: float) -> dict[str, Any]:
    """A summary's `fidelity` as the real verdict judges four seconds of samples."""
    found = [v.to_dict() for v in verdict.judge(
        [{"t": 10.0 + n, "cpu_busy_mean": 0.3, "wake_p99_us": wake_us, "steal_share": steal}
         for n in range(4)], [], [], 0.0)]
    return {"fidelity": {"ok": not found, "rtt_ok": True, "violations": found}}


def test_a_run_the_host_alone_let_down_is_made_up_to_three_times() -> None:
    host, own, both = judged(0.05, 50.0), judged(0.0, 1500.0), judged(0.05, 1500.0)
    assert verdict.limited_by_host(host["fidelity"])
    assert not verdict.limited_by_host(own["fidelity"])
    # late timers while the host took the time: the host's too
    assert verdict.limited_by_host(both["fidelity"])
    apart = {"ok": False, "violations": [
        {"invariant": "host_steal", "where": None, "from_s": 9.0, "to_s": 13.0},
        {"invariant": "timer_late", "where": None, "from_s": 30.0, "to_s": 34.0}]}
    assert not verdict.limited_by_host(apart), "late timers long after the steal"
    assert not pytest_plugin.run_again(judged(0.0, 50.0), 1), "a faithful run stands"
    # the emulator's own failure: once more, never a third time
    assert [pytest_plugin.run_again(s, 1) for s in (host, own, both)] == [True] * 3
    assert [pytest_plugin.run_again(s, 2) for s in (host, own, both)] == [True, False, True]
    assert not pytest_plugin.run_again(host, verdict.HOST_ATTEMPTS)
    wrong_rtts = host | {"fidelity": host["fidelity"] | {"rtt_ok": False}}
    assert not pytest_plugin.run_again(wrong_rtts, 2), "RTTs wrong at the end: not the host"


def test_a_run_the_host_let_down_every_time_is_reported_not_failed() -> None:
    """`assert_faithful` (tests/scenarios/conftest.py): the emulator's own failure fails the
    test; a run the host alone let down at every one of its attempts is a warning."""
    from tests.scenarios.conftest import HostLimited, assert_faithful

    monitor = {"steal_share_max": 0.05, "cpu_by_part": {
        part: {"cpu_s": 1.0, "peak_share": 0.2} for part in ("edges", "engine", "players")}}
    host, own = ({"fidelity": s["fidelity"] | {"monitor": monitor}}
                 for s in (judged(0.05, 50.0), judged(0.0, 1500.0)))
    tries = ["emulator-limited …"] * verdict.HOST_ATTEMPTS
    with pytest.warns(HostLimited, match="let the run down 3 times"):
        assert_faithful(host | {"verdicts": tries})
    with pytest.raises(AssertionError):
        assert_faithful(own | {"verdicts": tries})
    with pytest.raises(AssertionError):  # attempts left: not yet the host's alone
        assert_faithful(host | {"verdicts": tries[:2]})
