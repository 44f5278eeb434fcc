"""The MPD as the origin publishes it: ffmpeg's, corrected from the bytes it describes.

ffmpeg's dash muxer (6.x/5.x `libavformat/dashenc.c`) writes two things players can trip
on: a bare `codecs="hvc1"` for HEVC (no profile, tier or level, so a player cannot ask
its decoder whether it plays the stream), and `bitstreamSwitching="true"` on every
AdaptationSet although each representation has its own initialization segment with its own
parameter sets (ISO/IEC 23009-1 §5.3.3.2: bitstream switching means segments of any
representation can be appended after any other's without a new initialization segment;
false is the default, so the attribute goes). Each representation's `codecs` is rewritten
to what its initialization segment implies (`nodes.common.mp4.codec_string`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from nodes.common.dash import NS, parse_mpd
from nodes.common.mp4 import read_init

XSI = "http://www.w3.org/2001/XMLSchema-instance"


def correct_mpd(directory: Path, name: str = "manifest.mpd") -> None:
    """Rewrite `directory/name` in place with codecs strings from the init segments and
    no bitstreamSwitching."""
    path = directory / name
    presentation = parse_mpd(path.read_bytes())
    codecs = {rep.id: read_init((directory / rep.init_path()).read_bytes()).codecs
              for rep in presentation.representations}
    ET.register_namespace("", NS)
    ET.register_namespace("xsi", XSI)
    tree = ET.parse(path)
    for aset in tree.getroot().iter(f"{{{NS}}}AdaptationSet"):
        aset.attrib.pop("bitstreamSwitching", None)
        for rep in aset.iter(f"{{{NS}}}Representation"):
            rep.set("codecs", codecs[rep.get("id", "")])
    tree.write(path, encoding="utf-8", xml_declaration=True)
