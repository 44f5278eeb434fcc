"""The browser viewer's pure parts: dash.js's raw events into the Python player's records
(stalls, startup, re-downloads, segment limits, errors), and CMCD written and read as
CTA-5004 and dash.js 5 do."""

from __future__ import annotations

from typing import Any

from nodes.browser.records import convert
from nodes.common import cmcd

# a payload dash.js 5.2.1 sent in this repository's runs (query mode, URL-encoded)
DASHJS_PAYLOAD = ("bl%3D2000%2Cbr%3D750%2Ccid%3D%22t%22%2Cd%3D2000%2Cdl%3D2000%2Cnor%3D%22"
                  "seg-fcda9efc-1-00003.m4s%22%2Cot%3Dv%2Crtp%3D3800%2Csf%3Dd%2Csid%3D%22s1"
                  "%22%2Cst%3Dv%2Ctb%3D1200")


def test_cmcd_reads_dashjs_and_writes_what_dashjs_writes() -> None:
    data = cmcd.decode(DASHJS_PAYLOAD)
    assert data == {"bl": 2000, "br": 750, "cid": "t", "d": 2000, "dl": 2000,
                    "nor": "seg-fcda9efc-1-00003.m4s", "ot": "v", "rtp": 3800, "sf": "d",
                    "sid": "s1", "st": "v", "tb": 1200}
    # alphabetical keys, quoted strings, bare tokens and integers: byte for byte dash.js's
    assert cmcd.query(data) == f"CMCD={DASHJS_PAYLOAD}"


def test_cmcd_booleans_escapes_and_commas_in_strings() -> None:
    payload = cmcd.encode({"su": True, "bs": False, "sid": 'a,"b"\\c', "ot": "a",
                           "mtp": 4812.6, "nor": None})
    assert payload == 'mtp=4813,ot=a,sid="a,\\"b\\"\\\\c",su'
    assert cmcd.decode(payload) == {"mtp": 4813, "ot": "a", "sid": 'a,"b"\\c', "su": True}


LADDER = {"kind": "ladder", "wall": 100.1,
          "video": [{"id": "0", "bandwidth": 300000}, {"id": "1", "bandwidth": 750000}],
          "audio": [{"id": "2", "bandwidth": 128000}]}


def fragment(wall: float, track: str, index: int, rep: str, url: str) -> dict[str, Any]:
    return {"kind": "fragment", "wall": wall, "media_type": track, "index": index,
            "representation": rep, "url": f"http://video.cdn.lab/t/{url}?CMCD=x", "bytes": 1000,
            "asked": wall - 0.2, "done": wall, "buffer_s": 2.0, "throughput_kbps": 900}


def response(wall: float, url: str, ip: str) -> dict[str, Any]:
    return {"kind": "response", "wall": wall, "url": f"http://video.cdn.lab/t/{url}?CMCD=y",
            "status": 200, "ip": ip, "cache": "HIT", "cluster": None}


def raw_session(end: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"kind": "browser", "wall": 99.0, "pid": 1, "version": "Chrome/1"},
        {"kind": "session_start", "wall": 100.0, "version": "5.2.1"},
        {"kind": "waiting", "wall": 100.05, "position": 0},  # before the first frame
        response(100.29, "v0-1", "10.0.1.2"), fragment(100.3, "video", 0, "0", "v0-1"),
        LADDER,
        response(100.39, "a-1", "10.0.1.2"), fragment(100.4, "audio", 0, "2", "a-1"),
        {"kind": "playing", "wall": 100.5, "position": 0.0},
        response(100.59, "v1-1", "10.0.1.3"), fragment(100.6, "video", 0, "1", "v1-1"),
        response(100.69, "v0-2", "10.0.1.3"), fragment(100.7, "video", 1, "0", "v0-2"),
        {"kind": "buffer_empty", "wall": 103.9, "media_type": "audio"},
        {"kind": "waiting", "wall": 104.0, "position": 3.5},
        {"kind": "playing", "wall": 105.5, "position": 3.5},
        response(105.59, "v1-3", "10.0.1.3"), fragment(105.6, "video", 2, "1", "v1-3"),
        end]


def test_records_follow_the_python_players_definitions() -> None:
    got = convert(raw_session({"kind": "ended", "wall": 110.0, "position": 6.0}), "s", "t",
                  "dashjs", {"10.0.1.2": "edge_a", "10.0.1.3": "edge_a"}, 2.0)
    video = [f for _w, e, f in got.records if e == "segment"]
    audio = [f for _w, e, f in got.records if e == "audio_segment"]
    assert [(v["segment"], v["bitrate_kbps"], v["replaced"]) for v in video] == [
        (0, 300.0, False), (0, 750.0, True), (1, 300.0, False), (2, 750.0, False)]
    assert [v["server"] for v in video] == ["10.0.1.2", "10.0.1.3", "10.0.1.3", "10.0.1.3"]
    assert video[0]["cluster"] == "edge_a" and video[0]["cache"] == "HIT"
    assert [v["quality"] for v in video] == [0, 1, 0, 1]
    assert len(audio) == 1 and audio[0]["bitrate_kbps"] == 128.0
    assert video[0]["start_s"] == 0.1 and video[0]["download_s"] == 0.2
    metrics = got.metrics
    # startup from dash.js's start to the first frame; the wait before it is not a stall
    assert metrics["startup_s"] == 0.5
    assert metrics["rebuffer_count"] == 1 and metrics["rebuffer_s"] == 1.5
    assert metrics["stalls_by_track"] == {"video": 0, "audio": 1}
    # what was played: each index's last download (750, 300, 750), switches between them
    assert metrics["segments"] == 3 and metrics["avg_bitrate_kbps"] == 600.0
    assert metrics["switches"] == 2 and metrics["downloads"] == 4
    assert metrics["completed"] and metrics["ended_by"] == "ended"
    assert metrics["player"] == "dashjs" and metrics["wall_s"] == 10.0


def test_a_limit_counts_only_what_was_played_and_an_error_is_not_completed() -> None:
    limited = convert(raw_session({"kind": "limit_reached", "wall": 106.0}), "s", "t",
                      "dashjs", {}, 2.0, limit=2)
    assert limited.metrics["segments"] == 2 and limited.metrics["completed"]
    failed = convert(raw_session({"kind": "error", "wall": 106.0, "code": 25,
                                  "message": "MPD unavailable"}), "s", "t", "dashjs", {}, 2.0)
    assert not failed.metrics["completed"] and failed.metrics["error"] == "MPD unavailable"
    silent = convert(raw_session({"kind": "console", "wall": 106.0}), "s", "t", "dashjs",
                     {}, 2.0)
    assert not silent.metrics["completed"] and "without dash.js's end event" in \
        silent.metrics["error"]
