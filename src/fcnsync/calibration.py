"""Evidence -> probability that the reported offset is right (within +-1 frame), and the rules
that say "undetermined". Fitted on real clips with injected offsets; saved as JSON."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import CalibrationError
from .sync import Estimate

FEATURES = ("margin_z", "softmax_peak", "peak", "log_frames")
DEFAULT_CALIBRATION = "calibration.json"
MIN_SPEECH_FRAMES = 12  # fewer frames with a face and speech than this: no evidence to speak of
MIN_FACE_FRACTION = 0.2  # a track must show its face in this fraction of its frames


def evidence_vector(est: Estimate) -> np.ndarray:
    """The numbers calibration looks at, in ``FEATURES`` order.

    ``margin_z`` is the peak's lead over the best rival lag, scaled by the square root of the
    frames that back it (a long clip with a modest margin is as convincing as a short clip with
    a big one)."""
    n = max(est.frames_used, 1)
    return np.array(
        [est.margin * math.sqrt(n), est.softmax_peak, est.peak, math.log(n)], dtype=np.float64
    )


@dataclass
class Calibration:
    """Logistic model on ``evidence_vector``; ``threshold``: below this probability the answer
    is "undetermined"; ``bias_frames``: a constant lag of the front end, subtracted."""

    weights: list[float] = field(default_factory=lambda: [1.0, 2.0, 0.0, 0.0])
    intercept: float = -2.0
    mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    scale: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0, 1.0])
    threshold: float = 0.5
    bias_frames: float = 0.0
    source: str = "default"
    figures: dict[str, float] = field(default_factory=dict)

    def probability(self, est: Estimate) -> float:
        """Calibrated probability that ``est.offset_frames`` is within +-1 frame of the truth."""
        return self.probability_of(evidence_vector(est))

    def probability_of(self, evidence: np.ndarray) -> float:
        """The same from an ``evidence_vector`` (F,)."""
        x = (evidence - np.array(self.mean)) / np.array(self.scale)
        z = float(np.dot(self.weights, x) + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def save(self, path: str | os.PathLike[str]) -> None:
        tmp = Path(str(path) + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)


def load_calibration(path: str | os.PathLike[str] | None = None) -> Calibration:
    """A calibration file written by ``Calibration.save`` (default: the shipped one)."""
    p = (
        Path(str(resources.files("fcnsync.weights").joinpath(DEFAULT_CALIBRATION)))
        if path is None
        else Path(path)
    )
    if path is None and not p.exists():
        return Calibration()
    try:
        data = json.loads(p.read_text())
        cal = Calibration(**data)
    except FileNotFoundError:
        raise CalibrationError(f"no calibration file at {p}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise CalibrationError(f"{p} is not a calibration file ({exc})") from None
    if len(cal.weights) != len(FEATURES):
        raise CalibrationError(f"{p} has {len(cal.weights)} weights, expected {len(FEATURES)}")
    return cal


def fit(
    evidence: np.ndarray, correct: np.ndarray, l2: float = 1e-2, source: str = "fitted"
) -> Calibration:
    """Logistic regression (Newton's method) of ``correct`` (N,) 0/1 on ``evidence`` (N, F)."""
    if len(evidence) < 10 or correct.min() == correct.max():
        raise CalibrationError(
            "need at least 10 trials with both right and wrong answers to fit a calibration"
        )
    mean = evidence.mean(axis=0)
    scale = evidence.std(axis=0) + 1e-9
    x = np.hstack([(evidence - mean) / scale, np.ones((len(evidence), 1))])
    y = correct.astype(np.float64)
    w = np.zeros(x.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -50, 50)))
        grad = x.T @ (p - y) + l2 * np.r_[w[:-1], 0]
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.diag(np.r_[np.ones(len(w) - 1), 0])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Calibration(
        weights=w[:-1].tolist(),
        intercept=float(w[-1]),
        mean=mean.tolist(),
        scale=scale.tolist(),
        source=source,
    )


def expected_calibration_error(prob: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE: the mean |accuracy - confidence| over equal-width probability bins, weighted by
    the number of trials in each."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - prob[m].mean())
    return float(ece)
