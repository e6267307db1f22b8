"""Lag scores -> an offset and the evidence for it. Pure array code, no I/O.

Sign convention, everywhere: a positive offset means the audio leads the video (it comes
early). The network's lag l means "video frame t matches the audio of frame t + l", so a peak
at lag l is an offset of -l frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPEECH_DB = -45.0  # frames whose audio is quieter than this are silent
# weight of a score whose audio is silent, against 1 for audible audio (frame_weights)
SILENCE_WEIGHT = 0.5
SIDE_PEAK_EXCLUSION = 2  # lags within this many frames of the peak are not a rival peak


@dataclass
class Estimate:
    """What one track's lag scores say.

    ``offset_frames`` (sub-frame, positive: audio leads), ``curve`` (2L+1,) the weighted mean
    score per lag from -L to +L, ``peak``/``second`` the best score and the best score away from
    the peak, ``margin`` their difference, ``frames_used`` the number of frames that counted.
    """

    offset_frames: float
    lag_frames: int
    curve: np.ndarray
    peak: float
    second: float
    margin: float
    softmax_peak: float
    frames_used: int
    max_lag: int


def speech_weight(level_db: np.ndarray) -> np.ndarray:
    """0..1 per frame: how audible the sound is (ramps from ``SPEECH_DB`` to 10 dB above)."""
    return np.clip((level_db - SPEECH_DB) / 10.0, 0.0, 1.0).astype(np.float32)


def frame_weights(face_valid: np.ndarray, level_db: np.ndarray, max_lag: int) -> np.ndarray:
    """Weight of each (lag, frame) score: a visible face at video frame t, counted
    ``SILENCE_WEIGHT`` where the audio of frame t + l is silent and fully where it is audible,
    so that moving the audio moves the evidence with it. Silence still says something (moving
    lips do not fit it, closed ones do), and a lag whose audio is mostly silent is then judged
    on all of the window's frames, not on the few audible ones.

    ``face_valid`` (T,), ``level_db`` (T + 2 * max_lag,) covering frames -max_lag .. T + max_lag.
    Returns (2 * max_lag + 1, T) float32."""
    t = len(face_valid)
    speech = np.lib.stride_tricks.sliding_window_view(speech_weight(level_db), t)
    return (_heard(speech) * face_valid.astype(np.float32)[None, :]).astype(np.float32)


def _heard(speech: np.ndarray | float) -> np.ndarray | float:
    """A score's weight from its audio's ``speech_weight`` (0..1): ``SILENCE_WEIGHT`` .. 1."""
    return SILENCE_WEIGHT + (1.0 - SILENCE_WEIGHT) * speech


def audible(weights: np.ndarray, speech: float = 0.0) -> np.ndarray:
    """(T,) bool from ``frame_weights``: frames with a face whose own audio (lag 0) is audible,
    its ``speech_weight`` above ``speech``."""
    mid = (len(weights) - 1) // 2
    return weights[mid] > _heard(speech)


def lag_curve(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over frames of the (2L+1, T) lag scores, with (2L+1, T) weights ->
    (2L+1,) curve; lags with no weight get the lowest score seen."""
    return curve_from_sums((scores * weights).sum(axis=1), weights.sum(axis=1))


def curve_from_sums(weighted: np.ndarray, total: np.ndarray) -> np.ndarray:
    """The lag curve from its sums over frames (so stretches of a file can be added up):
    ``weighted`` (2L+1,) sum of weight * score, ``total`` (2L+1,) sum of weights."""
    curve = weighted / np.maximum(total, 1e-6)
    if (total <= 0).any():
        curve[total <= 0] = curve[total > 0].min() if (total > 0).any() else 0.0
    return curve.astype(np.float32)


def recentred(sums: np.ndarray, by: int) -> np.ndarray:
    """(2L+1,) lag sums of a search centred on offset c, read around offset c + ``by``: lag
    index i becomes i + ``by`` (lag l stands for the offset c - l); lags that fall outside are
    dropped and those not searched are 0."""
    out = np.zeros_like(sums)
    n = len(sums)
    lo, hi = max(0, -by), min(n, n - by)
    if lo < hi:
        out[lo + by : hi + by] = sums[lo:hi]
    return out


def peaks_on_edge(curve: np.ndarray | list[float]) -> bool:
    """Whether a lag curve (2L+1,) peaks on its first or last lag: the offset is there or
    beyond the searched range, and no parabola through the peak refines it."""
    return int(np.argmax(curve)) in (0, len(curve) - 1)


def estimate(curve: np.ndarray, frames_used: int, logit_scale: float) -> Estimate:
    """Offset at the curve's peak with parabolic sub-frame refinement, plus peak evidence."""
    max_lag = (len(curve) - 1) // 2
    i = int(np.argmax(curve))
    frac = 0.0
    if not peaks_on_edge(curve):
        y0, y1, y2 = float(curve[i - 1]), float(curve[i]), float(curve[i + 1])
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            frac = float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5))
    lag = i - max_lag
    away = np.abs(np.arange(len(curve)) - i) > SIDE_PEAK_EXCLUSION
    second = float(curve[away].max()) if away.any() else float(curve.min())
    z = curve * logit_scale
    p = np.exp(z - z.max())
    p /= p.sum()
    soft = float(p[max(0, i - 1) : i + 2].sum())
    return Estimate(
        offset_frames=-(lag + frac),
        lag_frames=lag,
        curve=curve,
        peak=float(curve[i]),
        second=second,
        margin=float(curve[i]) - second,
        softmax_peak=soft,
        frames_used=frames_used,
        max_lag=max_lag,
    )


def baseline_lag_scores(
    opening: np.ndarray, valid: np.ndarray, level_db: np.ndarray, max_lag: int
) -> np.ndarray:
    """The classical method's scores in the model's layout: per-frame products of the z-scored
    mouth opening (T,) and the z-scored audio level at frame t + l.

    ``level_db`` covers frames -max_lag .. T + max_lag (T + 2 * max_lag,). Returns
    (2 * max_lag + 1, T) float32."""
    t = len(opening)
    o = np.where(valid, opening, np.nan)
    o = (o - np.nanmean(o)) / (np.nanstd(o) + 1e-6) if np.isfinite(o).any() else np.zeros(t)
    o = np.nan_to_num(o)
    lv = (level_db - level_db.mean()) / (level_db.std() + 1e-6)
    windows = np.lib.stride_tricks.sliding_window_view(lv, t)  # (2L + 1, T)
    return (windows * o[None, :]).astype(np.float32)
