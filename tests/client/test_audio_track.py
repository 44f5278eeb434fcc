"""Audio as real players fetch it: a second track, fetched at the same time as video and
sharing the link with it, whose underrun stalls playback as a video underrun does."""

from __future__ import annotations

import pytest

from nodes.client.algorithms import make_abr
from nodes.client.buffer import AUDIO, VIDEO, PlaybackBuffer
from nodes.client.simulate import SimTitle, TraceLink, simulate


def test_playback_waits_for_every_track_and_stalls_on_the_first_dry() -> None:
    buffer = PlaybackBuffer(startup_s=2.0, resume_s=2.0, tracks=(VIDEO, AUDIO))
    buffer.add(4.0, now=0.5, track=VIDEO)
    assert not buffer.playing, "video alone does not start playback"
    buffer.add(2.0, now=1.0, track=AUDIO)
    assert buffer.playing and buffer.started_at == 1.0 and buffer.level_s == 2.0
    buffer.advance(4.0)  # audio ran dry at 3.0 with 2 s of video left
    assert not buffer.playing and buffer.level_of(VIDEO) == pytest.approx(2.0)
    buffer.add(2.0, now=5.0, track=AUDIO)
    assert buffer.stalls == [(3.0, 2.0)] and buffer.stall_tracks == [AUDIO]
    assert buffer.stalls_by_track() == {VIDEO: 0, AUDIO: 1}
    assert buffer.played_s == pytest.approx(2.0)


def test_audio_and_video_share_the_link_while_both_transfer() -> None:
    """Processor sharing, exactly: at R bit/s, the first audio segment (A bits) and video
    segment (V > A bits) start together; audio ends at 2A/R, then fetches its next segments
    back to back (its buffer has room), so video, sharing with all four, ends at
    (V + 4A)/R."""
    rate_mbps, ladder = 2.0, (1000.0,)
    alone = simulate(SimTitle.constant(ladder, 2.0, 8.0), TraceLink([(0.0, rate_mbps)], 1.0),
                     make_abr("fixed", kbps=1000))
    both = simulate(SimTitle.constant(ladder, 2.0, 8.0, audio_kbps=128.0),
                    TraceLink([(0.0, rate_mbps)], 1.0), make_abr("fixed", kbps=1000))
    video_bits, audio_bits, rate = 1000e3 * 2, 128e3 * 2, rate_mbps * 1e6
    assert alone.segments[0]["download_s"] == pytest.approx(video_bits / rate)
    assert both.audio_segments[0]["download_s"] == pytest.approx(2 * audio_bits / rate)
    assert both.segments[0]["download_s"] == pytest.approx((video_bits + 4 * audio_bits) / rate)
    assert both.metrics["stalls_by_track"] == {VIDEO: 0, AUDIO: 0}


def test_audio_costs_video_bitrate_on_a_tight_link() -> None:
    """With audio taking its share, throughput-driven choices come out lower."""
    link = TraceLink([(0.0, 1.4)], 1.0)
    title_s = 120.0
    without = simulate(SimTitle.constant((300.0, 750.0, 1200.0), 2.0, title_s), link,
                       make_abr("throughput"))
    with_audio = simulate(SimTitle.constant((300.0, 750.0, 1200.0), 2.0, title_s, 256.0),
                          link, make_abr("throughput"))
    assert with_audio.metrics["avg_bitrate_kbps"] < without.metrics["avg_bitrate_kbps"]
