"""One ffmpeg run that turns a source into a DASH presentation for a `TitleSpec`.

The command is built with ffmpeg-python: the source is decoded once, split and scaled per
rung, each rung encoded by its profile's codec at a constant rate, key frames forced at
every segment boundary (`-force_key_frames` plus a GOP of one segment, no scene-cut key
frames), and the dash muxer writes one MPD with an AdaptationSet per profile and one for
audio, which `manifest.correct_mpd` then corrects. ffmpeg's `-progress` output drives a
`Progress`.

Segment names carry the version (`init-<version>-<rep>.m4s`, `seg-<version>-<rep>-<n>.m4s`,
the version being the start of the content key): a re-ingested title gets new URLs, so a
cache holding the old version's segments (for a year, see `nodes/common/nginx.py`) can never
serve them under the new MPD.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import ffmpeg

from nodes.common.conventions import TRANSCODE_IDLE
from nodes.common.lifecycle import spawn_child
from nodes.origin.errors import ContentError, disk_full
from nodes.origin.ffprobe import SourceInfo
from nodes.origin.manifest import correct_mpd
from nodes.origin.profiles import TitleSpec
from nodes.origin.progress import Progress

MANIFEST = "manifest.mpd"
VERSION_CHARS = 8  # of the content key, in segment names


def segment_names(version: str) -> tuple[str, str]:
    """The SegmentTemplate's initialization and media names for a version."""
    return (f"init-{version}-$RepresentationID$.m4s",
            f"seg-{version}-$RepresentationID$-$Number%05d$.m4s")


def build_command(source: Path, info: SourceInfo, spec: TitleSpec, out_dir: Path,
                  version: str) -> list[str]:
    inp = ffmpeg.input(str(source))
    rungs = [(profile, rung) for profile in spec.profiles for rung in profile.ladder]
    split = inp.video.filter_multi_output("split", len(rungs))
    gop = max(1, round(info.fps * spec.segment_s))
    streams = []
    options: dict[str, object] = {}
    for index, (profile, rung) in enumerate(rungs):
        # every rung keeps the source's display aspect (the dash muxer insists on one)
        # bilinear: a downscale only (the ladder is fitted to the master), at a fifth less
        # time than bicubic, which keeps the default profiles above real time on 2 cores
        scaled = split.stream(index).filter("scale", rung.width, rung.height,
                                            flags="bilinear").filter(
            "setdar", f"{info.width}/{info.height}")
        streams.append(scaled)
        options |= profile.codec.stream_options(index, rung, gop)
        options[f"pix_fmt:v:{index}"] = "yuv420p"
    sets, first = [], 0
    for number, profile in enumerate(spec.profiles):
        ids = ",".join(str(first + k) for k in range(len(profile.ladder)))
        sets.append(f"id={number},streams={ids}")
        first += len(profile.ladder)
    if spec.audio_kbps and info.has_audio:
        streams.append(inp.audio)
        options |= {"c:a": "aac", "b:a": f"{spec.audio_kbps}k", "ac": 2}
        sets.append(f"id={len(spec.profiles)},streams={first}")
    init_name, media_name = segment_names(version)
    options |= {
        "format": "dash", "seg_duration": spec.segment_s, "use_template": 1,
        "use_timeline": 0, "dash_segment_type": "mp4", "adaptation_sets": " ".join(sets),
        "init_seg_name": init_name, "media_seg_name": media_name,
        "force_key_frames": f"expr:gte(t,n_forced*{spec.segment_s})",
    }
    output = ffmpeg.output(*streams, str(out_dir / MANIFEST), **options).global_args(
        "-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1")
    return list(output.compile(overwrite_output=True))


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "no message"


def run_ffmpeg(argv: list[str], duration_s: float, progress: Progress | None) -> None:
    """Run ffmpeg to completion, reporting progress; a failure raises ContentError."""
    with tempfile.TemporaryFile(mode="w+") as errors:
        process = spawn_child(argv, idle=TRANSCODE_IDLE, stdout=subprocess.PIPE,
                              stderr=errors, text=True)
        try:
            assert process.stdout is not None
            for line in process.stdout:
                key, _, value = line.strip().partition("=")
                if key == "out_time_us" and progress is not None and value.isdigit():
                    progress.update(int(value) / 1e6 / duration_s)
            code = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        errors.seek(0)
        message = errors.read()
    if code:
        if "No space left on device" in message:
            raise disk_full("transcoding")
        raise ContentError(f"ffmpeg failed (exit {code}): {_tail(message)}", 500)
    if progress is not None:
        progress.done()


def transcode(source: Path, info: SourceInfo, spec: TitleSpec, out_dir: Path,
              progress: Progress | None = None, version: str = "v") -> Path:
    """Write the presentation into `out_dir` (which must exist); the MPD's path."""
    run_ffmpeg(build_command(source, info, spec, out_dir, version), info.duration_s, progress)
    try:
        correct_mpd(out_dir, MANIFEST)
    except (OSError, ValueError) as err:  # ManifestError, Mp4Error
        raise ContentError(f"transcode produced an MPD that cannot be corrected: {err}",
                           500) from err
    return out_dir / MANIFEST
