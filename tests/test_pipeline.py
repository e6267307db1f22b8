"""End to end on synthetic media: decoding, the common clock, the sign convention."""

from __future__ import annotations

import numpy as np
import pytest
from synth import BarTracker, make_clip

from fcnsync.calibration import Calibration
from fcnsync.evaluate import baseline_estimate
from fcnsync.pipeline import detect, extract
from fcnsync.profile import Follower

FPS = 25


@pytest.mark.parametrize("lead_frames", [-6, 0, 4])
@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_audio_moved_in_its_samples_is_measured_with_its_sign(tmp_path, ext, lead_frames):
    path = make_clip(tmp_path / f"c.{ext}", lead_s=lead_frames / FPS)
    est = baseline_estimate(extract(path, BarTracker()))
    assert est is not None
    assert est.offset_frames == pytest.approx(lead_frames, abs=0.6)


@pytest.mark.parametrize(
    "ext, codecs",
    [("mkv", ("libx264", "aac")), ("mp4", ("mpeg4", "mp3")), ("mov", ("libx264", "aac"))],
)
def test_audio_delayed_in_container_timestamps_is_a_real_offset(tmp_path, ext, codecs):
    path = make_clip(
        tmp_path / f"t.{ext}", audio_pts_delay_s=5 / FPS, vcodec=codecs[0], acodec=codecs[1]
    )
    est = baseline_estimate(extract(path, BarTracker()))
    assert est is not None
    assert est.offset_frames == pytest.approx(-5, abs=0.6)  # audio plays late: negative


def test_shift_by_k_frames_moves_the_model_answer_by_k(tmp_path, tiny_model):
    cal = Calibration(threshold=0.0)
    curves = {}
    for k in (0, 2):
        path = make_clip(tmp_path / f"k{k}.mkv", seconds=5.0, lead_s=k / FPS, seed=3)
        res = detect(path, model=tiny_model, calibration=cal, tracker=BarTracker())
        assert res.status == "ok", res
        tr = res.tracks[0]
        curves[k] = np.array(tr.lag_curve)
    # audio leading by 2 more frames: lag l now shows what lag l + 2 showed
    moved = np.corrcoef(curves[2][:-2], curves[0][2:])[0, 1]
    assert moved > 0.98
    assert np.corrcoef(curves[2], curves[0])[0, 1] < moved


def test_record_has_the_output_contract(tmp_path, tiny_model):
    path = make_clip(tmp_path / "r.mp4", seconds=3.0)
    res = detect(
        path, model=tiny_model, calibration=Calibration(threshold=0.0), tracker=BarTracker()
    )
    d = res.to_dict()
    for key in (
        "path",
        "status",
        "error",
        "offset_ms",
        "offset_frames",
        "fps",
        "confidence",
        "verdict",
        "tracks",
        "duration_s",
        "elapsed_s",
    ):
        assert key in d
    assert d["status"] == "ok" and d["fps"] == 25.0
    assert d["offset_ms"] == pytest.approx(d["offset_frames"] * 40, abs=0.2)
    assert 0.0 <= d["confidence"] <= 1.0
    assert d["duration_s"] == pytest.approx(3.0, abs=0.1)
    assert "lag_curve" not in d["tracks"][0]
    assert len(res.to_dict(evidence=True)["tracks"][0]["lag_curve"]) == 31


def test_silent_audio_is_undetermined_no_speech(tmp_path, tiny_model):
    path = make_clip(tmp_path / "s.mkv", seconds=3.0, silent=True)
    res = detect(path, model=tiny_model, tracker=BarTracker())
    assert res.status == "undetermined" and res.reason == "no speech"
    assert res.offset_ms is None


def test_clip_without_a_face_is_undetermined(tmp_path, tiny_model):
    path = make_clip(tmp_path / "f.mp4", seconds=2.0)
    res = detect(path, model=tiny_model)  # the real face tracker sees only a bar
    assert res.status == "undetermined" and res.reason == "no face found"


def test_short_clip_is_undetermined(tmp_path, tiny_model):
    path = make_clip(tmp_path / "short.mkv", seconds=0.8)
    res = detect(path, model=tiny_model, tracker=BarTracker())
    assert res.status == "undetermined" and "too short" in res.reason


def test_long_file_scored_in_stretches_gives_the_same_answer(tmp_path, tiny_model):
    path = make_clip(tmp_path / "long.mkv", seconds=24.0, lead_s=2 / FPS, seed=5)
    cal = Calibration(threshold=0.0)
    whole = detect(path, model=tiny_model, calibration=cal, tracker=BarTracker(), segment_s=1e6)
    parts = detect(path, model=tiny_model, calibration=cal, tracker=BarTracker(), segment_s=5.0)
    a, b = whole.tracks[0], parts.tracks[0]
    assert b.frames == a.frames and b.speech_frames == pytest.approx(a.speech_frames, abs=10)
    # each stretch normalises its own lips and audio, so a random network's curve moves a little
    assert np.corrcoef(a.lag_curve, b.lag_curve)[0, 1] > 0.85
    assert len(b.series) >= 20  # one point per second, all stretches together


def test_a_search_centred_seconds_away_reads_the_audio_there(tmp_path, tiny_model, monkeypatch):
    # a drift followed seconds past the search range: the last pieces of a stretch read audio
    # seconds after its pictures, which must have been decoded by then, not read as missing
    import fcnsync.pipeline as pipeline

    class Far(Follower):
        def predict(self, t_s: float) -> int:
            self.centre = -125  # the audio lags by 5 s
            return self.centre

    reads = []
    real = pipeline.audio_on_grid

    def spy(mel, start_s, fps, n):
        out = real(mel, start_s, fps, n)
        reads.append((start_s, start_s + n / fps, float(out[:, -1].mean())))
        return out

    monkeypatch.setattr(pipeline, "Follower", Far)
    monkeypatch.setattr(pipeline, "audio_on_grid", spy)
    path = make_clip(tmp_path / "far.mkv", seconds=24.0, seed=5)
    cal = Calibration(threshold=0.0)
    detect(path, model=tiny_model, calibration=cal, tracker=BarTracker(), segment_s=5.0)
    inside = [r for r in reads if r[0] >= 0.1 and r[1] <= 23.9]  # audio that the file has
    assert len(inside) >= 4
    assert [r for r in inside if r[2] < 1.0] == []


def test_detect_without_a_model_loads_the_shipped_one_once(tmp_path, tiny_model, monkeypatch):
    import fcnsync.pipeline as pipeline

    loads = []
    monkeypatch.setattr(pipeline, "load_model", lambda: loads.append(1) or tiny_model)
    pipeline._shipped_model.cache_clear()
    path = make_clip(tmp_path / "once.mp4", seconds=2.0)
    cal = Calibration(threshold=0.0)
    try:
        for _ in range(2):
            assert detect(path, calibration=cal, tracker=BarTracker()).status == "ok"
    finally:
        pipeline._shipped_model.cache_clear()
    assert loads == [1]


@pytest.mark.parametrize(
    "kwargs", [{"max_lag": 0}, {"max_lag": -3}, {"batch_size": 0}, {"segment_s": 0.0}]
)
def test_arguments_out_of_range_are_a_value_error(tmp_path, tiny_model, kwargs):
    clip = make_clip(tmp_path / "c.mkv", seconds=1.0)
    with pytest.raises(ValueError, match="detect needs max_lag >= 1"):
        detect(clip, model=tiny_model, calibration=Calibration(), tracker=BarTracker(), **kwargs)
