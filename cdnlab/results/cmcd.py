"""Requests grouped by the Common Media Client Data players sent with them (CTA-5004, read
with `nodes.common.cmcd`), from every server's access log: the origin's and each edge's.

    requests      media and manifest requests viewers made, as the servers logged them
                  (.m4s, .mpd; an edge's own request to its parent, which forwards the
                  viewer's query, is not counted again)
    with_cmcd     of them, those that carried CMCD
    sessions      distinct session ids (`sid`) among them
    by            per key of GROUP_KEYS, per value: requests and bytes served
                  (a boolean key's absence is its false: su and bs count only when sent)

`group(records, key)` groups any list of parsed records by any key, for tests and notebooks.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from cdnlab.results.bundle import Bundle
from nodes.common import cmcd

GROUP_KEYS = ("ot", "sf", "st", "su", "bs")
MEDIA = (".m4s", ".mpd")


def requests(bundle: Bundle) -> list[dict[str, Any]]:
    """Every media or manifest request a viewer made, with its `cmcd` parsed (a dict,
    empty when none was sent)."""
    servers = set(bundle.run.get("cluster_of_ip", {}))
    found = []
    for record in bundle.lines("*.access.jsonl"):
        if str(record.get("path", "")).endswith(MEDIA) and record.get("client") not in servers:
            found.append(record | {"cmcd": cmcd.decode(record.get("cmcd") or "")})
    return found


def group(records: list[dict[str, Any]], key: str) -> dict[str, dict[str, int]]:
    """Requests and bytes by the value of CMCD `key` (records without it left out)."""
    groups: dict[str, dict[str, int]] = defaultdict(lambda: {"requests": 0, "bytes": 0})
    for record in records:
        if key in record["cmcd"]:
            value = record["cmcd"][key]
            bucket = groups[str(value).lower() if isinstance(value, bool) else str(value)]
            bucket["requests"] += 1
            bucket["bytes"] += int(record.get("bytes") or 0)
    return dict(groups)


def cmcd_summary(bundle: Bundle) -> dict[str, Any]:
    records = requests(bundle)
    carrying = [r for r in records if r["cmcd"]]
    return {"requests": len(records), "with_cmcd": len(carrying),
            "sessions": len({r["cmcd"].get("sid") for r in carrying if "sid" in r["cmcd"]}),
            "by": {key: group(carrying, key) for key in GROUP_KEYS}}
