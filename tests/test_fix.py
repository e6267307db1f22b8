"""Correcting files: the audio moves, the video packets stay byte-identical, the result checks."""

from __future__ import annotations

import av
import pytest
from synth import BarTracker, encode_audio, make_clip

import fcnsync
from fcnsync.calibration import Calibration
from fcnsync.errors import FcnsyncError
from fcnsync.evaluate import baseline_estimate
from fcnsync.fix import fix_file
from fcnsync.pipeline import Result, extract, profile_verdict
from fcnsync.profile import Segment

FPS = 25


def _video_packets(path):
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


@pytest.mark.parametrize(
    "ext, vcodec, acodec",
    [
        ("mkv", "libx264", "aac"),
        ("mp4", "libx264", "aac"),
        ("mov", "libx264", "aac"),
        ("avi", "mpeg4", "mp3"),
    ],
)
def test_known_offset_is_removed_and_video_is_untouched(tmp_path, tiny_model, ext, vcodec, acodec):
    src = make_clip(
        tmp_path / f"in.{ext}", seconds=5.0, lead_s=4 / FPS, vcodec=vcodec, acodec=acodec
    )
    before = baseline_estimate(extract(src, BarTracker()))
    assert before.offset_frames == pytest.approx(4, abs=0.6)
    dst = tmp_path / f"out.{ext}"
    res = fix_file(
        src,
        dst,
        tiny_model,
        Calibration(threshold=0.0),
        offset_ms=160.0,
        tracker_factory=BarTracker,
    )
    assert res.method == ("samples" if ext == "avi" else "timestamps")
    after = baseline_estimate(extract(dst, BarTracker()))
    assert after.offset_frames == pytest.approx(0, abs=0.6)
    assert _video_packets(dst) == _video_packets(src)
    assert not list(tmp_path.glob(".*partial*"))  # no temporary file left


def test_refuses_to_overwrite_its_input(tmp_path, tiny_model):
    src = make_clip(tmp_path / "a.mkv", seconds=2.0)
    with pytest.raises(FcnsyncError, match="overwrite the input"):
        fix_file(src, src, tiny_model, Calibration(), offset_ms=40.0)


def test_refuses_when_undetermined_or_unsure(tmp_path, tiny_model):
    src = make_clip(tmp_path / "a.mkv", seconds=3.0)
    with pytest.raises(FcnsyncError, match="undetermined"):  # no face for the real tracker
        fix_file(src, tmp_path / "b.mkv", tiny_model, Calibration())
    with pytest.raises(FcnsyncError, match="below"):
        fix_file(
            src,
            tmp_path / "b.mkv",
            tiny_model,
            Calibration(threshold=0.0),
            min_confidence=1.0,
            tracker_factory=BarTracker,
        )
    assert not (tmp_path / "b.mkv").exists()


@pytest.mark.parametrize("kind", ["drift", "steps"])
def test_refuses_an_offset_that_changes_within_the_file(tmp_path, tiny_model, monkeypatch, kind):
    src = make_clip(tmp_path / "a.mkv", seconds=2.0)
    measured = Result(path=str(src), status="ok", offset_ms=-80.0, offset_frames=-2.0, fps=FPS)
    measured.confidence, measured.sync_profile = 0.99, kind
    if kind == "drift":
        measured.segments = [Segment(0.0, 60.0, 10.0, 0.25, 0.9, -310.0, -7.75)]
        measured.drift_ms_per_min = -320.0
    else:
        measured.segments = [Segment(0.0, 8.0, -80.0, -2.0, 0.9), Segment(8.0, 20.0, 0.0, 0.0, 0.9)]
    monkeypatch.setattr("fcnsync.fix.detect", lambda *a, **k: measured)
    with pytest.raises(FcnsyncError, match="changes within the file") as err:
        fix_file(src, tmp_path / "b.mkv", tiny_model, Calibration(threshold=0.0))
    assert profile_verdict(measured) in str(err.value)
    assert not (tmp_path / "b.mkv").exists()


@pytest.mark.parametrize(
    "name, ext",
    [("R-V-Abhishek__Syncnet_FCN__data_example.avi", "mkv"), ("adnerf_obama_1.mp4", "mp4")],
)
def test_real_clip_is_fixed_and_verified(dev_dir, tmp_path, name, ext):
    model, cal = fcnsync.load_model(device="cpu"), fcnsync.load_calibration()
    res = fix_file(dev_dir / name, tmp_path / f"fixed.{ext}", model, cal)
    assert res.verified, res
    assert abs(res.residual_frames) <= 1.0
    assert _video_packets(tmp_path / f"fixed.{ext}") == _video_packets(dev_dir / name)


def test_other_audio_tracks_and_subtitles_are_kept(tmp_path, tiny_model):
    import numpy as np

    src = make_clip(tmp_path / "one.mkv", seconds=3.0)
    two = tmp_path / "two.mkv"
    with av.open(str(src)) as inp, av.open(str(two), "w") as out:  # add a second audio track
        v = out.add_stream_from_template(inp.streams.video[0])
        a = out.add_stream_from_template(inp.streams.audio[0])
        extra = out.add_stream("aac", rate=16000)
        extra.layout = "mono"
        for p in inp.demux(inp.streams.video[0], inp.streams.audio[0]):
            if p.dts is None and p.pts is None:
                continue
            p.stream = v if p.stream.type == "video" else a
            out.mux(p)
        encode_audio(out, extra, np.zeros((1, 48000), np.float32))
    dst = tmp_path / "fixed.mkv"
    fix_file(
        two, dst, tiny_model, Calibration(threshold=0.0), offset_ms=80.0, tracker_factory=BarTracker
    )
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio", "audio"]


def test_copied_packets_get_strictly_rising_decode_timestamps():
    """Matroska keeps no DTS: the demuxer leaves the first B-frame packets without one and can
    repeat one (soban_1.mkv of the dev set at packet 698), which mp4 and mov refuse."""
    from types import SimpleNamespace as P

    from fcnsync.remux import _DecodeTimestamps

    v, a = object(), object()
    packets = [
        P(stream=v, pts=0, dts=None, duration=40),
        P(stream=v, pts=200, dts=None, duration=40),
        P(stream=a, pts=22, dts=22, duration=23),
        P(stream=v, pts=120, dts=0, duration=40),
        P(stream=v, pts=40, dts=40, duration=40),
        P(stream=v, pts=80, dts=40, duration=40),  # repeated
        P(stream=v, pts=160, dts=None, duration=40),  # missing later on
    ]
    fixer = _DecodeTimestamps()
    out = [q for p in packets for q in fixer.push(p)] + fixer.flush()
    assert len(out) == len(packets)
    video = [p.dts for p in out if p.stream is v]
    assert video == [-80, -40, 0, 40, 41, 81]
    assert all(p.dts <= p.pts for p in out if p.stream is v and p.dts >= 0)
    assert [p.dts for p in out if p.stream is a] == [22]
    # a stream that never gives a DTS: its packets at the end, DTS from their PTS, rising
    s = object()
    fixer = _DecodeTimestamps()
    held = [P(stream=s, pts=-64, dts=None, duration=1), P(stream=s, pts=-70, dts=None, duration=1)]
    assert [q for p in held for q in fixer.push(p)] == []
    assert [p.dts for p in fixer.flush()] == [-64, -63]
