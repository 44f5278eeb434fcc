"""Timeline events on a `routing: bgp` topology (`cdnlab.scenario.timeline` with real FRR
daemons, two_isp_bgp): cutting ISP B's preferred private link to the cloud moves its
routes to the IXP, BGP's convergence is logged, and the true RTTs the run judges by
follow the kernels' new routes (b1 → edge_c: 70 ms by policy, 48 ms once the link is
gone, which ping confirms); restoring the link brings the policy's routes back."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from cdnlab.measure.fidelity import measure_rtt
from cdnlab.net.emulation import Emulation
from cdnlab.scenario.spec import Event
from cdnlab.scenario.timeline import Timeline
from cdnlab.topology import load_topology
from nodes.common.events import EventLog

pytestmark = pytest.mark.root


def run_events(emu: Emulation, events: list[Event], log: EventLog,
               truths: list[float]) -> list[dict[str, Any]]:
    """Apply `events` through a timeline and wait for it (and every change it started to
    settle); the events it logged."""
    assert log.path is not None
    start = len(log.path.read_text().splitlines()) if log.path.exists() else 0
    timeline = Timeline(events, emu, time.time(), log, {},
                        lambda: truths.append(emu.paths.expected_rtt_ms("edge_c_1", "b1")))
    timeline.start()
    timeline.join(timeout=120)
    assert not timeline.is_alive() and timeline.errors == []
    return [json.loads(line) for line in log.path.read_text().splitlines()[start:]]


def test_a_cut_link_moves_bgp_routes_and_the_truth_follows(nothing_left_behind: None,
                                                          tmp_path: Path) -> None:
    log = EventLog(tmp_path / "engine.jsonl", "engine")
    with Emulation(load_topology("two_isp_bgp")) as emu, contextlib.closing(log):
        assert emu.paths.expected_rtt_ms("edge_c_1", "b1") == pytest.approx(70.0, abs=0.5)
        truths: list[float] = []
        logged = run_events(emu, [Event(0, "link_down", ["isp_b", "cloud"])], log, truths)
        (converged,) = [e for e in logged if e["event"] == "bgp_converged"]
        assert converged["cause"] == "link isp_b–cloud cut" and converged["at"] == 0
        assert 0 < converged["convergence_s"] < 30, converged
        assert {"isp_b", "cloud"} <= set(converged["routers_changed"])
        # the IXP still joins everything but the cut link's own subnet (to isp_a, the one
        # router not on it)
        cut = emu.topology.link("isp_b", "cloud").index
        subnet = next(str(s.subnet) for s in emu.plan.segments if cut in s.links)
        assert converged["unreachable"] == {"isp_a": [subnet]}
        # the truth recorded once the routes settled: the way through the IXP
        assert truths == [pytest.approx(48.0, abs=0.5)]
        (sample,) = measure_rtt(emu, [("b1", "edge_c_1")])
        assert sample.received == sample.sent and \
            sample.min_ms == pytest.approx(48.0, rel=0.05), sample

        logged = run_events(emu, [Event(0, "link_up", ["isp_b", "cloud"])], log, truths)
        (converged,) = [e for e in logged if e["event"] == "bgp_converged"]
        assert converged["cause"] == "link isp_b–cloud restored"
        assert truths[-1] == pytest.approx(70.0, abs=0.5)
        (sample,) = measure_rtt(emu, [("b1", "edge_c_1")])
        assert sample.min_ms == pytest.approx(70.0, rel=0.05), sample
