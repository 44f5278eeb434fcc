"""Ingest: a source file becomes a published title, completely or not at all.

hash the source → skip if the title already holds this exact input and spec (idempotent)
→ probe (refuse what is not a video) → fit the ladder to the master (no rung above its
resolution) → transcode into a staging directory → verify the
bytes → publish atomically with its catalog entry. Any failure removes the staging
directory and leaves the store exactly as it was.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodes.common.events import EventLog
from nodes.common.files import sha256_file
from nodes.origin.catalog import representation_record, title_entry
from nodes.origin.errors import ContentError, disk_full
from nodes.origin.ffprobe import probe_source
from nodes.origin.profiles import TitleSpec
from nodes.origin.progress import Progress
from nodes.origin.store import ContentStore, check_title_id
from nodes.origin.transcode import VERSION_CHARS, transcode
from nodes.origin.verify import verify_presentation


@dataclass(frozen=True)
class IngestResult:
    title: str
    status: str  # published | unchanged
    entry: dict[str, Any]
    seconds: float


def content_key(source_sha256: str, spec: TitleSpec) -> str:
    return hashlib.sha256(f"{source_sha256}:{spec.key()}".encode()).hexdigest()


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def expected_bytes(spec: TitleSpec, duration_s: float) -> int:
    """What the presentation will take on disk, with a margin for containers and noise."""
    kbps = sum(r.kbps for p in spec.profiles for r in p.ladder) + spec.audio_kbps
    return int(kbps * 1000 / 8 * duration_s * 1.25) + (1 << 20)


def ingest_file(store: ContentStore, source: Path, title: str, spec: TitleSpec,
                log: EventLog | None = None, tty: bool | None = None,
                source_sha256: str | None = None, label: str | None = None) -> IngestResult:
    started = time.monotonic()
    check_title_id(title)
    digest = source_sha256 or sha256_file(source)
    key = content_key(digest, spec)
    current = store.entry(title)
    if current is not None and current.get("content_key") == key:
        if log:
            log.emit("ingest_unchanged", title=title, content_key=key)
        return IngestResult(title, "unchanged", current, time.monotonic() - started)
    info = probe_source(source, label)
    asked, spec = spec, spec.fitted(info.width, info.height)
    need, free = expected_bytes(spec, info.duration_s), free_bytes(store.root)
    if need > free:
        raise ContentError(f"disk full: the presentation needs about {need / 1e6:.1f} MB and "
                           f"the store has {free / 1e6:.1f} MB free; nothing was published", 507)
    if log:
        log.emit("ingest_start", title=title, duration_s=info.duration_s,
                 source=f"{info.width}x{info.height}@{info.fps:g}", content_key=key,
                 ladder=spec.to_dict()["profiles"],
                 dropped={p.name: [str(r) for r in p.ladder if r not in f.ladder]
                          for p, f in zip(asked.profiles, spec.profiles, strict=True)})
    staged = store.staging_dir(title)
    try:
        try:
            transcode(source, info, spec, staged, Progress(f"transcode {title}", log, tty,
                                                           title=title),
                      version=key[:VERSION_CHARS])
            presentation, facts = verify_presentation(staged, spec, info.duration_s,
                                                      spec.audio_kbps > 0 and info.has_audio)
        except ContentError:
            # ffmpeg's dash muxer ignores failed writes: a full disk shows up as bad output
            if free_bytes(staged) < (256 << 10):
                raise disk_full("transcoding") from None
            raise
        profiles: dict[str, list[dict[str, Any]]] = {p.name: [] for p in spec.profiles}
        audio = []
        for fact in facts:
            record = representation_record(fact.rep, fact.init_bytes, fact.segment_bytes,
                                           spec.segment_s)
            record["measured_kbps"] = round(fact.measured_kbps, 1)
            (audio if fact.profile == "audio" else profiles[fact.profile]).append(record)
        entry = title_entry(title, key, digest, False, presentation.duration_s, spec.segment_s,
                            spec.to_dict(), profiles, audio)
        store.publish([(staged, entry)])
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise disk_full("transcoding") from err
        raise
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    if log:
        log.emit("ingest_published", title=title, content_key=key, bytes=entry["bytes"],
                 representations=sum(len(p) for p in profiles.values()) + len(audio),
                 seconds=round(time.monotonic() - started, 3))
    return IngestResult(title, "published", entry, time.monotonic() - started)
