"""dash.js's own events, as the driver relays them, turned into the records a Python player
writes (`nodes/client/player.py`): `segment` and `audio_segment` per downloaded media
segment, `session_end` with the same QoE metrics (`nodes.client.qoe.session_metrics`), so
summary, plots and report treat both kinds of viewer alike.

Raw kinds (each with `wall`, epoch seconds): `session_start` (the page initialised dash.js),
`ladder` (the representations dash.js parsed), `fragment` (FRAGMENT_LOADING_COMPLETED of a
media segment: index, representation, bytes, request start and end, buffer level,
dash.js's throughput estimate), `response` (who answered a URL: address, status, cache
headers), `quality_requested`, `buffer_empty` (dash.js's BUFFER_EMPTY, per media type),
`waiting` / `playing` (the video element's), `steering` (a steering answer dash.js took:
its PATHWAY-PRIORITY and TTL), `cmsd_duress` (a media response said `du`), and the end:
`ended` (dash.js's PLAYBACK_ENDED), `limit_reached` (the session's segment count played),
`error` (dash.js's ERROR) or the driver's `driver_error`.

Under content steering a fragment's pathway is dash.js's serviceLocation, or the one the
page moved it to after a `du` (`moved_to`); a change of pathway between video fragments is
a `pathway_change` with the Python player's reasons: `start`; `duress` (moved by the page);
`retry` (back once the hold ended); `steering` (dash.js's own move to the pathway the last
steering answer ranks first); `failure` (any other move of dash.js's: it passes over a
service location whose request failed). Steering answers become `steering` records.

Definitions, where dash.js differs from the Python player:
- startup: from the page's `session_start` to the first `playing`;
- a stall: a `waiting` after the first `playing` until the next `playing`; the track that
  ran dry is the media type of the last BUFFER_EMPTY between the previous `playing` and the
  stall's end (`None` if dash.js named none);
- dash.js may download a segment again at another quality (fast switching, see the notes):
  every download is logged (`replaced` marks those whose index was fetched before), and the
  bitrates that count for QoE are each index's last download, in index order, since that
  is what was played.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from nodes.client.failures import reason_of_message
from nodes.client.qoe import session_metrics

ENDS = ("ended", "limit_reached", "error", "driver_error")


@dataclass
class SessionRecords:
    """What one browser session's raw events become: (wall, event, fields) records to
    log, and the session's metrics (the `session_end` fields)."""
    records: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


def _path(url: str) -> str:
    return urlsplit(url).path


def _responses(raw: Iterable[dict[str, Any]]) -> dict[str, deque[dict[str, Any]]]:
    found: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
    for event in raw:
        if event["kind"] == "response":
            found[_path(event["url"])].append(event)
    return found


def _stalls(raw: list[dict[str, Any]]) -> tuple[float | None, list[tuple[float, float]],
                                                list[str | None]]:
    """(wall of the first frame, stalls as (wall start, seconds), the dry track of each)."""
    first: float | None = None
    stalls: list[tuple[float, float]] = []
    dry: list[str | None] = []
    waiting: float | None = None
    empty: str | None = None
    for event in raw:
        kind = event["kind"]
        if kind == "buffer_empty":
            empty = event.get("media_type")
        elif kind == "playing":
            if first is None:
                first = event["wall"]
            elif waiting is not None:
                stalls.append((waiting, event["wall"] - waiting))
                dry.append(empty)
            waiting, empty = None, None
        elif kind == "waiting" and first is not None and waiting is None:
            waiting = event["wall"]
        elif kind in ENDS and waiting is not None:
            stalls.append((waiting, event["wall"] - waiting))
            dry.append(empty)
            waiting = None
    return first, stalls, dry


def convert(raw: list[dict[str, Any]], session: str, title: str, algo: str,
            clusters: dict[str, str], segment_s: float | None,
            limit: int | None = None) -> SessionRecords:
    """The records and metrics of one session from its raw events, in arrival order
    (`segment_s`: the title's segment duration, for the per-second QoE; `limit`: the
    session's segment count, past which buffered segments were never played)."""
    out = SessionRecords()
    start = next((e["wall"] for e in raw if e["kind"] == "session_start"), None)
    ladder = next((e for e in raw if e["kind"] == "ladder"), {"video": [], "audio": []})
    video = sorted(ladder["video"], key=lambda r: r["bandwidth"])
    rank = {r["id"]: n for n, r in enumerate(video)}
    kbps = {r["id"]: r["bandwidth"] / 1000 for r in [*video, *ladder["audio"]]}
    responses = _responses(raw)
    first, stalls, dry = _stalls(raw)
    origin = start if start is not None else (raw[0]["wall"] if raw else 0.0)
    played: dict[int, float] = {}
    seen: set[tuple[str, int]] = set()
    rule: str | None = None
    pathways = _Pathways(session)
    for event in raw:
        if event["kind"] in ("steering", "cmsd_duress"):
            out.records.append((event["wall"], *pathways.other(event)))
        if event["kind"] == "quality_requested" and event.get("media_type") == "video":
            rule = event.get("rule")
        if event["kind"] != "fragment" or event.get("media_type") not in ("video", "audio"):
            continue
        track, index, rep = event["media_type"], int(event["index"]), str(event["representation"])
        answer = responses[_path(event["url"])].popleft() \
            if responses[_path(event["url"])] else {}
        server = answer.get("ip")
        fields: dict[str, Any] = {
            "session": session, "segment": index, "representation": rep,
            "bitrate_kbps": kbps.get(rep), "bytes": event.get("bytes"),
            "start_s": round(event["asked"] - origin, 4) if event.get("asked") else None,
            "download_s": round(event["done"] - event["asked"], 4)
            if event.get("asked") and event.get("done") else None,
            "buffer_s": event.get("buffer_s"), "server": server, "resolved": server,
            "cluster": answer.get("cluster") or clusters.get(server or ""),
            "cache": answer.get("cache"), "redirects": None,
            "replaced": (track, index) in seen}
        seen.add((track, index))
        pathway = event.get("moved_to") or event.get("service_location")
        if pathway:
            fields["pathway"] = pathway
        if track == "video" and pathway:
            change = pathways.change(event, pathway)
            if change:
                out.records.append((event["wall"], "pathway_change", change))
        if track == "video":
            fields |= {"quality": rank.get(rep), "rule": rule,
                       "throughput_kbps": event.get("throughput_kbps"),
                       "stalled": any(s <= event["wall"] <= s + d for s, d in stalls)}
            if kbps.get(rep) is not None and (limit is None or index < limit):
                played[index] = kbps[rep]
        out.records.append((event["wall"], "segment" if track == "video" else "audio_segment",
                            fields))
    end = next((e for e in raw if e["kind"] in ENDS), None)
    chosen = [played[k] for k in sorted(played)]
    metrics = session_metrics(chosen, [(s - origin, d) for s, d in stalls],
                              None if first is None else first - origin, segment_s,
                              [r["bandwidth"] / 1000 for r in video] or None)
    error = None if end is not None and end["kind"] in ("ended", "limit_reached") else (
        (end or {}).get("message") or "the session ended without dash.js's end event")
    metrics |= {"session": session, "title": title, "algo": algo, "player": "dashjs",
                "completed": error is None, "error": error,
                "failure": None if error is None else reason_of_message(error, end is not None),
                "ended_by": end["kind"] if end else None,
                "stalls_by_track": _by_track(dry),
                "downloads": sum(1 for e in raw if e["kind"] == "fragment"
                                 and e.get("media_type") == "video"),
                "wall_s": round((end["wall"] if end else raw[-1]["wall"]) - origin, 3)
                if raw else 0.0}
    out.metrics = metrics
    return out


class _Pathways:
    """The pathway changes of one session's video fragments, and its steering records."""

    def __init__(self, session: str) -> None:
        self.session = session
        self.current: str | None = None
        self.moved = False  # the pathway in use is one the page moved a request to
        self.priority: list[str] = []

    def other(self, event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if event["kind"] == "cmsd_duress":
            return "cmsd_duress", {"session": self.session, "pathway": event.get("pathway")}
        self.priority = list(event.get("priority") or [])
        return "steering", {"session": self.session, "status": 200,
                            "priority": self.priority, "ttl_s": event.get("ttl")}

    def change(self, fragment: dict[str, Any], pathway: str) -> dict[str, Any] | None:
        if pathway == self.current:
            self.moved = bool(fragment.get("moved_to"))
            return None
        moved = bool(fragment.get("moved_to"))
        reason = "start" if self.current is None else "duress" if moved else \
            "retry" if self.moved else \
            "steering" if self.priority[:1] == [pathway] else "failure"
        change = {"session": self.session, "pathway": pathway, "previous": self.current,
                  "reason": reason, "priority": self.priority}
        self.current, self.moved = pathway, moved
        return change


def _by_track(dry: list[str | None]) -> dict[str, int]:
    counts = {"video": 0, "audio": 0}
    for track in dry:
        if track in counts:
            counts[track] += 1
    return counts
