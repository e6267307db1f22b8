"""Model inputs: streamed log-mel, audio placed on the video's frame grid, lip normalisation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from fcnsync.faces import (
    APPEARANCE_DIMS,
    LANDMARKS,
    LIP_INNER,
    LIP_OUTER,
    PATCH_DIMS,
    PATCH_H,
    PATCH_W,
    RIGID,
    SUMMARY_DIMS,
)
from fcnsync.features import (
    AUDIO_PER_FRAME,
    LIP_POINT_DIMS,
    LOG_FLOOR,
    MEL_FMAX_HZ,
    MEL_FMIN_HZ,
    N_MELS,
    PATCH_FREE_DIMS,
    MelStream,
    audio_on_grid,
    join_mel,
    librosa_mel_filters,
    lip_features,
    log_mel,
    mel_filters,
    mel_from,
    mel_of_samples,
    mirror_lips,
    normalise_mel,
    track_on_grid,
)
from fcnsync.media import AUDIO_SAMPLE_RATE_HZ as SR


def test_shipped_mel_filters_are_librosa_s():
    pytest.importorskip("librosa")
    shipped = mel_filters().numpy()
    assert shipped.shape == (N_MELS, 201)
    assert np.array_equal(shipped, librosa_mel_filters())  # bit for bit: log-mel is unchanged


def test_log_mel_is_librosa_s_log_mel_spectrogram():
    librosa = pytest.importorskip("librosa")
    x = np.random.default_rng(1).normal(0, 0.1, SR * 2).astype(np.float32)
    ref = librosa.feature.melspectrogram(
        y=x, sr=SR, n_fft=400, hop_length=160, center=False, power=2.0, n_mels=N_MELS,
        fmin=MEL_FMIN_HZ, fmax=MEL_FMAX_HZ,
    )  # fmt: skip
    ours = log_mel(x)
    assert ours.shape == (ref.shape[1], N_MELS)
    assert np.allclose(ours, np.log(ref.T + LOG_FLOOR), atol=1e-3)


def test_features_import_neither_librosa_nor_scipy():
    code = "import sys, fcnsync.features; print(sorted({'librosa', 'scipy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_streamed_mel_equals_whole_array_mel():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, SR * 9).astype(np.float32)
    whole = mel_of_samples(x, start_s=1.5)
    stream = MelStream()
    pos = 0
    for size in rng.integers(100, 5000, 200):
        if pos >= x.size:
            break
        stream.push(1.5 + pos / SR, x[pos : pos + size])
        pos += size
    parts = stream.finish()
    assert parts.start_s == whole.start_s == 1.5
    assert parts.values.shape == whole.values.shape == (901, N_MELS)
    assert np.allclose(parts.values, whole.values, atol=1e-4)


def test_windows_of_one_stream_join_into_the_stream_and_read_the_same_normalised():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.1, SR * 9).astype(np.float32)
    whole = mel_of_samples(x, start_s=1.5)
    stream = MelStream()
    windows, reach = [], 0.0
    for k in range(9):  # one second at a time; each window reaches a second into the last
        stream.push(1.5 + k, x[k * SR : (k + 1) * SR])
        w = stream.window(reach)
        stream.discard_before(reach)
        if len(w.values):
            windows.append(w)
            reach = w.end_s - 1.0
    windows.append(stream.finish())
    joined = windows[0]
    for w in windows[1:]:
        joined = join_mel(joined, w)
    assert joined.start_s == whole.start_s
    # the same values, up to float rounding (the transform's threading may order sums apart)
    np.testing.assert_allclose(joined.values, whole.values, rtol=1e-5, atol=1e-5)
    late = mel_from(joined, 5.0)
    assert late.start_s == pytest.approx(5.0) and np.array_equal(late.values, joined.values[350:])
    # normalised as one of its windows is, the joined audio reads the same inside that window
    own = normalise_mel(windows[1])
    wide = normalise_mel(joined, reference=windows[1])
    k = int(round((windows[1].start_s - joined.start_s) * 100))
    assert np.allclose(wide.values[k : k + len(own.values)], own.values)


def test_gap_in_audio_timestamps_becomes_silence():
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32)
    stream = MelStream()
    stream.push(0.0, tone)
    stream.push(2.0, tone)  # one second missing
    mel = stream.finish()
    assert mel.values.shape[0] == 301
    level = mel.energy
    assert level[50] > 0.1 and level[250] > 0.1 and level[110:190].max() < 1e-6


def test_click_lands_on_its_video_frame():
    x = np.zeros(SR * 2, dtype=np.float32)
    x[int(0.84 * SR) : int(0.84 * SR) + 80] = 1.0  # a click at 0.84 s = frame 21 at 25 fps
    mel = mel_of_samples(x)
    grid = audio_on_grid(mel, grid_start_s=0.0, fps=25.0, n_frames=50)
    loud = grid[:, :-1].mean(axis=1).reshape(50, AUDIO_PER_FRAME).max(axis=1)
    assert int(np.argmax(loud)) == 21
    assert grid[2:, -1].all()  # frame 0's first half lies before the audio starts


def test_grid_outside_audio_is_flagged():
    mel = mel_of_samples(np.zeros(SR, dtype=np.float32))
    grid = audio_on_grid(mel, grid_start_s=-1.0, fps=25.0, n_frames=75)
    flags = grid[:, -1].reshape(75, AUDIO_PER_FRAME).mean(axis=1)
    assert flags[:24].max() == 0 and flags[26:49].min() == 1 and flags[51:].max() == 0


def test_variable_frame_rate_track_is_put_on_a_uniform_grid():
    times = np.array([0.0, 0.04, 0.08, 0.16, 0.2, 0.24])  # frame 0.12 missing
    values = np.arange(6, dtype=np.float32)[:, None]
    start, grid, valid = track_on_grid(times, values, fps=25.0)
    assert start == 0.0 and len(grid) == 7
    assert valid.tolist() == [True, True, True, False, True, True, True]
    assert grid[:, 0].tolist() == [0, 1, 2, 0, 3, 4, 5]


def test_lip_features_ignore_head_pose_and_size():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 30, size=(56, 3)).astype(np.float32)
    n = 20
    opening = np.sin(np.arange(n) / 3.0)
    pts = np.repeat(base[None], n, axis=0)
    pts[:, :40, 1] += 3 * opening[:, None] * np.sign(base[None, :40, 1])
    appearance = rng.normal(0, 1, size=(n, APPEARANCE_DIMS)).astype(np.float32)
    appearance[:, SUMMARY_DIMS:] = rng.uniform(40, 220, size=(n, PATCH_DIMS))  # grey levels
    feats = lip_features(pts, appearance)

    def move(p, angle, scale, shift):
        c, s = np.cos(angle), np.sin(angle)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float32)
        return (p @ rot.T) * scale + shift

    moved = np.stack(
        [
            move(p, 0.3 * np.sin(i), 1.5 + 0.2 * i / n, np.array([50.0, -20, 0]))
            for i, p in enumerate(pts)
        ]
    ).astype(np.float32)
    assert np.allclose(lip_features(moved, appearance), feats, atol=1e-3)
    pts[5] = np.nan
    f2 = lip_features(pts, appearance)
    assert np.isnan(f2[5]).all() and np.isfinite(f2[4]).all()
    # the appearance follows the lip points, standardised over the track's frames
    assert feats.shape == (n, LIP_POINT_DIMS + APPEARANCE_DIMS)
    shown = feats[:, LIP_POINT_DIMS:PATCH_FREE_DIMS]
    assert np.allclose(shown.mean(axis=0), 0, atol=1e-5) and np.allclose(
        shown.std(axis=0), 1, atol=1e-2
    )
    assert np.corrcoef(shown[:, 0], appearance[:, 0])[0, 1] > 0.999
    # then the mouth's patch: the track's mean patch taken out, unit RMS over the track, and
    # blind to each frame's brightness and contrast (a light that flickers says nothing)
    patch = feats[:, PATCH_FREE_DIMS:]
    assert patch.shape == (n, PATCH_DIMS)
    assert np.allclose(patch.mean(axis=0), 0, atol=1e-5)
    assert np.sqrt(np.mean(patch**2)) == pytest.approx(1.0, abs=1e-4)
    lit = appearance.copy()
    gain = rng.uniform(0.7, 1.4, size=(n, 1)).astype(np.float32)
    lit[:, SUMMARY_DIMS:] = lit[:, SUMMARY_DIMS:] * gain + rng.uniform(-30, 30, size=(n, 1))
    relit = lip_features(moved, lit)[:, PATCH_FREE_DIMS:]
    assert np.corrcoef(relit.ravel(), patch.ravel())[0, 1] > 0.995


# each landmark's left-right partner on the face mesh (points on the middle line are their own)
_PARTNERS = {61: 291, 146: 375, 91: 321, 181: 405, 84: 314, 185: 409, 40: 270, 39: 269, 37: 267}
_PARTNERS |= {78: 308, 95: 324, 88: 318, 178: 402, 87: 317, 191: 415, 80: 310, 81: 311, 82: 312}
_PARTNERS |= {33: 263, 133: 362, 234: 454, 127: 356, 50: 280}
_PARTNERS |= {b: a for a, b in _PARTNERS.items()}


def test_mirrored_lip_features_are_the_features_of_the_face_seen_in_a_mirror():
    assert len(LIP_OUTER) + len(LIP_INNER) + len(RIGID) == len(LANDMARKS)
    rng = np.random.default_rng(1)
    n = 30
    pts = rng.normal(0, 30, size=(n, len(LANDMARKS), 3)).astype(np.float32)
    pts[:, :, 0] += 2 * np.sin(np.arange(n) / 2.0)[:, None]  # some motion, some head turn
    pts[:, :40] += rng.normal(0, 2, size=(n, 40, 3)).astype(np.float32)
    appearance = rng.normal(0, 1, size=(n, APPEARANCE_DIMS)).astype(np.float32)
    # the mirror image: x turns over and every point takes its partner's name
    partner = [LANDMARKS.index(_PARTNERS.get(i, i)) for i in LANDMARKS]
    seen = pts[:, partner] * np.array([-1, 1, 1], np.float32)
    # and the mouth's patch turns over left to right
    seen_appearance = appearance.copy()
    seen_appearance[:, SUMMARY_DIMS:] = (
        appearance[:, SUMMARY_DIMS:].reshape(n, PATCH_H, PATCH_W)[:, :, ::-1].reshape(n, -1)
    )
    feats = lip_features(pts, appearance)
    expected = mirror_lips(torch.from_numpy(feats)).numpy()
    assert np.allclose(lip_features(seen, seen_appearance), expected, atol=1e-3)
    assert not np.allclose(expected, feats, atol=0.1)  # a mirror image is another input
    assert np.allclose(mirror_lips(torch.from_numpy(expected)).numpy(), feats)
