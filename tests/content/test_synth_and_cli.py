"""Synthetic titles (sizes, determinism, served shape) and the `cdnlab content` command
line, with the real ffmpeg behind it."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nodes.common.dash import parse_mpd
from nodes.origin.store import ContentStore
from nodes.origin.synth import SynthOptions, synthesize
from tests.content.conftest import tree

CDNLAB = [sys.executable, "-m", "cdnlab.cli"]


def test_two_hundred_synthetic_titles_follow_their_bitrates(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    started = time.monotonic()
    titles = synthesize(store, SynthOptions(titles=200, duration_s=60, seed=7))
    print(f"200 synthetic titles in {time.monotonic() - started:.2f} s")
    catalog = store.catalog()["titles"]
    assert len(titles) == 200 and set(catalog) == set(titles)
    entry = catalog[titles[0]]
    assert entry["synthetic"] and entry["segments"] == 15
    presentation = parse_mpd((store.root / titles[0] / "manifest.mpd").read_bytes())
    assert [r.bandwidth // 1000 for r in presentation.sets("video")[0].representations] == \
        [300, 750, 1200, 1850, 2850, 4300]
    for title in titles[:20]:
        for rep in catalog[title]["profiles"]["avc"]["representations"]:
            sizes = rep["segment_bytes"]
            files = [(store.root / title / rep["media"].replace("$Number%05d$", f"{n:05d}"))
                     .stat().st_size for n in range(1, len(sizes) + 1)]
            assert files == sizes
            nominal = rep["kbps"] * 1000 / 8 * 4
            # 15 log-normal samples (sigma 0.25): the mean's own spread is about 6.5 %
            assert statistics.fmean(sizes) == pytest.approx(nominal, rel=0.35)
            assert statistics.pstdev(sizes) > 0.05 * nominal, "variable bitrate noise"
    all_means = [statistics.fmean(r["segment_bytes"]) / (r["kbps"] * 500)
                 for e in catalog.values() for r in e["profiles"]["avc"]["representations"]]
    assert statistics.fmean(all_means) == pytest.approx(1.0, abs=0.02)


def test_synthetic_titles_repeat_for_a_seed_and_differ_across_seeds(tmp_path: Path) -> None:
    def sizes(seed: int, where: str) -> list[list[int]]:
        store = ContentStore(tmp_path / where)
        synthesize(store, SynthOptions(titles=3, duration_s=20, seed=seed))
        return [r["segment_bytes"] for e in store.catalog()["titles"].values()
                for r in e["profiles"]["avc"]["representations"]]

    assert sizes(1, "a") == sizes(1, "b")
    assert sizes(1, "a") != sizes(2, "c")


def test_cli_ingest_publishes_and_refuses_a_corrupt_file_without_touching_the_store(
        tmp_path: Path, master: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("segment_s: 3\naudio_kbps: 32\nprofiles:\n  avc: [200k@160x90]\n")
    store = tmp_path / "store"
    done = subprocess.run([*CDNLAB, "content", "ingest", str(master), "--title", "film",
                           "--store", str(store), "--spec", str(spec)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "film: published" in done.stdout
    before = tree(store)
    corrupt = tmp_path / "corrupt.mov"
    corrupt.write_bytes(master.read_bytes()[4096:])  # the header is gone
    refused = subprocess.run([*CDNLAB, "content", "ingest", str(corrupt), "--title", "film",
                              "--store", str(store), "--spec", str(spec)],
                             capture_output=True, text=True, check=False)
    assert refused.returncode != 0
    assert "not a readable video file" in refused.stderr
    assert tree(store) == before
    catalog = json.loads((store / "catalog.json").read_text())
    assert list(catalog["titles"]) == ["film"]


def test_cli_synth_and_a_bad_spec(tmp_path: Path) -> None:
    done = subprocess.run([*CDNLAB, "content", "synth", "--titles", "5", "--duration", "8",
                           "--store", str(tmp_path / "s")], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0 and "5 synthetic titles" in done.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("profiles: {avc: [fast]}\n")
    refused = subprocess.run([*CDNLAB, "content", "synth", "--titles", "5", "--spec", str(bad),
                              "--store", str(tmp_path / "t")], capture_output=True, text=True,
                             check=False)
    assert refused.returncode == 2
    assert "bad.yaml: profiles.avc: rung 'fast' is not of the form 750k@640x360" in \
        refused.stderr


def test_bench_transcode_prints_a_table_and_the_slowest_profile(tmp_path: Path) -> None:
    done = subprocess.run([*CDNLAB, "bench", "transcode", "--seconds", "1", "--size",
                           "320x180", "--profiles", "avc"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    figures = dict(pair.split("=") for pair in lines[-1].removeprefix("transcode: ").split())
    assert set(figures) == {"speed_x", "default_x"}
    rows = {line.split()[0]: line.split() for line in lines
            if line.split() and line.split()[0] in ("decode", "avc", "default")}
    assert rows["avc"][1] == "libx264" and rows["default"][1] == "avc+vp9"
    # the closing line repeats the table: the slowest profile's and the default spec's speed
    assert figures["speed_x"] == rows["avc"][3] and figures["default_x"] == rows["default"][3]
    assert any("superfast" in line for line in lines), "the encoder settings are printed"
