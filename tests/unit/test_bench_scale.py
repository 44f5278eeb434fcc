"""`bench scale`'s steps: a step the host alone broke is measured again, up to
`HOST_ATTEMPTS` times, and one the emulator broke ends the steps at once. The runs
themselves are `tests/net/test_cli_root.py`'s; here each step's verdict is the real
verdict's judgement of made-up monitor samples, so the loop is seen on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cdnlab.bench import scale
from cdnlab.measure import verdict
from tests.unit.test_pytest_plugin import judged


def fidelity(steal: float, wake_us: float) -> dict[str, Any]:
    return judged(steal, wake_us)["fidelity"]


def steps(monkeypatch: pytest.MonkeyPatch, script: dict[int, list[dict[str, Any]]],
          keep: Path | None = None) -> list[tuple[int, str]]:
    """Run `bench scale` with each step's verdicts, in order, taken from `script`; the
    (viewers, bundle directory) of every step made."""
    made: list[tuple[int, str]] = []

    def step(viewers: int, play_s: float, shaping: str, cpu_awake: str,
             out: Path) -> dict[str, Any]:
        made.append((viewers, str(out)))
        judged = script[viewers].pop(0)
        return {"viewers": viewers, "playing_peak": viewers, "ok": judged["ok"],
                "backend": "nfqueue", "limit": scale.limit_of(judged),
                "host_only": verdict.limited_by_host(judged),
                "cpu_busy_max": 0.3, "wake_p99_us_max": 50.0, "qoe_per_s": 1.0,
                "rebuffer_s": 0.0, "completed": f"{viewers}/{viewers}"}

    monkeypatch.setattr(scale, "step", step)
    assert scale.run(quick=True, shaping="auto", cpu_awake="auto", most=8, keep=keep) == 0
    return made


def test_a_step_the_host_broke_is_measured_again(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    good, host = fidelity(0.0, 50.0), fidelity(0.05, 50.0)
    made = steps(monkeypatch, {2: [good], 4: [host, host, good], 8: [good]})
    assert [v for v, _ in made] == [2, 4, 4, 4, 8]
    assert len({out for v, out in made if v == 4}) == 3, "each attempt its own bundle"
    printed = capsys.readouterr().out
    assert "4 viewers again: the host alone broke the step (host_steal)" in printed
    assert printed.splitlines()[-1] == "scale: viewers_max=8 backend=nfqueue limit=none"


def test_the_host_gets_three_attempts_and_the_emulator_one(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    host, own = fidelity(0.05, 50.0), fidelity(0.0, 1500.0)
    made = steps(monkeypatch, {2: [host] * verdict.HOST_ATTEMPTS})
    assert [v for v, _ in made] == [2] * verdict.HOST_ATTEMPTS
    assert capsys.readouterr().out.splitlines()[-1].endswith("limit=host_steal")
    made = steps(monkeypatch, {2: [fidelity(0.0, 50.0)], 4: [own]})
    assert [v for v, _ in made] == [2, 4], "the emulator's own failure ends the steps"
    assert capsys.readouterr().out.splitlines()[-1] == \
        "scale: viewers_max=2 backend=nfqueue limit=timer_late"


def test_a_step_with_wrong_rtts_at_its_end_names_the_rtt_check(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = fidelity(0.0, 50.0) | {"ok": False, "rtt_ok": False}  # no invariant broken
    made = steps(monkeypatch, {2: [fidelity(0.0, 50.0)], 4: [wrong]})
    assert [v for v, _ in made] == [2, 4]
    assert capsys.readouterr().out.splitlines()[-1] == \
        "scale: viewers_max=2 backend=nfqueue limit=rtt_check"


def test_keep_puts_every_step_in_the_named_directory(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    good, host = fidelity(0.0, 50.0), fidelity(0.05, 50.0)
    kept = tmp_path / "kept"
    made = steps(monkeypatch, {2: [good], 4: [host, good], 8: [good]}, keep=kept)
    assert [out for _, out in made] == [str(kept), str(kept), str(kept / "attempt-2"),
                                        str(kept)]
    assert capsys.readouterr().out.splitlines()[-1] == f"scale: each step's bundle is in {kept}"
    with pytest.raises(ValueError, match="not an empty directory"):
        steps(monkeypatch, {2: [good]}, keep=tmp_path)
