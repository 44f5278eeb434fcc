"""Studio masters made on the spot: a moving test pattern with grain (so encoders must spend
their whole bit budget, as on real footage) and a tone, for tests, benchmarks and demos."""

from __future__ import annotations

from pathlib import Path

import ffmpeg

from nodes.origin.transcode import run_ffmpeg


def make_test_master(path: Path, seconds: float = 6.0, width: int = 320, height: int = 180,
                     fps: int = 25, audio: bool = True, grain: int = 30) -> Path:
    video = ffmpeg.input(f"testsrc2=size={width}x{height}:rate={fps}", f="lavfi", t=seconds)
    video = video.filter("noise", alls=grain, allf="t+u")
    streams = [video]
    if audio:
        streams.append(ffmpeg.input("sine=frequency=440:sample_rate=48000", f="lavfi",
                                    t=seconds))
    # near-lossless intra-heavy master, like a mezzanine file
    out = ffmpeg.output(*streams, str(path), vcodec="libx264", preset="ultrafast", crf=12,
                        pix_fmt="yuv420p", acodec="aac", **{"b:a": "192k"}).global_args(
        "-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1")
    run_ffmpeg(list(out.compile(overwrite_output=True)), seconds, None)
    return path
