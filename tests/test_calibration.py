"""Calibration: fitting, saving and loading, ECE, and fitting on one's own clips."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from synth import BarTracker, make_clip

from fcnsync.calibration import (
    Calibration,
    expected_calibration_error,
    fit,
    load_calibration,
)
from fcnsync.dataset import tracks_from_extracted
from fcnsync.errors import CalibrationError
from fcnsync.evaluate import calibrate_clips
from fcnsync.pipeline import detect, extract


def test_fit_recovers_a_known_probability_and_is_calibrated():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (4000, 4))
    p_true = 1 / (1 + np.exp(-(2.0 * x[:, 0] - 0.5)))
    y = rng.random(4000) < p_true
    cal = fit(x, y)
    z = (x - np.array(cal.mean)) / np.array(cal.scale) @ np.array(cal.weights) + cal.intercept
    p = 1 / (1 + np.exp(-z))
    assert expected_calibration_error(p, y) < 0.03
    assert abs(cal.weights[0] / cal.scale[0] - 2.0) < 0.3  # the slope of the true model
    assert expected_calibration_error(np.full(4000, 0.99), y) > 0.3  # overconfidence shows


def test_too_little_data_is_a_clear_error():
    with pytest.raises(CalibrationError, match="at least 10 trials"):
        fit(np.zeros((5, 4)), np.array([0, 1, 0, 1, 1]))


def test_save_load_round_trip(tmp_path):
    cal = Calibration(
        weights=[0.1, 0.2, 0.3, 0.4], intercept=-1.0, threshold=0.7, bias_frames=0.25, source="test"
    )
    cal.save(tmp_path / "c.json")
    assert load_calibration(tmp_path / "c.json") == cal
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CalibrationError, match="not a calibration file"):
        load_calibration(tmp_path / "bad.json")


def test_calibrating_own_clips_round_trips_into_detect(tmp_path, tiny_model):
    tracks = []
    for seed in range(4):
        path = make_clip(tmp_path / f"c{seed}.mkv", seconds=6.0, seed=seed)
        tracks += tracks_from_extracted(extract(path, BarTracker()), pad=15 + 16 + 12)
    new, figures = calibrate_clips(tracks, tiny_model, Calibration(), labelled=False)
    assert figures["trials"] > 50 and 0.0 <= figures["ece_after"] <= figures["ece_before"] + 1e-9
    new.save(tmp_path / "mine.json")
    loaded = load_calibration(tmp_path / "mine.json")
    assert loaded == new
    res = detect(tmp_path / "c0.mkv", model=tiny_model, calibration=loaded, tracker=BarTracker())
    res_default = detect(
        tmp_path / "c0.mkv", model=tiny_model, calibration=Calibration(), tracker=BarTracker()
    )
    assert res.tracks[0].offset_frames == res_default.tracks[0].offset_frames
    assert res.tracks[0].confidence != res_default.tracks[0].confidence


def test_calibrate_command_on_real_clips(dev_dir, tmp_path):
    clips = [
        dev_dir / n
        for n in (
            "grid_s23_priazn.mpg",
            "lrs2_unknown6_1.mp4",
            "vox_pcavsm07_1.mp4",
            "hdtf_wdaedmarkey_1.mp4",
        )
    ]
    out = tmp_path / "my.json"
    r = subprocess.run(
        [sys.executable, "-m", "fcnsync.cli", "calibrate", *map(str, clips), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert "ECE before" in r.stdout and out.exists()
    r2 = subprocess.run(
        [
            sys.executable,
            "-m",
            "fcnsync.cli",
            "detect",
            str(clips[0]),
            "--calibration",
            str(out),
            "--format",
            "jsonl",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r2.returncode == 0 and '"status": "ok"' in r2.stdout
