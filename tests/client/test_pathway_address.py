"""A session keeps to one address of a pathway's host (nodes/client/player.py
`_address_of`), as a browser keeps its connections to one address of a host: each server
of a cluster then sees a session's every request or none, which is what the edges' CMSD
stream count assumes (nodes/edge/shares.py). It draws again only when the answer no
longer names that address or a request to it failed."""

from __future__ import annotations

import asyncio
import time

from nodes.client.dnsclient import StubConfig
from nodes.client.player import Session, SessionSpec
from nodes.common.events import EventLog


def test_one_address_per_host_until_it_leaves_the_answer() -> None:
    player = Session(SessionSpec(id="s", title="t"), "video.cdn.lab",
                    StubConfig((("127.0.0.1", 53),)), EventLog(None, "client"), {})
    later = time.monotonic() + 60
    player._hosts["edge_x.cluster.cdn.lab"] = (("10.0.2.4", "10.0.2.5"), later)

    async def addresses(n: int) -> set[str]:
        return {await player._address_of("edge_x.cluster.cdn.lab", "pathway")
                for _ in range(n)}

    kept = asyncio.run(addresses(20))
    assert len(kept) == 1, kept  # drawn at random per request: both, 1 − 2⁻¹⁹ of the time
    (address,) = kept
    other = "10.0.2.5" if address == "10.0.2.4" else "10.0.2.4"
    player._hosts["edge_x.cluster.cdn.lab"] = ((other, "10.0.2.6"), later)
    assert asyncio.run(addresses(20)) <= {other, "10.0.2.6"}
