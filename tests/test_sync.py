"""Lag scores -> offset: the sign convention and sub-frame refinement."""

from __future__ import annotations

import numpy as np
import pytest

from fcnsync.sync import (
    SILENCE_WEIGHT,
    audible,
    estimate,
    frame_weights,
    lag_curve,
    peaks_on_edge,
    recentred,
)


@pytest.mark.parametrize("lag", [-7, -1, 0, 2, 9])
def test_peak_at_lag_l_means_audio_late_by_l(lag):
    curve = np.full(31, 0.1, dtype=np.float32)
    curve[15 + lag] = 0.8
    est = estimate(curve, 100, 10.0)
    assert est.lag_frames == lag
    assert est.offset_frames == pytest.approx(-lag)
    assert est.margin == pytest.approx(0.7)


def test_parabolic_refinement_finds_the_vertex():
    lags = np.arange(-15, 16)
    curve = (1 - 0.01 * (lags - 2.3) ** 2).astype(np.float32)
    assert estimate(curve, 100, 10.0).offset_frames == pytest.approx(-2.3, abs=1e-3)


def test_frames_without_a_face_carry_no_weight_and_silence_counts_less():
    # frames -1 .. 4 of audio for 4 video frames, lags -1 .. 1
    level = np.array([-90.0, -20.0, -90.0, -20.0, -40.0, -90.0])
    w = frame_weights(np.array([1, 1, 0, 1]), level, 1)
    s = SILENCE_WEIGHT
    assert w[1].tolist() == [1.0, s, 0.0, s + (1 - s) * 0.5]  # lag 0: audio of the same frame
    assert w[2].tolist() == [s, 1.0, 0.0, s]  # lag +1: audio of frames 1 .. 4
    assert w[0].tolist() == [s, 1.0, 0.0, 1.0]  # lag -1: audio of frames -1 .. 2
    assert audible(w).tolist() == [True, False, False, True]
    assert audible(w, 0.5).tolist() == [True, False, False, False]
    scores = np.zeros((3, 4), dtype=np.float32)
    scores[1, 2] = 50.0  # only where there is no face
    scores[0, 1] = 1.0
    assert int(np.argmax(lag_curve(scores, w))) == 0


def test_moving_lips_against_silence_count_against_a_lag():
    # two frames of lips; lag 0 hears speech at frame 0 only, lag +1 at frame 1 only. Lag 0
    # fits its one audible frame best (0.6), but the other frame's lips do not fit the silence
    # lag 0 puts against them (-1); lag +1 fits both frames fairly (0.3). Counted on audible
    # frames alone, lag 0 would win on one frame
    level = np.array([-90.0, -20.0, -90.0, -20.0])
    w = frame_weights(np.array([1, 1]), level, 1)
    scores = np.array([[0.0, 0.0], [0.6, -1.0], [0.3, 0.3]], dtype=np.float32)
    assert int(np.argmax(lag_curve(scores, w))) == 2
    speech_only = np.where(w > SILENCE_WEIGHT, w, 0.0)
    assert int(np.argmax(lag_curve(scores, speech_only))) == 1


def test_lag_sums_recentred_on_another_offset_keep_each_offset_in_place():
    # a search centred on offset c: lag index i stands for offset c - (i - L). Read around
    # c + 2, each offset moves two indices up; those beyond the new range fall out, 0 comes in
    sums = np.arange(1.0, 8.0)  # L = 3
    assert recentred(sums, 2).tolist() == [0, 0, 1, 2, 3, 4, 5]
    assert recentred(sums, -3).tolist() == [4, 5, 6, 7, 0, 0, 0]
    assert recentred(sums, 0).tolist() == sums.tolist()
    assert not recentred(sums, 7).any()


@pytest.mark.parametrize(("peak", "edge"), [(0, True), (1, False), (5, False), (6, True)])
def test_a_curve_peaking_on_its_first_or_last_lag_is_on_the_edge_and_not_refined(peak, edge):
    # the peak's lower neighbour is higher than its upper one: off the edge, the parabola
    # through the three moves the answer toward the lower lag; on the edge, the whole lag
    curve = np.zeros(7, np.float32)  # L = 3
    curve[peak] = 1.0
    if peak > 0:
        curve[peak - 1] = 0.8
    if peak < 6:
        curve[peak + 1] = 0.4
    assert peaks_on_edge(curve) == edge
    est = estimate(curve, 100, 10.0)
    assert est.lag_frames == peak - 3
    frac = -(est.offset_frames + est.lag_frames)  # the sub-frame part (offset = -(lag + frac))
    assert (frac == 0) == edge and (edge or frac < 0)
