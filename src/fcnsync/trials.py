"""Trials: real clips with their audio moved by known offsets, scored by the model (or the
classical baseline) over context windows of a few frames or the whole clip, and their accuracy
(correct within +-1 frame) against a stated and a relative truth. Used by evaluation, training's
label screening and the benchmarks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .dataset import CachedTrack
from .features import audio_on_grid, speech_activity
from .inference import Sequence, score_sequences
from .model import FCNSyncNet
from .sync import audible, baseline_lag_scores, estimate, frame_weights, lag_curve

OFFSETS_FRAMES = (-15, -12, -9, -6, -3, -1, 0, 1, 3, 6, 9, 12, 15)
CONTEXTS = (5, 7, 9, 11, 13, 15, 0)  # 0: the whole clip
CONTEXT_PAD = 16


@dataclass
class Trial:
    """One clip shifted by ``injected`` frames, scored with one method at one context."""

    name: str
    group: str
    injected: int
    stated_truth: float
    context: int
    predictions: np.ndarray  # one per window (or one for the whole clip)
    method: str


def window_predictions(
    scores: np.ndarray, weights: np.ndarray, context: int, logit_scale: float
) -> np.ndarray:
    """Offsets (frames) from non-overlapping windows of ``context`` frames with evidence, or
    from the whole clip when ``context`` is 0."""
    if context == 0:
        return np.array([estimate(lag_curve(scores, weights), 0, logit_scale).offset_frames])
    preds = []
    for t0 in range(0, scores.shape[1] - context + 1, context):
        w = weights[:, t0 : t0 + context]
        if audible(w).mean() < 0.6:
            continue
        curve = lag_curve(scores[:, t0 : t0 + context], w)
        preds.append(estimate(curve, 0, logit_scale).offset_frames)
    return np.array(preds)


def shifted_audio(tr: CachedTrack, shift: float, pad: int) -> np.ndarray:
    """Audio on the track's grid, frames -pad .. T + pad, moved so that the audio leads by
    ``shift`` more frames: position j holds the audio of frame j + shift."""
    n = len(tr.seq.lips)
    return audio_on_grid(tr.mel, tr.grid_start_s + (shift - pad) / tr.fps, tr.fps, n + 2 * pad)


def trials_for(
    model: FCNSyncNet | None,
    tracks: list[CachedTrack],
    offsets: tuple[int, ...] = OFFSETS_FRAMES,
    contexts: tuple[int, ...] = CONTEXTS,
    max_lag: int = 15,
) -> list[Trial]:
    """Trials of the model (or, with ``model`` None, of the classical baseline) on every
    track at every injected offset and context. A context window sees only its own frames."""
    trials = []
    pad = max_lag + CONTEXT_PAD
    for tr in tracks:
        n = len(tr.seq.lips)
        for d in offsets:
            audio = shifted_audio(tr, d, pad)
            level = speech_activity(
                tr.mel, tr.grid_start_s + (d - max_lag) / tr.fps, tr.fps, n + 2 * max_lag
            )
            w = frame_weights(tr.seq.valid, level, max_lag)
            for ctx in contexts:
                if model is None:
                    preds = _baseline_predictions(tr, level, w, ctx, max_lag)
                    method = "baseline"
                else:
                    preds = _model_predictions(model, tr, audio, pad, w, ctx, max_lag)
                    method = "model"
                trials.append(Trial(tr.name, tr.group, d, tr.truth_frames + d, ctx, preds, method))
    return trials


def _model_predictions(
    model: FCNSyncNet,
    tr: CachedTrack,
    audio: np.ndarray,
    pad: int,
    w: np.ndarray,
    ctx: int,
    max_lag: int,
) -> np.ndarray:
    scale = model.logit_scale
    n = len(tr.seq.lips)
    if ctx == 0:
        sc = score_sequences(model, [Sequence(tr.seq.lips, tr.seq.valid, audio, pad)], max_lag)[0]
        return window_predictions(sc, w, 0, scale)
    seqs, keep = [], []
    af = model.cfg.audio_per_frame
    for t0 in range(0, n - ctx + 1, ctx):
        if audible(w[:, t0 : t0 + ctx]).mean() < 0.6:
            continue
        a = audio[(t0) * af : (t0 + ctx + 2 * pad) * af]
        seqs.append(Sequence(tr.seq.lips[t0 : t0 + ctx], tr.seq.valid[t0 : t0 + ctx], a, pad))
        keep.append(t0)
    if not seqs:
        return np.zeros(0)
    scores = score_sequences(model, seqs, max_lag, batch_size=64)
    return np.array(
        [
            estimate(lag_curve(sc, w[:, t0 : t0 + ctx]), 0, scale).offset_frames
            for sc, t0 in zip(scores, keep, strict=True)
        ]
    )


def _baseline_predictions(
    tr: CachedTrack, level: np.ndarray, w: np.ndarray, ctx: int, max_lag: int
) -> np.ndarray:
    sc = baseline_lag_scores(tr.opening, tr.seq.valid & np.isfinite(tr.opening), level, max_lag)
    return window_predictions(sc, w, ctx, 1.0)


def summarise(
    trials: list[Trial], tolerance: float = 1.0, max_lag: int = 15
) -> dict[str, dict[str, float]]:
    """Accuracy (fraction of predictions within ``tolerance`` frames of the truth) per method,
    truth, group and context: keys like "model/stated/wild" -> {"ctx5": 0.8, "ctxclip": 0.9}.
    'all' pools the groups (each window counts once)."""
    inherent: dict[tuple[str, str], float] = {}
    by_clip: dict[tuple[str, str], list[float]] = defaultdict(list)
    for tr in trials:
        if tr.context == 0 and tr.predictions.size:
            by_clip[(tr.method, tr.name)].append(float(tr.predictions[0]) - tr.injected)
    for key, v in by_clip.items():
        inherent[key] = float(np.median(v))
    acc: dict[tuple[str, str, str, int], list[float]] = defaultdict(list)
    for tr in trials:
        if tr.predictions.size == 0:
            continue
        truths = {
            "stated": tr.stated_truth,
            "relative": inherent.get((tr.method, tr.name), 0.0) + tr.injected,
        }
        for kind, truth in truths.items():
            if abs(truth) > max_lag:  # outside the searched range: no right answer to find
                continue
            ok = (np.abs(tr.predictions - truth) <= tolerance + 1e-6).astype(float)
            for g in (tr.group, "all"):
                acc[(tr.method, kind, g, tr.context)].extend(ok.tolist())
    out: dict[str, dict[str, float]] = {}
    for (method, kind, group, ctx), v in sorted(acc.items()):
        out.setdefault(f"{method}/{kind}/{group}", {})[f"ctx{ctx or 'clip'}"] = round(
            float(np.mean(v)), 4
        )
    return out


def dev_figures(
    model: FCNSyncNet,
    tracks: list[CachedTrack],
    groups: tuple[str, ...] = ("grid", "curated", "wild", "all"),
) -> dict[str, list[float]]:
    """The figures model selection looks at: accuracy against the relative truth at 5- and
    15-frame windows and on whole clips, per group: ``{group: [ctx5, ctx15, whole]}``."""
    s = summarise(trials_for(model, tracks, contexts=(5, 15, 0)))
    return {g: [s[f"model/relative/{g}"][c] for c in ("ctx5", "ctx15", "ctxclip")] for g in groups}


FIGURES_HEADER = "all: 5 fr  15 fr  whole   wild: 5 fr  15 fr  whole   grid 15  curated 15"


def format_figures(figures: dict[str, list[float]]) -> str:
    """One table row of ``dev_figures`` in percent, under ``FIGURES_HEADER``."""
    a, w = figures["all"], figures["wild"]
    return (
        f"{100 * a[0]:9.1f} {100 * a[1]:6.1f} {100 * a[2]:6.1f}"
        f"   {100 * w[0]:10.1f} {100 * w[1]:6.1f} {100 * w[2]:6.1f}"
        f"   {100 * figures['grid'][1]:7.1f} {100 * figures['curated'][1]:11.1f}"
    )
