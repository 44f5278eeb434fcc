"""When an overloaded cluster's load is the routing mechanism's to answer for
(`cdnlab/results/routing.py` `settled_at`): each session's downloads from the cluster
begun before it had in full a response the cluster began after noticing, or, for a
session that had left already, those begun before the cluster noticed."""

from __future__ import annotations

from typing import Any

from cdnlab.results.routing import settled_at


def download(session: str, start: float, end: float, cluster: str = "x") -> dict[str, Any]:
    return {"session": session, "t": end, "download_s": end - start, "cluster": cluster}


def test_nothing_in_flight_settles_when_noticed() -> None:
    assert settled_at([], "x", 10.0) == 10.0
    assert settled_at([download("s", 8.0, 9.0)], "x", 10.0) == 10.0


def test_a_download_in_flight_when_noticed_is_waited_for() -> None:
    assert settled_at([download("s", 9.0, 13.5)], "x", 10.0) == 13.5


def test_the_first_response_begun_after_noticing_is_waited_for_and_what_overlapped_it() -> None:
    spans = [download("s", 10.5, 12.0),  # the first that could carry the signal
             download("s", 11.0, 12.4),  # audio, asked before that one was in
             download("s", 12.5, 13.0),  # asked after: the session could have left
             download("t", 9.5, 11.0), download("t", 11.2, 11.6)]
    assert settled_at(spans, "x", 10.0) == 12.4
    without_overlap = [s for s in spans if s["t"] != 12.4]
    assert settled_at(without_overlap, "x", 10.0) == 12.0


def test_a_session_that_left_before_it_could_be_told_is_not_waited_for_when_it_returns() -> None:
    spans = [download("s", 9.0, 10.5),  # in flight when noticed
             download("s", 10.6, 11.0, cluster="a"),  # then it went elsewhere
             download("s", 20.0, 23.0)]  # and came back: that load was preventable
    assert settled_at(spans, "x", 10.0) == 10.5
    assert settled_at(spans[:1] + spans[2:], "x", 10.0) == 23.0  # never left: told then
    assert settled_at([download("s", 9.0, 9.5), download("s", 20.0, 23.0)], "x", 10.0) == 23.0
