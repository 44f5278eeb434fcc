"""The origin on a Mininet host: nginx serves the content store to clients across the
emulated network, the ingest endpoint takes uploads from another host, refuses corrupt and
cut uploads with the reason, publishes concurrent uploads, and a full disk publishes
nothing. Every test proves it left nothing behind."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdnlab.net.emulation import Emulation
from cdnlab.net.shaping.base import run_in
from cdnlab.services.origin import OriginService
from cdnlab.topology import load_topology
from nodes.common.events import EventLog
from nodes.origin.store import ContentStore
from nodes.origin.synth import SynthOptions, synthesize
from nodes.origin.testsource import make_test_master
from tests.content.conftest import tree
from tests.net.conftest import alive, recorded_processes

pytestmark = pytest.mark.root

SPEC = {"segment_s": 2, "audio_kbps": 64, "profiles": {"avc": ["150k@160x90", "300k@320x180"]}}


def fetch(node: Any, *urls: str, headers: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    flags = " ".join(f"--header '{h}'" for h in headers)
    out = run_in(node, f"{sys.executable} -m nodes.common.fetch {flags} {' '.join(urls)}")
    return [json.loads(line) for line in out.splitlines()]


def upload(node: Any, path: Path, url: str, title: str, *extra: str) -> tuple[int, dict]:
    done = subprocess.run(["mnexec", "-a", str(node.pid), sys.executable, "-m",
                           "nodes.uploader", str(path), "--to", url, "--title", title,
                           *extra], capture_output=True, text=True, check=False)
    answer = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, answer | {"stderr": done.stderr}


@pytest.fixture(scope="module")
def masters() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="cdnlab-masters-") as tmp:
        root = Path(tmp)
        make_test_master(root / "one.mp4", 6.0)
        make_test_master(root / "two.mp4", 5.0, grain=20)
        (root / "spec.yaml").write_text(json.dumps(SPEC))
        yield root


@pytest.fixture
def origin(nothing_left_behind: None) -> Iterator[tuple[Emulation, OriginService]]:
    with Emulation(load_topology("minimal")) as emu:
        store = Path(emu.run_dir) / "store"
        synthesize(ContentStore(store), SynthOptions(titles=200, duration_s=20, seed=3))
        service = OriginService(emu, store)
        service.start()
        processes = recorded_processes(emu)
        yield emu, service
        status = service.stop()
        assert status == 0, service.stderr_tail()
    assert alive(processes) == []


def test_nginx_serves_synthetic_titles_with_dash_types_and_ranges(
        origin: tuple[Emulation, OriginService]) -> None:
    emu, service = origin
    catalog = fetch(emu.node("c1"), f"{service.url}/catalog.json")[0]
    assert catalog["status"] == 200
    entry = json.loads((service.store / "catalog.json").read_text())["titles"]["synth-0137"]
    rep = entry["profiles"]["avc"]["representations"][3]
    urls = [f"{service.url}/synth-0137/manifest.mpd"] + [
        f"{service.url}/synth-0137/" + rep["media"].replace("$Number%05d$", f"{n:05d}")
        for n in (1, 5)]
    mpd, first, fifth = fetch(emu.node("c1"), *urls)
    assert mpd["status"] == 200 and mpd["headers"]["Content-Type"] == "application/dash+xml"
    assert "<MPD" in mpd["text"]
    assert first["headers"]["Content-Type"] == "video/iso.segment"
    assert [first["bytes"], fifth["bytes"]] == [rep["segment_bytes"][0], rep["segment_bytes"][4]]
    assert first["headers"]["Access-Control-Allow-Origin"] == "*"
    ranged = fetch(emu.node("c1"), urls[1], headers=("Range: bytes=100-1099",))[0]
    assert ranged["status"] == 206 and ranged["bytes"] == 1000
    assert ranged["headers"]["Content-Range"] == f"bytes 100-1099/{rep['segment_bytes'][0]}"
    hidden = fetch(emu.node("c1"), f"{service.url}/.titles/", f"{service.url}/.staging/")
    assert [h["status"] for h in hidden] == [404, 404]
    log = Path(emu.run_dir) / "events" / "origin.access.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    segment_lines = [line for line in lines if line["path"] == "/synth-0137/" + rep["media"]
                     .replace("$Number%05d$", "00001")]
    assert segment_lines[0]["client"] == emu.ip("c1")
    assert segment_lines[0]["bytes"] == rep["segment_bytes"][0]
    assert {"time", "node", "event", "status", "duration_s"} <= set(segment_lines[0])


def test_uploads_across_the_network_publish_and_bad_ones_are_refused(
        origin: tuple[Emulation, OriginService], masters: Path) -> None:
    emu, service = origin
    uploader = emu.node("c1")
    spec = str(masters / "spec.yaml")
    # two different titles at once both publish
    procs = [subprocess.Popen(["mnexec", "-a", str(uploader.pid), sys.executable, "-m",
                               "nodes.uploader", str(masters / name), "--to",
                               service.ingest_url, "--title", title, "--spec", spec],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, title in (("one.mp4", "one"), ("two.mp4", "two"))]
    answers = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert [(a["status"], a["title"]) for a in answers] == [("published", "one"),
                                                            ("published", "two")]
    mpd = fetch(uploader, f"{service.url}/one/manifest.mpd")[0]
    assert mpd["status"] == 200 and 'bandwidth="300000"' in mpd["text"]
    # the same upload again: nothing transcoded
    code, again = upload(uploader, masters / "one.mp4", service.ingest_url, "one", "--spec",
                         spec)
    assert code == 0 and again["status"] == "unchanged"
    before = tree(service.store)
    junk = masters / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(200_000))
    code, refused = upload(uploader, junk, service.ingest_url, "junk")
    assert code == 1 and refused["status"] == 415
    assert "not a readable video file" in refused["error"]
    code, cut = upload(uploader, masters / "two.mp4", service.ingest_url, "cut", "--cut-after",
                       "50000")
    assert code == 1 and cut["status"] == 400
    assert cut["error"].startswith("truncated upload: received 50000 of")
    assert tree(service.store) == before
    titles = fetch(uploader, f"{service.ingest_url}/titles")[0]
    catalog = json.loads(titles["text"]) if titles["text"] else json.loads(
        (service.store / "catalog.json").read_text())
    assert {"one", "two"} <= set(catalog["titles"])
    assert not {"junk", "cut"} & set(catalog["titles"])
    events = [json.loads(line) for line in
              (Path(emu.run_dir) / "events" / "origin.jsonl").read_text().splitlines()]
    refusals = {e["title"]: e["status"] for e in events if e["event"] == "ingest_refused"}
    assert refusals == {"junk": 415, "cut": 400}


def test_a_full_disk_publishes_nothing(tmp_path: Path, masters: Path,
                                       nothing_left_behind: None) -> None:
    from nodes.origin.errors import ContentError
    from nodes.origin.ingest import ingest_file
    from nodes.origin.profiles import parse_title_spec

    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mount)],
                   check=True)
    try:
        store = ContentStore(mount / "store")
        before = tree(store.root)
        # refused up front: the ladder's estimate does not fit
        with pytest.raises(ContentError) as caught:
            ingest_file(store, masters / "one.mp4", "big", parse_title_spec(SPEC))
        assert caught.value.status == 507 and "needs about" in caught.value.reason
        # fits the estimate, but another writer fills the disk once transcoding starts
        tiny = parse_title_spec({"segment_s": 2, "audio_kbps": 0,
                                 "profiles": {"avc": ["20k@320x180"]}})
        filler = mount / "other-writer"

        class FillingLog(EventLog):
            def emit(self, event: str, **fields: Any) -> dict[str, Any]:
                if event == "ingest_start":
                    with filler.open("wb") as out, contextlib.suppress(OSError):
                        out.write(bytes(2 << 20))
                return super().emit(event, **fields)

        with pytest.raises(ContentError) as caught:
            ingest_file(store, masters / "one.mp4", "big", tiny, FillingLog(None, "origin"))
        filler.unlink()
        assert caught.value.status == 507 and "disk full while transcoding" in caught.value.reason
        assert tree(store.root) == before
        assert not any((store.root / ".staging").iterdir())
    finally:
        subprocess.run(["umount", str(mount)], check=True)
