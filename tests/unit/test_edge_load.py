"""The edge's load over a window (`nodes/edge/monitor.py` SentWindow: the rate over the
last whole intervals the window holds) and over its cluster (`cluster_figures`: its
servers' together), which CMSD's `du` and `mb` and the overload figures read."""

from __future__ import annotations

import pytest

from nodes.edge.monitor import SentWindow, cluster_figures


def test_a_window_of_one_interval_is_each_samples_own_rate() -> None:
    window = SentWindow(1.0, 1.0)
    window.add(0.0, 0)
    assert window.add(1.0, 125_000) == pytest.approx((1.0, 1.0))
    assert window.add(2.0, 125_000) == pytest.approx((0.0, 1.0))


def test_a_window_of_two_intervals_averages_a_burst_and_the_idle_second_after_it() -> None:
    window = SentWindow(2.0, 1.0)
    window.add(0.0, 0)
    assert window.add(1.0, 250_000) == pytest.approx((2.0, 1.0)), "one interval so far"
    assert window.add(2.0, 250_000) == pytest.approx((1.0, 2.0))
    assert window.add(3.0, 250_000) == pytest.approx((0.0, 2.0)), "the burst left it"
    assert window.add(4.5, 437_500) == pytest.approx((0.6, 2.5)), "a late sample's span"


def test_a_cluster_is_as_loaded_as_its_servers_together() -> None:
    """Six sessions on one server of two: that server is over its share of the capacity,
    the cluster (whose uplink they share) is not; its streams are both servers'."""
    busy = {"capacity_mbps": 3.0, "utilisation_window": 1.2, "streams": 6}
    idle = {"capacity_mbps": 3.0, "utilisation_window": 0.1, "streams": 0}
    assert cluster_figures(busy, [idle]) == {
        "cluster_utilisation_window": pytest.approx(0.65), "cluster_capacity_mbps": 6.0,
        "cluster_streams": 6}
    assert cluster_figures(idle, [busy])["cluster_streams"] == 6
    alone = cluster_figures(busy, [])  # a sibling that did not answer is left out
    assert alone["cluster_utilisation_window"] == 1.2 and alone["cluster_streams"] == 6
    unequal = cluster_figures({"capacity_mbps": 1.0, "utilisation_window": 1.0},
                              [{"capacity_mbps": 3.0, "utilisation_window": 0.0}])
    assert unequal == {"cluster_utilisation_window": 0.25, "cluster_capacity_mbps": 4.0}
