"""Measuring accuracy: the literature's protocol (search +-max_lag frames, correct within +-1
frame, context windows of 5..15 frames and the whole clip), on real clips with injected offsets,
beside a classical baseline (mouth opening against audio loudness), per dataset group."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .features import AUDIO_PER_FRAME, audio_on_grid
from .inference import Sequence, score_sequences
from .model import FCNSyncNet
from .sync import estimate, frame_weights, lag_curve

OFFSETS_FRAMES = (-12, -6, -3, -1, 0, 1, 3, 6, 12)
CONTEXTS = (5, 7, 9, 11, 13, 15, 0)  # 0: the whole clip


@dataclass
class Trial:
    """One clip shifted by ``injected`` frames; ``truth`` = inherent + injected."""

    name: str
    group: str
    injected: int
    truth: float
    context: int
    predictions: np.ndarray  # one per window (or one for the whole clip)
    method: str


def shifted(seq: Sequence, mel_audio_fn, shift_frames: int) -> Sequence:
    """A copy of ``seq`` whose audio leads by ``shift_frames`` more: position j holds the audio
    of frame j + shift. ``mel_audio_fn(first_frame, n_frames)`` returns audio on the grid."""
    n = len(seq.lips)
    audio = mel_audio_fn(-seq.pad + shift_frames, n + 2 * seq.pad)
    return Sequence(lips=seq.lips, valid=seq.valid, audio=audio, pad=seq.pad)


def window_predictions(
    scores: np.ndarray, weights: np.ndarray, context: int, logit_scale: float
) -> np.ndarray:
    """Offsets (frames) from non-overlapping windows of ``context`` frames with evidence, or
    from the whole clip when ``context`` is 0."""
    if context == 0:
        return np.array([estimate(lag_curve(scores, weights), 0, logit_scale).offset_frames])
    preds = []
    for t0 in range(0, scores.shape[1] - context + 1, context):
        w = weights[t0 : t0 + context]
        if (w > 0).mean() < 0.6:
            continue
        curve = lag_curve(scores[:, t0 : t0 + context], w)
        preds.append(estimate(curve, 0, logit_scale).offset_frames)
    return np.array(preds)


def model_trials(
    model: FCNSyncNet,
    clips: list[dict],
    offsets: tuple[int, ...] = OFFSETS_FRAMES,
    contexts: tuple[int, ...] = CONTEXTS,
    max_lag: int = 15,
) -> list[Trial]:
    """``clips``: dicts with name, group, truth (inherent offset, frames), seq (a Sequence with
    pad >= max_lag + 16 + max |offset|), mel, grid_start_s, fps, level_db."""
    trials = []
    scale = float(model.log_scale.detach().exp())
    for clip in clips:
        seqs, inj = [], []
        for d in offsets:
            def fn(first: int, n: int, c=clip) -> np.ndarray:
                return audio_on_grid(c["mel"], c["grid_start_s"] + first / c["fps"], c["fps"], n)

            base = Sequence(clip["seq"].lips, clip["seq"].valid, clip["seq"].audio, max_lag + 16)
            seqs.append(shifted(base, fn, d))
            inj.append(d)
        all_scores = score_sequences(model, seqs, max_lag)
        for d, sc in zip(inj, all_scores, strict=True):
            lvl = np.roll(clip["level_db"], 0)
            w = frame_weights(clip["seq"].valid, lvl)
            for ctx in contexts:
                trials.append(
                    Trial(clip["name"], clip["group"], d, clip["truth"] + d, ctx,
                          window_predictions(sc, w, ctx, scale), "model")
                )
    return trials


def summarise(trials: list[Trial], tolerance: float = 1.0) -> dict[str, dict[str, float]]:
    """Accuracy (fraction of predictions within ``tolerance`` frames of the truth) per
    method, group and context; 'all' pools the groups (each window counts once)."""
    acc: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for tr in trials:
        if tr.predictions.size == 0:
            continue
        ok = (np.abs(tr.predictions - tr.truth) <= tolerance + 1e-6).astype(float)
        for g in (tr.group, "all"):
            acc[(tr.method, g, tr.context)].extend(ok.tolist())
    out: dict[str, dict[str, float]] = {}
    for (method, group, ctx), v in sorted(acc.items()):
        out.setdefault(f"{method}/{group}", {})[f"ctx{ctx or 'clip'}"] = float(np.mean(v))
    return out


_ = AUDIO_PER_FRAME
