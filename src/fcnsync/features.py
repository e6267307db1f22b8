"""The model's inputs, defined once for inference, training and evaluation.

Audio: 40-band log-mel at 100 frames/s from 16 kHz mono, computed in a stream as samples arrive
(``MelStream``), then sampled at ``AUDIO_PER_FRAME`` points per video frame on the video's own
frame grid (``audio_on_grid``), so any frame rate gives the same audio-per-frame layout.

Video: 40 lip-contour points per frame with head pose removed (rigid alignment on eyes, nose
and forehead), scale-normalised and with the track's mean mouth shape subtracted
(``lip_features``), resampled on a uniform frame grid (``track_on_grid``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .faces import (
    APPEARANCE_DIMS,
    FACE_TOP,
    LOWER_INNER,
    N_LIP,
    NOSE_TIP,
    PATCH_DIMS,
    PATCH_W,
    RIGID,
    SUMMARY_DIMS,
    UPPER_INNER,
)
from .media import AUDIO_SAMPLE_RATE_HZ

N_MELS = 40
WIN_SAMPLES = 400  # 25 ms window
HOP_SAMPLES = 160  # 10 ms hop: 100 mel frames per second
MEL_RATE_HZ = AUDIO_SAMPLE_RATE_HZ / HOP_SAMPLES
MEL_FMIN_HZ, MEL_FMAX_HZ = 50.0, 7600.0
LOG_FLOOR = 1e-5
AUDIO_PER_FRAME = 4  # audio feature samples per video frame on the grid (100 Hz at 25 fps)
LIP_POINT_DIMS = N_LIP * 2  # x and y of each lip point after pose normalisation
LIP_DIMS = LIP_POINT_DIMS + APPEARANCE_DIMS  # then the mouth's appearance and its patch
# what networks without the mouth's pixels read (fcnsync-v8): the first LIP_DIMS - PATCH_DIMS
PATCH_FREE_DIMS = LIP_DIMS - PATCH_DIMS
PATCH_MIN_SPREAD = 4.0  # grey levels added to a patch's own spread: flat patches stay flat
MIN_LIP_SPREAD = 0.005  # face-size units: a still mouth is not blown up to unit motion
MEL_OFFSET = 5.0  # added after mean normalisation so that silence stays below sound
STREAM_BLOCK_S = 4.0  # MelStream computes in blocks of this many seconds

_EYE_L, _EYE_R = RIGID.index(33), RIGID.index(263)
_FOREHEAD, _NOSE = RIGID.index(10), RIGID.index(1)
# librosa's filter bank for the constants above, shipped as an array (as whisper ships its own):
# computing it at run time imports librosa, and with it scipy and numba, for one (40, 201) array.
MEL_FILTERS_FILE = "mel_filters.npz"
_MEL_PARAMS = {
    "sample_rate_hz": AUDIO_SAMPLE_RATE_HZ,
    "n_fft": WIN_SAMPLES,
    "n_mels": N_MELS,
    "fmin_hz": MEL_FMIN_HZ,
    "fmax_hz": MEL_FMAX_HZ,
}
_WINDOW = torch.hann_window(WIN_SAMPLES)


def librosa_mel_filters() -> np.ndarray:
    """The mel filter bank computed by librosa (needs librosa): (N_MELS, WIN_SAMPLES // 2 + 1)
    float32, weights per FFT bin. What ``mel_filters.npz`` holds; see ``save_mel_filters``."""
    import librosa  # noqa: PLC0415 - only to make or check the shipped file

    return librosa.filters.mel(
        sr=AUDIO_SAMPLE_RATE_HZ,
        n_fft=WIN_SAMPLES,
        n_mels=N_MELS,
        fmin=MEL_FMIN_HZ,
        fmax=MEL_FMAX_HZ,
    ).astype(np.float32)


def save_mel_filters(path: str | Path) -> None:
    """Write ``librosa_mel_filters()`` and the parameters it was made with to ``path`` (.npz):
    how the shipped ``mel_filters.npz`` is made after a change to the constants above."""
    params: dict[str, Any] = dict(_MEL_PARAMS)
    np.savez_compressed(path, filters=librosa_mel_filters(), **params)


@lru_cache(maxsize=1)
def mel_filters() -> torch.Tensor:
    """The shipped mel filter bank, (N_MELS, WIN_SAMPLES // 2 + 1) float32, loaded once.

    Raises ``RuntimeError`` if the file was made with other parameters than this module's."""
    with resources.files("fcnsync").joinpath(MEL_FILTERS_FILE).open("rb") as fh, np.load(fh) as f:
        made_with = {k: float(f[k]) for k in _MEL_PARAMS}
        filters = f["filters"]
    if made_with != {k: float(v) for k, v in _MEL_PARAMS.items()}:
        raise RuntimeError(
            f"{MEL_FILTERS_FILE} was made for {made_with}, not {_MEL_PARAMS}: remake it with "
            "fcnsync.features.save_mel_filters"
        )
    return torch.from_numpy(filters).float()


def log_mel(samples: np.ndarray) -> np.ndarray:
    """Log-mel frames of a stretch of audio, no padding: frame j covers samples
    [j*HOP, j*HOP + WIN). ``samples`` (S,) float32 -> (M, N_MELS) float32."""
    if samples.size < WIN_SAMPLES:
        return np.zeros((0, N_MELS), dtype=np.float32)
    spec = torch.stft(
        torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)),
        n_fft=WIN_SAMPLES,
        hop_length=HOP_SAMPLES,
        win_length=WIN_SAMPLES,
        window=_WINDOW,
        center=False,
        return_complex=True,
    )
    power = spec.abs() ** 2  # (F, M)
    mel = mel_filters() @ power
    return torch.log(mel + LOG_FLOOR).T.contiguous().numpy()


@dataclass
class LogMel:
    """Log-mel frames; frame j is centred at ``start_s + j / MEL_RATE_HZ`` seconds.

    ``values`` (M, N_MELS) float32; ``energy`` (M,) float32 RMS of the samples under each frame.
    """

    start_s: float
    values: np.ndarray
    energy: np.ndarray

    @property
    def end_s(self) -> float:
        return self.start_s + len(self.values) / MEL_RATE_HZ


class MelStream:
    """Turns ``AudioChunk``s placed on the common clock into log-mel frames, in blocks, keeping
    only a window's worth of samples between blocks. Gaps in the timestamps become silence;
    overlapping samples are dropped."""

    def __init__(self) -> None:
        self._origin_s: float | None = None  # clock time of buffer sample 0 of frame 0's window
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0  # absolute sample index (from origin) of _buf[0]
        self._written = 0  # absolute sample index one past the last sample received
        self._frames: list[np.ndarray] = []
        self._energy: list[np.ndarray] = []
        self._next_frame = 0

    def push(self, time_s: float, samples: np.ndarray) -> None:
        if self._origin_s is None:
            # frame 0 is centred on the first sample: pad half a window of silence before it
            self._origin_s = time_s - (WIN_SAMPLES // 2) / AUDIO_SAMPLE_RATE_HZ
            self._written = WIN_SAMPLES // 2
            self._buf = np.zeros(WIN_SAMPLES // 2, dtype=np.float32)
        at = round((time_s - self._origin_s) * AUDIO_SAMPLE_RATE_HZ)
        if at > self._written:  # a gap: fill with silence
            self._append(np.zeros(at - self._written, dtype=np.float32))
        elif at < self._written:  # overlap: keep what we have
            samples = samples[self._written - at :]
        if samples.size:
            self._append(samples.astype(np.float32, copy=False))
        if self._written - self._next_frame * HOP_SAMPLES > STREAM_BLOCK_S * AUDIO_SAMPLE_RATE_HZ:
            self._compute()

    def _append(self, samples: np.ndarray) -> None:
        self._buf = np.concatenate([self._buf, samples])
        self._written += samples.size

    def _compute(self) -> None:
        first = self._next_frame * HOP_SAMPLES - self._buf_start
        seg = self._buf[first:]
        n = 0 if seg.size < WIN_SAMPLES else 1 + (seg.size - WIN_SAMPLES) // HOP_SAMPLES
        if n == 0:
            return
        used = seg[: (n - 1) * HOP_SAMPLES + WIN_SAMPLES]
        self._frames.append(log_mel(used))
        frames = np.lib.stride_tricks.sliding_window_view(used, WIN_SAMPLES)[::HOP_SAMPLES]
        self._energy.append(
            np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)).astype(np.float32)
        )
        self._next_frame += n
        drop = self._next_frame * HOP_SAMPLES - self._buf_start
        self._buf = self._buf[drop:]
        self._buf_start += drop

    @property
    def computed_until_s(self) -> float:
        """Clock time just past the last log-mel frame computed so far (-inf before any)."""
        if self._origin_s is None:
            return float("-inf")
        return (
            self._origin_s
            + (WIN_SAMPLES // 2) / AUDIO_SAMPLE_RATE_HZ
            + (self._next_frame / MEL_RATE_HZ)
        )

    def window(self, from_s: float) -> LogMel:
        """The frames computed so far whose centre is at or after ``from_s``."""
        values = np.concatenate(self._frames) if self._frames else np.zeros((0, N_MELS), np.float32)
        energy = np.concatenate(self._energy) if self._energy else np.zeros(0, np.float32)
        self._frames, self._energy = [values], [energy]  # keep one block
        first = self._next_frame - len(values)  # absolute index of values[0]
        start = (self._origin_s or 0.0) + (WIN_SAMPLES // 2) / AUDIO_SAMPLE_RATE_HZ
        k = max(0, int(np.ceil((from_s - start) * MEL_RATE_HZ)) - first)
        return LogMel(start + (first + k) / MEL_RATE_HZ, values[k:], energy[k:])

    def discard_before(self, t_s: float) -> None:
        """Forget frames centred before ``t_s``: a long stream keeps only what is still needed."""
        kept = self.window(t_s)
        self._frames, self._energy = [kept.values], [kept.energy]

    def finish(self) -> LogMel:
        """All frames so far (the tail padded with half a window of silence)."""
        if self._origin_s is None:
            return LogMel(0.0, np.zeros((0, N_MELS), np.float32), np.zeros(0, np.float32))
        self._append(np.zeros(WIN_SAMPLES // 2, dtype=np.float32))
        self._compute()
        values = np.concatenate(self._frames) if self._frames else np.zeros((0, N_MELS), np.float32)
        energy = np.concatenate(self._energy) if self._energy else np.zeros(0, np.float32)
        first = self._next_frame - len(values)  # frames before it were discarded
        start = self._origin_s + (WIN_SAMPLES // 2) / AUDIO_SAMPLE_RATE_HZ + first / MEL_RATE_HZ
        return LogMel(start_s=start, values=values.astype(np.float32), energy=energy)


def normalise_mel(mel: LogMel, reference: LogMel | None = None) -> LogMel:
    """Per-band mean normalisation over the file's audible frames (cepstral mean
    normalisation's log-mel cousin): removes the microphone's and the room's colouring.
    ``reference``: the frames whose mean is removed (default ``mel``'s own)."""
    ref_mel = mel if reference is None or len(reference.values) == 0 else reference
    if len(mel.values) == 0:
        return mel
    level = 20 * np.log10(ref_mel.energy + 1e-6)
    audible = level > level.max() - 50.0
    vals = ref_mel.values
    ref = vals[audible].mean(axis=0) if audible.any() else vals.mean(axis=0)
    return LogMel(mel.start_s, (mel.values - ref + MEL_OFFSET).astype(np.float32), mel.energy)


def join_mel(a: LogMel, b: LogMel) -> LogMel:
    """One log-mel from two windows of the same stream on the same frame grid, ``b`` ending
    after ``a``: ``a`` and the frames of ``b`` past its end (frames missing between the two
    are silence)."""
    k = int(round((a.end_s - b.start_s) * MEL_RATE_HZ))
    if len(a.values) == 0:
        return b
    if k >= len(b.values):
        return a
    vals, energy = b.values[max(k, 0) :], b.energy[max(k, 0) :]
    if k < 0:
        vals = np.concatenate([np.full((-k, vals.shape[1]), a.values.min(), np.float32), vals])
        energy = np.concatenate([np.zeros(-k, np.float32), energy])
    return LogMel(a.start_s, np.concatenate([a.values, vals]), np.concatenate([a.energy, energy]))


def mel_from(mel: LogMel, t_s: float) -> LogMel:
    """The frames of ``mel`` centred at or after ``t_s``."""
    k = min(len(mel.values), max(0, int(np.ceil((t_s - mel.start_s) * MEL_RATE_HZ - 1e-6))))
    return LogMel(mel.start_s + k / MEL_RATE_HZ, mel.values[k:], mel.energy[k:])


def mel_of_samples(samples: np.ndarray, start_s: float = 0.0) -> LogMel:
    """Log-mel of a whole array of 16 kHz mono samples (tests, training augmentation)."""
    stream = MelStream()
    stream.push(start_s, samples)
    return stream.finish()


def audio_on_grid(mel: LogMel, grid_start_s: float, fps: float, n_frames: int) -> np.ndarray:
    """Audio features for video frames ``grid_start_s + k / fps``, k in [0, n_frames):
    ``AUDIO_PER_FRAME`` samples per frame, centred on the frame's time span.

    Returns (n_frames * AUDIO_PER_FRAME, N_MELS + 1) float32: the log-mel values, linearly
    interpolated, and a last column that is 1 where audio exists and 0 outside it (silence
    floor values there).
    """
    k = np.arange(n_frames * AUDIO_PER_FRAME, dtype=np.float64)
    t = grid_start_s + (k + 0.5) / (AUDIO_PER_FRAME * fps) - 0.5 / fps
    pos = (t - mel.start_s) * MEL_RATE_HZ
    m = len(mel.values)
    floor = float(mel.values.min()) if len(mel.values) else float(np.log(LOG_FLOOR))
    out = np.full((t.size, N_MELS + 1), floor, dtype=np.float32)
    out[:, -1] = 0.0
    inside = (pos >= 0) & (pos <= m - 1)
    if m >= 2 and inside.any():
        p = pos[inside]
        i0 = np.clip(np.floor(p).astype(np.int64), 0, m - 2)
        w = (p - i0)[:, None].astype(np.float32)
        out[inside, :N_MELS] = mel.values[i0] * (1 - w) + mel.values[i0 + 1] * w
        out[inside, -1] = 1.0
    return out


def speech_activity(mel: LogMel, grid_start_s: float, fps: float, n_frames: int) -> np.ndarray:
    """Per video frame: RMS level of the audio in dBFS, nearest mel frame. (n_frames,) float32."""
    t = grid_start_s + np.arange(n_frames) / fps
    idx = np.round((t - mel.start_s) * MEL_RATE_HZ).astype(np.int64)
    ok = (idx >= 0) & (idx < len(mel.energy))
    db = np.full(n_frames, -120.0, dtype=np.float32)
    db[ok] = 20 * np.log10(mel.energy[idx[ok]] + 1e-6)
    return db


def _umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Similarity transforms that map each of ``src`` (N, K, 3) onto ``dst`` (K, 3), all N in
    one batch: scales (N,), rotations (N, 3, 3) and translations (N, 3)."""
    k = src.shape[1]
    mu_s, mu_d = src.mean(axis=1), dst.mean(axis=0)
    s, d = src - mu_s[:, None], dst - mu_d
    cov = np.einsum("ki,nkj->nij", d, s) / k  # d.T @ s per frame
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones((len(src), 3))
    sign[np.linalg.det(u) * np.linalg.det(vt) < 0, -1] = -1  # a rotation, not a reflection
    rot = u @ (sign[:, :, None] * vt)
    var = (s**2).sum(axis=(1, 2)) / k
    scale = np.where(var > 0, (sig * sign).sum(axis=1) / np.where(var > 0, var, 1.0), 1.0)
    return scale, rot, mu_d - scale[:, None] * np.einsum("nij,nj->ni", rot, mu_s)


def _apply(scale: np.ndarray, rot: np.ndarray, t: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """``_umeyama``'s transforms applied to ``pts`` (N, P, 3)."""
    return scale[:, None, None] * np.einsum("nij,npj->npi", rot, pts) + t[:, None]


def _unit(shape: np.ndarray) -> np.ndarray:
    c = shape - shape.mean(axis=0)
    return c / np.sqrt((c**2).sum(axis=1).mean())


def _reference_shape(rigid: np.ndarray) -> np.ndarray:
    """The track's rigid face shape (K, 3), unit size, in a frontal orientation: generalised
    Procrustes over the frames, then turned so that the eyes lie on the x axis and the
    forehead is up (-y, image convention)."""
    ref = _unit(rigid[len(rigid) // 2])
    for _ in range(2):
        aligned = _apply(*_umeyama(rigid, ref), rigid)
        ref = _unit(np.median(aligned, axis=0))
    x = ref[_EYE_R] - ref[_EYE_L]
    x /= np.linalg.norm(x)
    up = ref[_FOREHEAD] - ref[_NOSE]
    z = np.cross(x, -up)
    z /= np.linalg.norm(z)
    y = np.cross(z, x)
    return ref @ np.stack([x, y, z]).T


def lip_features(points: np.ndarray, appearance: np.ndarray) -> np.ndarray:
    """Pose- and scale-normalised lip shape per frame, then the mouth's appearance.

    ``points`` (N, P, 3) float32 in pixels, in ``faces.LANDMARKS`` order, NaN where no face;
    ``appearance`` (N, APPEARANCE_DIMS) ``faces.appearance_of`` per frame.
    Returns (N, LIP_DIMS) float32, NaN rows where no face: each frame's 3-D landmarks are
    aligned on the track's median rigid shape (eyes, nose, forehead), and the lip points' x, y
    in that frame, minus the track's median mouth, divided by the track's RMS lip motion
    (LIP_POINT_DIMS values); then the mouth's appearance standardised over the track
    (SUMMARY_DIMS values); then its patch (``patch_features``, PATCH_DIMS values).
    """
    n = len(points)
    out = np.full((n, LIP_DIMS), np.nan, dtype=np.float32)
    ok = np.isfinite(points).all(axis=(1, 2)) & np.isfinite(appearance).all(axis=1)
    if not ok.any():
        return out
    rigid = points[:, N_LIP:, :].astype(np.float64)
    lips = points[:, :N_LIP, :].astype(np.float64)
    ref = _reference_shape(rigid[ok])
    aligned = np.full_like(lips, np.nan)
    aligned[ok] = _apply(*_umeyama(rigid[ok], ref), lips[ok])
    xy = aligned[:, :, :2]
    xy = xy - np.nanmedian(xy[ok], axis=0)
    # one scale per track: speakers who articulate little and much look alike to the model
    spread = float(np.sqrt(np.mean(xy[ok] ** 2))) if ok.sum() > 1 else 0.0
    xy = xy / max(spread, MIN_LIP_SPREAD)
    out[ok, :LIP_POINT_DIMS] = xy[ok].reshape(int(ok.sum()), -1)
    seen = appearance[ok, :SUMMARY_DIMS].astype(np.float64)
    out[ok, LIP_POINT_DIMS:PATCH_FREE_DIMS] = (seen - seen.mean(axis=0)) / (seen.std(axis=0) + 1e-3)
    out[ok, PATCH_FREE_DIMS:] = patch_features(appearance[ok, SUMMARY_DIMS:])
    assert len(RIGID) == points.shape[1] - N_LIP
    return out


def patch_features(patches: np.ndarray) -> np.ndarray:
    """A track's mouth patches (N, PATCH_DIMS) as the model reads them: each patch's own
    brightness and contrast taken out, then the track's mean patch, over the track's RMS."""
    p = patches.astype(np.float64)
    p = (p - p.mean(axis=1, keepdims=True)) / (p.std(axis=1, keepdims=True) + PATCH_MIN_SPREAD)
    p = p - p.mean(axis=0)
    rms = float(np.sqrt(np.mean(p**2))) if len(p) > 1 else 0.0
    return (p / max(rms, 1e-3)).astype(np.float32)


def _mirror_index(lip_dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each lip feature comes from in the mirror image of the face, and its sign."""
    # each contour (outer, then inner) starts at a mouth corner and goes round: point k's
    # left-right partner is point (half/2 - k) mod half (the corners swap, the middles stay)
    half = N_LIP // 2
    partner = np.array([(half // 2 - k) % half + c * half for c in (0, 1) for k in range(half)])
    source = np.arange(lip_dims)
    sign = np.ones(lip_dims, dtype=np.float32)
    source[:LIP_POINT_DIMS] = (2 * partner[:, None] + (0, 1)).reshape(-1)
    sign[:LIP_POINT_DIMS:2] = -1.0  # x turns over; the mouth's appearance does not change
    if lip_dims == LIP_DIMS:  # the mouth's patch turns over left to right
        cols = np.arange(PATCH_DIMS) % PATCH_W
        source[PATCH_FREE_DIMS:] = PATCH_FREE_DIMS + np.arange(PATCH_DIMS) + PATCH_W - 1 - 2 * cols
    return source, sign


def mirror_lips(lips: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``lips`` (``lip_features`` along ``dim``) as the mirror image of the same face shows
    them: each lip point takes its left-right partner's place, with x negated."""
    source, sign = _mirror_index(lips.shape[dim])
    shape = [1] * lips.dim()
    shape[dim] = len(sign)
    index = torch.from_numpy(source).to(lips.device)
    return lips.index_select(dim, index) * torch.from_numpy(sign).to(lips).view(shape)


def track_on_grid(
    times_s: np.ndarray, values: np.ndarray, fps: float
) -> tuple[float, np.ndarray, np.ndarray]:
    """Resample per-frame ``values`` (N, D) at ``times_s`` onto a uniform grid at ``fps``
    starting at the first frame: nearest frame within half a period, else invalid.

    Returns (grid_start_s, grid values (G, D) with NaN rows zeroed, valid mask (G,) bool).
    """
    start = float(times_s[0])
    g = int(round((times_s[-1] - start) * fps)) + 1
    grid_t = start + np.arange(g) / fps
    idx = (
        np.clip(np.searchsorted(times_s, grid_t), 1, len(times_s) - 1) if len(times_s) > 1 else None
    )
    if idx is None:
        nearest = np.zeros(g, dtype=np.int64)
    else:
        left = times_s[idx - 1]
        right = times_s[idx]
        nearest = np.where(np.abs(grid_t - left) <= np.abs(right - grid_t), idx - 1, idx)
    close = np.abs(times_s[nearest] - grid_t) <= 0.5 / fps + 1e-6
    vals = values[nearest].astype(np.float32)
    valid = close & np.isfinite(vals).all(axis=1)
    vals[~valid] = 0.0
    return start, vals, valid


def mouth_opening(points: np.ndarray) -> np.ndarray:
    """Inner-lip gap over face size (forehead to nose tip) per frame, the classical sync cue.

    ``points`` (N, P, 3) in ``faces.LANDMARKS`` order -> (N,) float32, NaN where no face."""
    gap = np.linalg.norm(points[:, UPPER_INNER, :2] - points[:, LOWER_INNER, :2], axis=1)
    height = np.linalg.norm(points[:, FACE_TOP, :2] - points[:, NOSE_TIP, :2], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (gap / height).astype(np.float32)
