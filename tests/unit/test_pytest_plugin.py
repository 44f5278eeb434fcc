"""cdnlab's pytest plugin, tested with pytest's own pytester: its fixtures and marker are
there for a test file that knows nothing of this repository, and a root test is skipped
with the reason when not root."""

from __future__ import annotations

import pytest

from cdnlab import pytest_plugin


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
