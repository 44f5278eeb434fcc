"""The CMSD shares an edge server hands out: how many video streams it carries, and from
its cluster's streams and capacity in force the `etp` and `mb` its responses say (CTA-5006
section 4: estimated throughput, maximum suggested bitrate, both kbit/s). The load monitor
feeds it every request its access log gains, adds the streams its cluster's other servers
count (their `/load`) and writes the result each sample to the file nginx reads per
response (`nodes/edge/sites.py`). The cluster's, not the server's: a cluster's servers
share its uplink (a capacity cut divides the capacity between them only for accounting),
so sessions that happen to pick one server of two are not told to halve their bitrate.

A stream is a session that asked this server for video (CMCD `ot=v`; the session is CMCD's
`sid`, else the client's address), counted until STREAM_HELD_S after its last such request:
longer than a player's pause on a full buffer (a segment) and than its hold on a server it
left in duress (`AVOID_S`, 10 s, nodes/client/steering.py), so a share is not handed out a
second time while its owner is briefly away, and the owner finds it on return. Players
keep to one address of a host (as browsers keep their connections; the Python player
too), so a session is one server's stream, not a part of each.

    streams  the sessions counted (this server's; the cluster's for etp and mb)
    etp      capacity / streams          the cluster's egress shared by its streams
    mb       threshold × capacity / streams
                                         the share that keeps it under its threshold

(with no stream yet: the whole capacity, and its threshold's part of it). A request's own
session may not be counted yet when its response is sent (the file is a sample old).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nodes.common import cmcd

STREAM_HELD_S = 15.0


class StreamShares:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_asked: dict[str, float] = {}  # session → its last video request began

    def add(self, record: dict[str, Any]) -> None:
        """One access-log line: a video request counts its session."""
        data = cmcd.decode(str(record.get("cmcd") or ""))
        if data.get("ot") != "v":
            return
        began = float(record["time"]) - float(record.get("duration_s") or 0.0)
        key = str(data.get("sid") or record.get("client"))
        self.last_asked[key] = max(began, self.last_asked.get(key, began))

    def count(self, now: float) -> int:
        """The streams carried at `now` (epoch seconds); sessions not heard of for
        STREAM_HELD_S are forgotten."""
        self.last_asked = {k: t for k, t in self.last_asked.items()
                           if now - t <= STREAM_HELD_S}
        return len(self.last_asked)

    def publish(self, capacity_mbps: float, threshold: float, streams: int) -> dict[str, Any]:
        """Write `etp=…;mb=…` for `streams` sharing `capacity_mbps` for nginx (whole, by
        rename) and return the figures."""
        etp = round(capacity_mbps * 1000 / max(streams, 1))
        mb = round(threshold * capacity_mbps * 1000 / max(streams, 1))
        written = self.path.with_suffix(".tmp")
        written.write_text(f"etp={etp};mb={mb}\n")
        os.replace(written, self.path)
        return {"etp_kbps": etp, "mb_kbps": mb}
