"""A run switches the kernel's autogroups off (cdnlab/net/autogroups.py), and the undo of
the last run relying on that switches them back: on this kernel's real switch, with
ledgers in a scratch directory. A machine where they were off already is left so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cdnlab.net import autogroups
from cdnlab.net.ledger import Ledger, clean_stale
from tests.unit.test_ledger import dead_pid

pytestmark = pytest.mark.root
BACK = "kernel.sched_autogroup_enabled back to 1"


@pytest.fixture
def switch_on() -> Iterator[None]:
    """Autogroups on for the test, as Debian boots; the machine's value again after."""
    if autogroups.enabled() is None:
        pytest.skip("this kernel has no autogroups")
    before = autogroups.SYSCTL.read_text()
    autogroups.SYSCTL.write_text("1\n")
    try:
        yield
    finally:
        autogroups.SYSCTL.write_text(before)


def test_the_last_run_relying_on_it_switches_autogroups_back(tmp_path: Path,
                                                            switch_on: None) -> None:
    first = Ledger("first", tmp_path)
    assert first.switch_autogroups_off()
    assert autogroups.enabled() is False
    assert (tmp_path / autogroups.WAS).read_text().strip() == "1"
    second = Ledger("second", tmp_path)  # starts while the first is up
    assert second.switch_autogroups_off()
    assert BACK not in first.close()
    assert autogroups.enabled() is False, "the second run still relies on them being off"
    assert BACK in second.close()
    assert autogroups.enabled() is True
    assert not (tmp_path / autogroups.WAS).exists()


def test_clean_switches_back_what_a_killed_run_switched_off(tmp_path: Path,
                                                           switch_on: None) -> None:
    killed = Ledger("killed", tmp_path)
    killed.switch_autogroups_off()
    killed.record.owner_pid = dead_pid()
    killed.save()
    bystander = Ledger("bystander", tmp_path)  # alive, not relying on them
    assert clean_stale(tmp_path) == [f"killed: {BACK}"]
    assert autogroups.enabled() is True
    # a run killed after switching them off and before its ledger said so
    assert autogroups.switch_off(tmp_path)
    assert clean_stale(tmp_path) == [BACK]
    assert autogroups.enabled() is True
    bystander.close()


def test_autogroups_off_before_any_run_stay_off(tmp_path: Path, switch_on: None) -> None:
    autogroups.SYSCTL.write_text("0\n")
    run = Ledger("run", tmp_path)
    assert not run.switch_autogroups_off()
    assert autogroups.describe(False) == "off"
    assert run.close() == [] and clean_stale(tmp_path) == []
    assert autogroups.enabled() is False
