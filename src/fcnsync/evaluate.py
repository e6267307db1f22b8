"""Measuring accuracy: the literature's protocol (search +-max_lag frames, correct within +-1
frame, context windows of 5..15 frames and the whole clip), on real clips with injected offsets,
beside a classical baseline (mouth opening against audio loudness), per dataset group.

Two truths: "stated" (the manifest's offset, 0 where unknown) and "relative" (the clip's own
offset estimated as the median of prediction - injection over all its trials, so a clip whose
recording is itself off by a few frames is judged on whether the answer moves with the shift)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .calibration import Calibration, expected_calibration_error, fit
from .dataset import CachedTrack, prepare_tracks
from .errors import FcnsyncError
from .features import mouth_opening, speech_activity, track_on_grid
from .inference import Sequence, score_sequences
from .model import FCNSyncNet
from .pipeline import Extracted
from .sync import Estimate, audible, baseline_lag_scores, estimate, frame_weights, lag_curve
from .trials import (
    CONTEXT_PAD,
    CONTEXTS,
    OFFSETS_FRAMES,
    Trial,
    shifted_audio,
    summarise,
    trials_for,
)


def baseline_estimate(ex: Extracted, max_lag: int = 15) -> Estimate | None:
    """The classical method on a decoded file: the longest face track's mouth opening against
    the audio level, whole clip. None when there is no usable track."""
    best = None
    for track in ex.tracks:
        times, points, _, _ = track.arrays()
        if len(times) < 2 or (best is not None and len(times) <= len(best[0])):
            continue
        best = (times, points)
    if best is None:
        return None
    times, points = best
    fps = ex.info.fps
    start, opening, valid = track_on_grid(times, mouth_opening(points)[:, None], fps)
    n = len(opening)
    level = speech_activity(ex.mel, start - max_lag / fps, fps, n + 2 * max_lag)
    scores = baseline_lag_scores(opening[:, 0], valid, level, max_lag)
    w = frame_weights(valid, level, max_lag)
    return estimate(lag_curve(scores, w), int(audible(w, 0.5).sum()), 1.0)


@dataclass
class EvidenceSet:
    """Per-trial evidence for calibration: ``evidence`` (N, F), ``correct`` (N,) bool,
    ``error_frames`` (N,) prediction minus truth, ``clip`` (N,) names, ``window`` (N,) frames
    (0: whole clip)."""

    evidence: np.ndarray
    correct: np.ndarray
    error_frames: np.ndarray
    clip: np.ndarray
    window: np.ndarray


def evidence_trials(
    model: FCNSyncNet,
    tracks: list[CachedTrack],
    offsets: tuple[int, ...] = (-12, -6, -3, -1, 0, 1, 3, 6, 12),
    windows: tuple[int, ...] = (0, 25, 50, 100),
    max_lag: int = 15,
    known_truth: dict[str, bool] | None = None,
    negatives: frozenset[str] = frozenset(),
) -> EvidenceSet:
    """Evidence and right/wrong of the model's answer for every track, injected offset and
    window length. Truth: the stated offset for clips in ``known_truth``, else the clip's own
    offset estimated from all its whole-clip trials (median); a clip in ``negatives`` (face
    and sound of different origin) has no right answer."""
    from .calibration import evidence_vector  # noqa: PLC0415

    scale = model.logit_scale
    pad = max_lag + CONTEXT_PAD
    rows: list[tuple[np.ndarray, float, float, str, int, int]] = []  # ev, pred, truth, clip, w, d
    for tr in tracks:
        n = len(tr.seq.lips)
        seqs, weights = [], []
        for d in offsets:
            seqs.append(Sequence(tr.seq.lips, tr.seq.valid, shifted_audio(tr, d, pad), pad))
            level = speech_activity(
                tr.mel, tr.grid_start_s + (d - max_lag) / tr.fps, tr.fps, n + 2 * max_lag
            )
            weights.append(frame_weights(tr.seq.valid, level, max_lag))
        scores = score_sequences(model, seqs, max_lag)
        whole = []
        for d, sc, w in zip(offsets, scores, weights, strict=True):
            for win in windows:
                spans = (
                    [(0, n)] if win == 0 else [(t0, t0 + win) for t0 in range(0, n - win + 1, win)]
                )
                for t0, t1 in spans:
                    ww = w[:, t0:t1]
                    used = int(audible(ww, 0.5).sum())
                    if used < 3:
                        continue
                    est = estimate(lag_curve(sc[:, t0:t1], ww), used, scale)
                    rows.append((evidence_vector(est), est.offset_frames, np.nan, tr.name, win, d))
                    if win == 0:
                        whole.append(est.offset_frames - d)
        own = float(np.median(whole)) if whole else 0.0
        base = tr.truth_frames if (known_truth or {}).get(tr.name) else own
        for i in range(len(rows) - 1, -1, -1):
            ev, pred, truth, clip, win, d = rows[i]
            if clip != tr.name or not np.isnan(truth):
                break
            rows[i] = (ev, pred, base + d, clip, win, d)
    ev = np.array([r[0] for r in rows])
    err = np.array([r[1] - r[2] for r in rows])
    neg = np.array([r[3] in negatives for r in rows])
    correct = (np.abs(err) <= 1.0 + 1e-6) & ~neg
    return EvidenceSet(
        ev, correct, err, np.array([r[3] for r in rows]), np.array([r[4] for r in rows])
    )


def fit_calibration_from(
    ev: EvidenceSet, source: str, precision_target: float = 0.9
) -> Calibration:
    """A calibration fitted on ``ev``; its "undetermined" threshold is the lowest probability
    at which the answers kept are right at least ``precision_target`` of the time (and never
    below 0.5)."""
    cal = fit(ev.evidence, ev.correct, source=source)
    prob = np.array([cal.probability_of(x) for x in ev.evidence])
    threshold = 0.5
    for th in np.linspace(0.5, 0.95, 46):
        kept = prob >= th
        if kept.sum() >= 10 and ev.correct[kept].mean() >= precision_target:
            threshold = float(th)
            break
    cal.threshold = round(threshold, 3)
    cal.figures = {
        "trials": float(len(prob)),
        "ece": round(expected_calibration_error(prob, ev.correct), 4),
        "accuracy": round(float(ev.correct.mean()), 4),
        "kept_fraction": round(float((prob >= threshold).mean()), 4),
        "kept_accuracy": round(float(ev.correct[prob >= threshold].mean()), 4)
        if (prob >= threshold).any()
        else 0.0,
    }
    return cal


def probabilities(cal: Calibration, ev: EvidenceSet) -> np.ndarray:
    return np.array([cal.probability_of(x) for x in ev.evidence])


def cross_validated_ece(ev: EvidenceSet, folds: int = 2, seed: int = 0) -> tuple[float, np.ndarray]:
    """ECE of calibrations fitted on other clips than the ones they are scored on (clips split
    into ``folds`` groups); returns the ECE and the out-of-fold probabilities."""
    clips = np.unique(ev.clip)
    rng = np.random.default_rng(seed)
    rng.shuffle(clips)
    prob = np.zeros(len(ev.correct))
    for f in range(folds):
        test_clips = set(clips[f::folds])
        test = np.array([c in test_clips for c in ev.clip])
        sub = EvidenceSet(
            ev.evidence[~test],
            ev.correct[~test],
            ev.error_frames[~test],
            ev.clip[~test],
            ev.window[~test],
        )
        cal = fit(sub.evidence, sub.correct)
        prob[test] = [cal.probability_of(x) for x in ev.evidence[test]]
    return expected_calibration_error(prob, ev.correct), prob


def reliability_diagram(prob: np.ndarray, correct: np.ndarray, path: str, title: str) -> None:
    """Write a PNG: accuracy against confidence in 10 bins, with the trial counts."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    edges = np.linspace(0, 1, 11)
    idx = np.clip(np.digitize(prob, edges[1:-1]), 0, 9)
    centers, accs, counts = [], [], []
    for b in range(10):
        m = idx == b
        if m.any():
            centers.append(prob[m].mean())
            accs.append(correct[m].mean())
            counts.append(int(m.sum()))
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot(centers, accs, "o-", label="fcnsync")
    for c, a, k in zip(centers, accs, counts, strict=True):
        ax.annotate(str(k), (c, a), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("confidence (predicted probability of being within +-1 frame)")
    ax.set_ylabel("observed accuracy")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


GROUPS = ("grid", "curated", "wild", "all")


def accuracy_tables(trials: list[Trial]) -> dict[str, dict[str, dict[str, float]]]:
    """{truth: {"method/group": {"ctx5": acc, ..., "ctxclip": acc}}} for printing."""
    s = summarise(trials)
    out: dict[str, dict[str, dict[str, float]]] = {"stated": {}, "relative": {}}
    for key, row in s.items():
        method, truth, group = key.split("/")
        out[truth][f"{method}/{group}"] = row
    return out


def per_offset_accuracy(trials: list[Trial]) -> dict[str, dict[int, float]]:
    """Whole-clip accuracy (stated truth) per injected offset, per method."""
    acc: dict[tuple[str, int], list[float]] = defaultdict(list)
    for tr in trials:
        if tr.context == 0 and tr.predictions.size:
            acc[(tr.method, tr.injected)].append(
                float(abs(tr.predictions[0] - tr.stated_truth) <= 1)
            )
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for (method, d), v in sorted(acc.items()):
        out[method][d] = round(float(np.mean(v)), 4)
    return dict(out)


def run_evaluation(
    data_dir: str,
    model: FCNSyncNet,
    calibration: Calibration,
    cache_dir: str,
    out_dir: str,
    offsets: tuple[int, ...] = OFFSETS_FRAMES,
    contexts: tuple[int, ...] = CONTEXTS,
    max_lag: int = 15,
    fit_to: str | None = None,
) -> dict[str, object]:
    """The whole evaluation of a model on a data folder (its manifest's real clips, and its
    negatives for calibration): accuracy tables beside the classical baseline, per offset,
    the calibration's ECE and a reliability diagram. Writes report.json and reliability.png
    to ``out_dir`` and returns the report."""
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415

    from .cache import read_clips  # noqa: PLC0415

    os.makedirs(out_dir, exist_ok=True)
    pad = max_lag + CONTEXT_PAD + max(abs(o) for o in offsets)
    real = prepare_tracks(data_dir, cache_dir, pad=pad, kinds=("real",))
    if not real:
        raise FcnsyncError(f"no real clips with a face and speech to evaluate in {data_dir}")
    negatives = prepare_tracks(data_dir, cache_dir, pad=pad, kinds=("negative",))
    trials = trials_for(model, real, offsets, contexts, max_lag)
    trials += trials_for(None, real, offsets, contexts, max_lag)
    known = {
        c.path.name: bool(c.inherent_offset_frames) or c.group == "grid"
        for c in read_clips(data_dir)
    }
    ev = evidence_trials(
        model,
        real + negatives,
        max_lag=max_lag,
        known_truth=known,
        negatives=frozenset(t.name for t in negatives),
    )
    bias = front_end_bias(trials, real)
    if fit_to:
        calibration = fit_calibration_from(ev, source=f"fitted on {os.path.basename(data_dir)}")
        calibration.bias_frames = 0.0 if abs(bias) < 0.25 else round(bias, 2)
        calibration.save(fit_to)
    prob = probabilities(calibration, ev)
    kept = prob >= calibration.threshold
    ece = expected_calibration_error(prob, ev.correct)
    cv_ece, _ = cross_validated_ece(ev)
    reliability_diagram(
        prob,
        ev.correct,
        os.path.join(out_dir, "reliability.png"),
        f"dev: {len(prob)} trials, ECE {ece:.3f}",
    )
    per_clip = {}
    for tr in trials:
        if tr.method == "model" and tr.context == 0 and tr.injected == 0 and tr.predictions.size:
            per_clip[tr.name] = round(float(tr.predictions[0]), 2)
    report: dict[str, object] = {
        "clips": len(real),
        "negatives": len(negatives),
        "offsets": list(offsets),
        "accuracy": accuracy_tables(trials),
        "per_offset_whole_clip": per_offset_accuracy(trials),
        "calibration": {
            "ece": round(ece, 4),
            "cross_validated_ece": round(cv_ece, 4),
            "trials": len(prob),
            "threshold": calibration.threshold,
            "source": calibration.source,
            "kept_fraction": round(float(kept.mean()), 4),
            "kept_accuracy": round(float(ev.correct[kept].mean()), 4) if kept.any() else None,
            "accuracy_all_trials": round(float(ev.correct.mean()), 4),
        },
        "front_end_bias_frames": round(bias, 3),
        "clip_offsets_at_zero_injection": per_clip,
    }
    with open(os.path.join(out_dir, "report.json"), "w") as fh:
        json.dump(report, fh, indent=2)
    return report


def front_end_bias(trials: list[Trial], tracks: list[CachedTrack]) -> float:
    """A constant lag of our own front end, measured as the median whole-clip offset the model
    finds in the unseen GRID speakers' clips (studio recordings, in sync), before any bias
    correction. 0 where there are none."""
    grid = {t.name for t in tracks if t.group == "grid"}
    offs = [
        float(tr.predictions[0]) - tr.injected
        for tr in trials
        if tr.method == "model" and tr.context == 0 and tr.name in grid and tr.predictions.size
    ]
    return float(np.median(offs)) if offs else 0.0


def calibrate_clips(
    tracks: list[CachedTrack],
    model: FCNSyncNet,
    current: Calibration,
    labelled: bool,
    max_lag: int = 15,
) -> tuple[Calibration, dict[str, float]]:
    """Fit a calibration on a user's own clips (shifted by the tool itself): with ``labelled``
    the clips' ``truth_frames`` are the truth, otherwise each clip's own offset is estimated
    from its shifted copies. Returns the new calibration and before/after figures."""
    known = {t.name: labelled for t in tracks}
    ev = evidence_trials(model, tracks, max_lag=max_lag, known_truth=known)
    before = expected_calibration_error(probabilities(current, ev), ev.correct)
    cv_ece, _ = cross_validated_ece(ev) if len(tracks) >= 4 else (float("nan"), None)
    new = fit_calibration_from(ev, source="fcnsync calibrate")
    new.bias_frames = current.bias_frames
    after = expected_calibration_error(probabilities(new, ev), ev.correct)
    return new, {
        "trials": float(len(ev.correct)),
        "accuracy": float(ev.correct.mean()),
        "ece_before": before,
        "ece_after": after,
        "ece_after_cross_validated": cv_ece,
    }
