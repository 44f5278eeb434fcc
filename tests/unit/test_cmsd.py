"""CMSD header values as CTA-5006 writes them (RFC 8941 structured fields): a Static
dictionary, a Dynamic list whose last member is the server nearest the player, strings
with commas and escapes inside, bare keys as true."""

from __future__ import annotations

from nodes.common import cmsd


def test_static_dynamic_and_the_nearest_member() -> None:
    assert cmsd.decode_static("ot=v,sf=d,st=v,su") == {"ot": "v", "sf": "d", "st": "v",
                                                       "su": True}
    members = cmsd.decode_dynamic('"origin, west";etp=90000, "edge \\"a\\"";etp=4200;mb=900;du')
    assert members == [("origin, west", {"etp": 90000}),
                       ('edge "a"', {"etp": 4200, "mb": 900, "du": True})]
    headers = {"cmsd-dynamic": '"o";etp=1, "edge_a";etp=42;mb=9'}
    assert cmsd.nearest(headers) == {"etp": 42, "mb": 9}
    assert cmsd.nearest({}) == {}
