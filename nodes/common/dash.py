"""DASH manifests: read an MPD into plain data, write one for a synthetic title, and turn a
representation's SegmentTemplate into segment URLs.

Only what cdnlab's content uses is covered: a static MPD, one Period, SegmentTemplate with
`$RepresentationID$` and `$Number$` (with an optional `%0Nd` width) and a fixed duration;
at the MPD level, content steering (ISO/IEC 23009-1 6th ed. 5.8.5.13 and annex K.3.6:
`<ContentSteering defaultServiceLocation queryBeforeStart>` with the steering server's URL,
and one `<BaseURL serviceLocation>` per pathway), which `add_steering` writes.
That is what ffmpeg's dash muxer writes with `-use_template 1 -use_timeline 0`, and what the
synthetic titles imitate, so origin, edges, fill agent and players share one reader.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

NS = "urn:mpeg:dash:schema:mpd:2011"
_Q = f"{{{NS}}}"
_DURATION = re.compile(r"^PT(?:(?P<h>[\d.]+)H)?(?:(?P<m>[\d.]+)M)?(?:(?P<s>[\d.]+)S)?$")
_NUMBER = re.compile(r"\$Number(?:%0(\d+)d)?\$")


class ManifestError(ValueError):
    """An MPD cdnlab cannot use; the message says what is wrong."""


@dataclass(frozen=True)
class Representation:
    id: str
    content_type: str  # video | audio
    mime_type: str
    codecs: str
    bandwidth: int  # bit/s, as declared
    width: int | None
    height: int | None
    initialization: str  # template
    media: str  # template
    start_number: int
    segment_duration_s: float

    def init_path(self) -> str:
        return self.initialization.replace("$RepresentationID$", self.id)

    def segment_path(self, number: int) -> str:
        """The media segment `number` (counting from `start_number`)."""
        path = self.media.replace("$RepresentationID$", self.id)

        def fill(match: re.Match[str]) -> str:
            width = int(match.group(1) or 0)
            return f"{number:0{width}d}"

        return _NUMBER.sub(fill, path)


@dataclass(frozen=True)
class AdaptationSet:
    id: str
    content_type: str
    representations: tuple[Representation, ...]

    @property
    def codec_family(self) -> str:
        """`avc1`, `vp09`, `mp4a`…: what a player checks it can decode."""
        return self.representations[0].codecs.split(".")[0] if self.representations else ""


@dataclass(frozen=True)
class ContentSteering:
    server_url: str
    default_service_location: str | None = None
    query_before_start: bool = False


@dataclass(frozen=True)
class BaseUrl:
    url: str
    service_location: str | None = None


@dataclass(frozen=True)
class Presentation:
    duration_s: float
    adaptation_sets: tuple[AdaptationSet, ...] = field(default_factory=tuple)
    base_urls: tuple[BaseUrl, ...] = ()  # the MPD's own (pathways, with steering)
    steering: ContentSteering | None = None

    def sets(self, content_type: str) -> list[AdaptationSet]:
        return [a for a in self.adaptation_sets if a.content_type == content_type]

    @property
    def representations(self) -> list[Representation]:
        return [r for a in self.adaptation_sets for r in a.representations]

    def segment_count(self, rep: Representation) -> int:
        return max(1, math.ceil(self.duration_s / rep.segment_duration_s - 1e-6))


def parse_duration(text: str) -> float:
    match = _DURATION.match(text.strip())
    if not match:
        raise ManifestError(f"duration {text!r} is not of the form PT…H…M…S")
    return (float(match.group("h") or 0) * 3600 + float(match.group("m") or 0) * 60
            + float(match.group("s") or 0))


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value else None


def parse_mpd(text: str | bytes) -> Presentation:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise ManifestError(f"not XML: {err}") from err
    if root.tag != f"{_Q}MPD":
        raise ManifestError(f"root element is {root.tag}, not an MPD")
    if root.get("type", "static") != "static":
        raise ManifestError("only static (on-demand) MPDs are supported")
    total = root.get("mediaPresentationDuration")
    if total is None:
        raise ManifestError("MPD has no mediaPresentationDuration")
    periods = root.findall(f"{_Q}Period")
    if len(periods) != 1:
        raise ManifestError(f"MPD has {len(periods)} periods; cdnlab uses exactly one")
    sets = []
    for aset in periods[0].findall(f"{_Q}AdaptationSet"):
        set_type = aset.get("contentType") or ""
        reps = []
        for rep in aset.findall(f"{_Q}Representation"):
            template = rep.find(f"{_Q}SegmentTemplate")
            if template is None:
                template = aset.find(f"{_Q}SegmentTemplate")
            if template is None or template.get("duration") is None:
                raise ManifestError(f"representation {rep.get('id')}: no SegmentTemplate "
                                    "with a duration")
            mime = rep.get("mimeType") or aset.get("mimeType") or ""
            content_type = set_type or mime.split("/")[0]
            timescale = int(template.get("timescale", "1"))
            reps.append(Representation(
                id=rep.get("id", ""), content_type=content_type, mime_type=mime,
                codecs=rep.get("codecs") or aset.get("codecs") or "",
                bandwidth=int(rep.get("bandwidth", "0")),
                width=_int_or_none(rep.get("width")), height=_int_or_none(rep.get("height")),
                initialization=template.get("initialization", ""),
                media=template.get("media", ""),
                start_number=int(template.get("startNumber", "1")),
                segment_duration_s=int(template.get("duration", "0")) / timescale))
        if reps:
            sets.append(AdaptationSet(aset.get("id", str(len(sets))),
                                      set_type or reps[0].content_type, tuple(reps)))
    if not sets:
        raise ManifestError("MPD has no representations")
    base_urls = tuple(BaseUrl((b.text or "").strip(), b.get("serviceLocation"))
                      for b in root.findall(f"{_Q}BaseURL"))
    steering = None
    element = root.find(f"{_Q}ContentSteering")
    if element is not None:
        if not (element.text or "").strip():
            raise ManifestError("ContentSteering names no steering server URL")
        steering = ContentSteering((element.text or "").strip(),
                                   element.get("defaultServiceLocation"),
                                   element.get("queryBeforeStart", "false") == "true")
    return Presentation(parse_duration(total), tuple(sets), base_urls, steering)


def add_steering(text: str | bytes, server_url: str, pathways: list[tuple[str, str]],
                 default: str | None = None, query_before_start: bool = True) -> str:
    """The MPD with content steering: a `ContentSteering` element naming `server_url`
    and one `BaseURL` per (service location, URL) in `pathways`, placed before the
    Period; any it had are replaced."""
    parse_mpd(text)  # a usable MPD first
    ET.register_namespace("", NS)
    root = ET.fromstring(text)
    for old in root.findall(f"{_Q}BaseURL") + root.findall(f"{_Q}ContentSteering"):
        root.remove(old)
    at = list(root).index(root.find(f"{_Q}Period"))
    added = []
    for location, url in pathways:
        element = ET.Element(f"{_Q}BaseURL", {"serviceLocation": location})
        element.text = url
        added.append(element)
    steering = ET.Element(f"{_Q}ContentSteering", {
        "defaultServiceLocation": default or pathways[0][0],
        "queryBeforeStart": "true" if query_before_start else "false"})
    steering.text = server_url
    for offset, element in enumerate([*added, steering]):
        root.insert(at + offset, element)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")


def write_mpd(presentation: Presentation) -> str:
    """An MPD for `presentation`, in the shape ffmpeg writes (live profile, templates)."""
    ET.register_namespace("", NS)
    max_seg = max(r.segment_duration_s for r in presentation.representations)
    root = ET.Element(f"{_Q}MPD", {
        "profiles": "urn:mpeg:dash:profile:isoff-live:2011", "type": "static",
        "mediaPresentationDuration": f"PT{presentation.duration_s:.3f}S",
        "maxSegmentDuration": f"PT{max_seg:.3f}S", "minBufferTime": f"PT{2 * max_seg:.1f}S"})
    period = ET.SubElement(root, f"{_Q}Period", {"id": "0", "start": "PT0.0S"})
    for aset in presentation.adaptation_sets:
        set_el = ET.SubElement(period, f"{_Q}AdaptationSet", {
            "id": aset.id, "contentType": aset.content_type, "startWithSAP": "1",
            "segmentAlignment": "true"})
        for rep in aset.representations:
            attrs = {"id": rep.id, "mimeType": rep.mime_type, "codecs": rep.codecs,
                     "bandwidth": str(rep.bandwidth)}
            if rep.width and rep.height:
                attrs |= {"width": str(rep.width), "height": str(rep.height)}
            rep_el = ET.SubElement(set_el, f"{_Q}Representation", attrs)
            ET.SubElement(rep_el, f"{_Q}SegmentTemplate", {
                "timescale": "1000", "duration": str(round(rep.segment_duration_s * 1000)),
                "initialization": rep.initialization, "media": rep.media,
                "startNumber": str(rep.start_number)})
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")
