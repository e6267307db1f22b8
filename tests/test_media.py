"""Decoding: one clock for video and audio, from timestamps, streamed."""

from __future__ import annotations

import numpy as np
import pytest
from synth import make_clip

from fcnsync.errors import MediaError
from fcnsync.media import AUDIO_SAMPLE_RATE_HZ, MediaReader, VideoFrame, probe


def _read(path):
    frames, chunks = [], []
    reader = MediaReader(path)
    for item in reader:
        (frames if isinstance(item, VideoFrame) else chunks).append(item)
    return reader, frames, chunks


def test_frames_and_audio_cover_the_clip(tmp_path):
    path = make_clip(tmp_path / "a.mp4", seconds=3.0, fps=25, sample_rate=44100, channels=2)
    reader, frames, chunks = _read(path)
    assert reader.info.fps == pytest.approx(25.0)
    assert len(frames) == 75
    times = [f.time_s for f in frames]
    assert np.allclose(np.diff(times), 0.04, atol=1e-6)
    total = sum(c.samples.size for c in chunks) / AUDIO_SAMPLE_RATE_HZ
    assert total == pytest.approx(3.0, abs=0.1)
    assert all(c.samples.dtype == np.float32 and c.samples.ndim == 1 for c in chunks)


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_audio_timestamp_delay_is_kept_on_the_common_clock(tmp_path, ext):
    path = make_clip(tmp_path / f"d.{ext}", seconds=2.0, audio_pts_delay_s=0.2)
    _, frames, chunks = _read(path)
    assert frames[0].time_s == pytest.approx(0.0, abs=1e-6)
    # the audio's first real sample plays 0.2 s after the first frame (an AAC encoder's
    # priming frame may start earlier, but the samples end 0.2 s later than with no delay)
    last = chunks[-1]
    end_s = last.time_s + last.samples.size / AUDIO_SAMPLE_RATE_HZ
    assert end_s == pytest.approx(2.2, abs=0.07)


def test_rotation_metadata_gives_upright_frames(tmp_path):
    # stored 96 wide and 160 high, shown 160 wide and 96 high with the bar across
    path = make_clip(tmp_path / "r.mp4", seconds=1.0, size=(160, 96), rotation=90)
    _, frames, _ = _read(path)
    rgb = frames[0].rgb
    assert rgb.shape[:2] == (96, 160)
    bright = np.argwhere(rgb[:, :, 0] > 128)
    assert np.ptp(bright[:, 1]) > np.ptp(bright[:, 0])  # wider than high: upright


def test_probe_reports_streams(tmp_path):
    path = make_clip(tmp_path / "p.mkv", seconds=1.0, sample_rate=48000, channels=2)
    info = probe(path)
    assert (info.width, info.height, info.audio_sample_rate_hz, info.audio_channels) == (
        128,
        128,
        48000,
        2,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"with_audio": False}, "no audio stream"),
        ({"with_video": False}, "no video stream"),
    ],
)
def test_missing_stream_is_a_clear_error(tmp_path, kwargs, message):
    path = make_clip(tmp_path / "m.mkv", seconds=1.0, **kwargs)
    with pytest.raises(MediaError, match=message):
        MediaReader(path)


def test_not_media_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(MediaError):
        MediaReader(path)


def test_a_slow_consumer_is_not_taken_for_a_stalled_decoder(tmp_path, monkeypatch):
    # the reader's stall guard measures its own decoding; the time a caller spends between
    # items (tracking faces, scoring a stretch on a busy machine) does not count
    import time

    monkeypatch.setattr("fcnsync.media.STALL_TIMEOUT_S", 0.2)
    src = make_clip(tmp_path / "a.mkv", seconds=2.0)
    n = 0
    for n, _item in enumerate(MediaReader(src), 1):
        if n in (1, 10):
            time.sleep(0.3)
    assert n > 10
