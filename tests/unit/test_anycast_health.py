"""When an anycast cluster announces (`cdnlab.scenario.health.announce_now`): never while
down; shed above `withdraw_above`, held off for `hold_s`, then announced again."""

from __future__ import annotations

from cdnlab.scenario.health import announce_now


def test_down_withdraws_and_up_announces_whatever_the_load() -> None:
    assert announce_now(False, 0.1, True, None, 5.0, 0.8, 10.0) == (False, None, "down")
    assert announce_now(True, None, False, None, 6.0, 0.8, 10.0) == (True, None, "up")
    assert announce_now(True, 2.0, True, None, 6.0, None, 10.0) == (True, None, "up"), \
        "without withdraw_above load never withdraws"


def test_overload_sheds_then_holds_then_announces_again() -> None:
    assert announce_now(True, 0.79, True, None, 6.0, 0.8, 10.0) == (True, None, "up")
    assert announce_now(True, 0.95, True, None, 7.0, 0.8, 10.0) == (False, 7.0, "overloaded")
    # withdrawn, its viewers gone: its load says nothing until the hold is over
    assert announce_now(True, 0.0, False, 7.0, 16.9, 0.8, 10.0) == (False, 7.0, "holding")
    assert announce_now(True, 0.0, False, 7.0, 17.0, 0.8, 10.0) == (True, 7.0, "up")
    assert announce_now(True, 0.9, True, 7.0, 19.0, 0.8, 10.0) == (False, 19.0, "overloaded")
