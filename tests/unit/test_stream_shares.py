"""The streams an edge server counts for its CMSD shares (nodes/edge/shares.py), from
access-log lines as nginx writes them: each session asking for video counts once, audio
and requests without CMCD do not, a session away for a player's duress hold still counts,
and one silent for longer than STREAM_HELD_S is forgotten."""

from __future__ import annotations

from pathlib import Path

from nodes.common import cmcd
from nodes.edge.shares import STREAM_HELD_S, StreamShares


def request(sid: str, began: float, ot: str = "v") -> dict[str, object]:
    return {"time": began + 0.25, "duration_s": 0.25, "client": "10.0.0.1",
            "cmcd": cmcd.query({"sid": sid, "ot": ot, "d": 2000}).partition("=")[2]}


def test_each_session_asking_for_video_is_one_stream(tmp_path: Path) -> None:
    here = StreamShares(tmp_path / "shares")
    for n in range(10):
        here.add(request("steady", 100.0 + 2 * n))
        here.add(request("steady", 100.0 + 2 * n, ot="a"))
    here.add(request("filling", 110.0))
    here.add(request("filling", 110.5))
    here.add(request("audio only", 110.0, ot="a"))
    here.add({"time": 111.0, "client": "10.0.0.2", "cmcd": ""})
    assert here.count(120.0) == 2


def test_an_absent_session_is_held_then_forgotten(tmp_path: Path) -> None:
    here = StreamShares(tmp_path / "shares")
    for n in range(5):
        here.add(request("left", 100.0 + 2 * n))
    assert here.count(108.0 + 10.0) == 1  # a 10 s duress hold: still its share
    assert here.count(108.0 + STREAM_HELD_S + 0.1) == 0


def test_the_shares_written_for_nginx(tmp_path: Path) -> None:
    here = StreamShares(tmp_path / "shares")
    assert here.publish(4.0, 0.8, 0) == {"etp_kbps": 4000, "mb_kbps": 3200}
    assert here.publish(4.0, 0.8, 4) == {"etp_kbps": 1000, "mb_kbps": 800}
    assert (tmp_path / "shares").read_text() == "etp=1000;mb=800\n"
