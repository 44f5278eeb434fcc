"""Ingest with the real ffmpeg on a tiny master, checked from the outside: ffprobe reads
what ffmpeg wrote (codec, frames, timestamps) independently of cdnlab's own MP4 reader."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nodes.common.dash import parse_mpd
from nodes.common.events import EventLog
from nodes.origin.errors import ContentError
from nodes.origin.ingest import ingest_file
from nodes.origin.profiles import TitleSpec, parse_title_spec
from nodes.origin.store import ContentStore
from nodes.origin.testsource import make_test_master
from tests.content.conftest import SMALL_SPEC, tree

FFPROBE_CODEC = {"avc1": "h264", "vp09": "vp9", "hvc1": "hevc", "mp4a": "aac"}


def ffprobe_segment(init: Path, segment: Path, scratch: Path) -> dict[str, Any]:
    joined = scratch / "joined.mp4"
    joined.write_bytes(init.read_bytes() + segment.read_bytes())
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "stream=codec_name,avg_frame_rate:packet=pts_time", "-of", "json",
                          str(joined)], capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    pts = sorted(float(p["pts_time"]) for p in data["packets"])
    num, den = data["streams"][0]["avg_frame_rate"].split("/")
    return {"codec": data["streams"][0]["codec_name"], "start": pts[0], "frames": len(pts),
            "fps": float(num) / float(den) if float(den) else 0.0}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, master: Path,
              small_spec: TitleSpec) -> tuple[ContentStore, dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("store")
    events = root.parent / "origin.jsonl"
    log = EventLog(events, "origin")
    result = ingest_file(ContentStore(root), master, "t1", small_spec, log, tty=False)
    log.close()
    assert result.status == "published"
    return ContentStore(root), result.entry, events


def test_mpd_lists_every_representation_of_every_profile(published: Any) -> None:
    store, entry, _ = published
    presentation = parse_mpd((store.root / "t1" / "manifest.mpd").read_bytes())
    families = [a.codec_family for a in presentation.sets("video")]
    assert families == ["avc1", "vp09", "hvc1"]
    assert [a.codec_family for a in presentation.sets("audio")] == ["mp4a"]
    declared = {(a.codec_family, r.bandwidth, r.width, r.height)
                for a in presentation.sets("video") for r in a.representations}
    assert declared == {("avc1", 150000, 160, 90), ("avc1", 400000, 320, 180),
                        ("vp09", 150000, 160, 90), ("vp09", 400000, 320, 180),
                        ("hvc1", 300000, 320, 180)}
    assert presentation.duration_s == pytest.approx(9.0, abs=0.1)
    assert entry["segments"] == 5 and entry["segment_s"] == 2


def test_segments_are_aligned_have_the_declared_codec_duration_and_bitrate(
        published: Any, tmp_path: Path) -> None:
    store, _entry, _ = published
    directory = store.root / "t1"
    presentation = parse_mpd((directory / "manifest.mpd").read_bytes())
    starts_by_rep: dict[str, list[float]] = {}
    for rep in presentation.representations:
        family = rep.codecs.split(".")[0]
        starts, seconds, total_bytes = [], 0.0, 0
        for k in range(presentation.segment_count(rep)):
            segment = directory / rep.segment_path(rep.start_number + k)
            probed = ffprobe_segment(directory / rep.init_path(), segment, tmp_path)
            assert probed["codec"] == FFPROBE_CODEC[family], (rep.id, k)
            total_bytes += segment.stat().st_size
            if rep.content_type == "video":
                duration = probed["frames"] / probed["fps"]
                expected = 2.0 if k < 4 else 1.0
                assert duration == pytest.approx(expected, abs=1 / probed["fps"] + 1e-6)
                starts.append(probed["start"])
                seconds += duration
        if rep.content_type == "video":
            starts_by_rep[rep.id] = starts
            kbps = total_bytes * 8 / 1000 / seconds
            assert kbps == pytest.approx(rep.bandwidth / 1000, rel=0.20), rep.id
    reference = next(iter(starts_by_rep.values()))
    assert reference == pytest.approx([0.0, 2.0, 4.0, 6.0, 8.0], abs=0.001)
    for rep_id, starts in starts_by_rep.items():
        assert starts == pytest.approx(reference, abs=0.001), rep_id


def test_catalog_records_real_sizes_and_representations(published: Any) -> None:
    store, entry, _ = published
    catalog = json.loads((store.root / "catalog.json").read_text())
    assert catalog["titles"]["t1"] == entry
    for profile in ("avc", "vp9", "hevc"):
        for rep in entry["profiles"][profile]["representations"]:
            sizes = [(store.root / "t1" / rep["media"].replace("$Number%05d$", f"{n:05d}"))
                     .stat().st_size for n in range(1, entry["segments"] + 1)]
            assert rep["segment_bytes"] == sizes
            assert rep["init_bytes"] == (store.root / "t1" / rep["init"]).stat().st_size
            assert rep["measured_kbps"] == pytest.approx(rep["kbps"], rel=0.2)
    assert entry["spec"] == SMALL_SPEC | {"profiles": SMALL_SPEC["profiles"]}
    assert entry["bytes"] == sum(size for path, size in tree(store.root / "t1/").items()
                                 if path.endswith(".m4s"))


def test_progress_is_reported_as_events(published: Any) -> None:
    _, _, events = published
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    progress = [e["fraction"] for e in lines if e["event"] == "progress"]
    assert progress and progress == sorted(progress) and progress[-1] == 1.0
    kinds = [e["event"] for e in lines]
    assert kinds[0] == "ingest_start" and kinds[-1] == "ingest_published"
    assert all({"t", "node", "event"} <= set(e) for e in lines)


def test_same_input_is_not_transcoded_twice_and_a_new_spec_replaces_atomically(
        tmp_path: Path, master: Path) -> None:
    store = ContentStore(tmp_path / "store")
    spec = parse_title_spec({"segment_s": 3, "audio_kbps": 0,
                             "profiles": {"avc": ["200k@160x90"]}})
    first = ingest_file(store, master, "t", spec)
    before = tree(store.root)
    again = ingest_file(store, master, "t", spec)
    assert again.status == "unchanged" and tree(store.root) == before
    assert again.entry["content_key"] == first.entry["content_key"]
    other = parse_title_spec({"segment_s": 3, "audio_kbps": 0,
                              "profiles": {"avc": ["300k@160x90"]}})
    replaced = ingest_file(store, master, "t", other)
    assert replaced.status == "published"
    versions = list((store.root / ".titles").iterdir())
    assert len(versions) == 1, "the old version is removed once the new one is visible"
    assert (store.root / "t").resolve() == versions[0]
    assert parse_mpd((store.root / "t/manifest.mpd").read_text()).representations[0] \
        .bandwidth == 300000
    assert not any((store.root / ".staging").iterdir())
    # a new version has new URLs: no cache can hand out an old segment under the new MPD
    old_names = {n for n in before if n.endswith(".m4s")}
    new_names = {n for n in tree(store.root) if n.endswith(".m4s")}
    assert old_names and new_names and not {Path(n).name for n in old_names} & \
        {Path(n).name for n in new_names}


# ffprobe's names for the profiles RFC 6381 strings carry as numbers
AVC_PROFILES = {"Constrained Baseline": 66, "Baseline": 66, "Main": 77, "High": 100}
HEVC_PROFILES = {"Main": 1, "Main 10": 2}
VP9_PROFILES = {"Profile 0": 0, "Profile 1": 1, "Profile 2": 2, "Profile 3": 3}
# VP9 levels (the VP9 bitstream specification, Annex A): level, max luma picture size,
# max luma sample rate, max bitrate (kbit/s)
VP9_LEVELS = [(10, 36864, 829440, 200), (11, 73728, 2764800, 800),
              (20, 122880, 4608000, 1800), (21, 245760, 9216000, 3600),
              (30, 552960, 20736000, 7200), (31, 983040, 36864000, 12000),
              (40, 2228224, 83558400, 18000), (41, 2228224, 160432128, 30000)]


def _probe_stream(init: Path, segment: Path, scratch: Path) -> dict[str, Any]:
    joined = scratch / "probe.mp4"
    joined.write_bytes(init.read_bytes() + segment.read_bytes())
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                          "stream=codec_tag_string,profile,level,pix_fmt,width,height,"
                          "avg_frame_rate", "-of", "json", str(joined)],
                         capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out)["streams"][0])


def test_codecs_strings_are_what_the_init_segments_hold_for_every_profile(
        published: Any, tmp_path: Path) -> None:
    """RFC 6381 strings against ffprobe's independent reading of each representation:
    AVC profile/level (ISO/IEC 14496-15 §5.3.3), HEVC profile, tier and level (Annex E),
    VP9 profile, the lowest level admitting the picture, rate and bitrate, bit depth, AAC
    object type. And no bitstreamSwitching: every representation has its own init."""
    store, _entry, _ = published
    directory = store.root / "t1"
    text = (directory / "manifest.mpd").read_text()
    assert "bitstreamSwitching" not in text
    presentation = parse_mpd(text)
    seen = set()
    for rep in presentation.representations:
        probed = _probe_stream(directory / rep.init_path(),
                               directory / rep.segment_path(rep.start_number), tmp_path)
        family, *fields = rep.codecs.split(".")
        seen.add(family)
        assert family == probed["codec_tag_string"], rep.codecs
        if family == "avc1":
            assert int(fields[0][:2], 16) == AVC_PROFILES[probed["profile"]], rep.codecs
            assert int(fields[0][4:], 16) == probed["level"], rep.codecs
        elif family == "hvc1":
            assert int(fields[0]) == HEVC_PROFILES[probed["profile"]], rep.codecs
            assert fields[2] == f"L{probed['level']}", rep.codecs  # Main tier
        elif family == "vp09":
            num, den = probed["avg_frame_rate"].split("/")
            pixels = probed["width"] * probed["height"]
            level = next(lv for lv, size, rate, kbps in VP9_LEVELS
                         if pixels <= size and pixels * int(num) / int(den) <= rate
                         and rep.bandwidth / 1000 <= kbps)
            assert (int(fields[0]), int(fields[1]), int(fields[2])) == (
                VP9_PROFILES[probed["profile"]], level,
                10 if "10" in probed["pix_fmt"] else 8), rep.codecs
        else:
            assert rep.codecs == "mp4a.40.2" and probed["profile"] == "LC"
    assert seen == {"avc1", "vp09", "hvc1", "mp4a"}


def test_the_ladder_never_goes_above_the_master(tmp_path: Path) -> None:
    """A 720p master with the default ladder: the rungs up to 720p, the 1080p ones dropped
    (and said so), nothing encoded above the source."""
    master = make_test_master(tmp_path / "m720.mp4", 2.0, 1280, 720, audio=False)
    events = tmp_path / "origin.jsonl"
    log = EventLog(events, "origin")
    spec = parse_title_spec({"segment_s": 1, "profiles": {"avc": "default"}})
    result = ingest_file(ContentStore(tmp_path / "store"), master, "t", spec, log)
    log.close()
    presentation = parse_mpd((tmp_path / "store/t/manifest.mpd").read_bytes())
    sizes = [(r.width, r.height) for r in presentation.representations]
    assert sizes == [(426, 240), (640, 360), (854, 480), (1280, 720)]
    start = next(json.loads(line) for line in events.read_text().splitlines()
                 if '"ingest_start"' in line)
    assert start["dropped"] == {"avc": ["2850k@1920x1080", "4300k@1920x1080"]}
    assert result.entry["spec"]["profiles"]["avc"][-1] == "1850k@1280x720"


def _refusal(store: ContentStore, source: Path, spec: TitleSpec) -> ContentError:
    before = tree(store.root)
    with pytest.raises(ContentError) as caught:
        ingest_file(store, source, "bad", spec)
    assert tree(store.root) == before, "a refused ingest must leave the store unchanged"
    assert store.entry("bad") is None
    return caught.value


def test_corrupt_and_cut_masters_are_refused_and_publish_nothing(
        tmp_path: Path, master: Path, small_spec: TitleSpec) -> None:
    store = ContentStore(tmp_path / "store")
    ingest_file(store, master, "good", parse_title_spec(
        {"segment_s": 3, "audio_kbps": 0, "profiles": {"avc": ["200k@160x90"]}}))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 400)
    error = _refusal(store, junk, small_spec)
    assert error.status == 415 and "not a readable video" in error.reason
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a film\n")
    assert _refusal(store, text, small_spec).status == 415
    # index first (faststart), then cut in half: ffprobe reads it, decoding stops early
    faststart = tmp_path / "faststart.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(master), "-c", "copy", "-movflags",
                    "+faststart", str(faststart)], check=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(faststart.read_bytes()[: faststart.stat().st_size // 2])
    error = _refusal(store, cut, small_spec)
    assert error.status == 422 and "cut short" in error.reason
    assert list(store.catalog()["titles"]) == ["good"]


def test_an_ffmpeg_failure_is_reported_and_leaves_no_partial_files(
        tmp_path: Path, master: Path) -> None:
    store = ContentStore(tmp_path / "store")
    # x265 refuses pictures smaller than its coding unit: the encoder fails mid-run
    spec = parse_title_spec({"segment_s": 2, "audio_kbps": 0,
                             "profiles": {"avc": ["100k@160x90"], "hevc": ["100k@8x8"]}})
    error = _refusal(store, master, spec)
    assert error.status == 500 and error.reason.startswith("ffmpeg failed")


@pytest.mark.parametrize(("spec", "words"), [
    ({"profiles": {"av2": "default"}}, "unknown profile 'av2'"),
    ({"profiles": {"avc": ["fast@720p"]}}, "is not of the form 750k@640x360"),
    ({"profiles": {"avc": ["750k@641x360"]}}, "even width and height"),
    ({"segment_s": 90}, "outside 0.5–30 seconds"),
    ({"ladder": []}, "unknown field(s) ladder"),
])
def test_bad_title_specs_name_the_problem(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(ContentError) as caught:
        parse_title_spec(spec, "title.yaml")
    assert words in caught.value.reason and caught.value.reason.startswith("title.yaml")


def test_default_spec_is_the_abr_research_ladder_in_two_codecs() -> None:
    spec = TitleSpec()
    assert [p.name for p in spec.profiles] == ["avc", "vp9"]
    assert [r.kbps for r in spec.profiles[0].ladder] == [300, 750, 1200, 1850, 2850, 4300]
    assert spec.segment_s == 4.0 and spec.audio_kbps > 0
    assert math.isclose(spec.profiles[0].ladder[-1].height, 1080)
