"""Scoring lip-sync generators: a sync score per video, a summary per folder, paired comparisons.

The **sync strength** of a face track is read off its lag curve (the weighted mean cosine score
of lips against audio at each lag, as ``detect`` computes it): the score at the best lag plus
that peak's lead over the best rival lag more than ``SIDE_PEAK_EXCLUSION`` frames away. Lips
that follow the audio give a high, isolated peak; lips that follow another voice, or a mouth
that does not move, give a low, flat curve. Taken at the best lag, it does not change when the
audio is merely shifted (the offset says that).

The **sync score** places the strength among real, in-sync footage: the percentile (0-100) of
the shipped reference, the strengths of dev's real clips measured with the shipped weights
(``weights/sync_reference.json``, made by ``benchmarks/sync_reference.py``). 50 means "follows
the audio as well as the median real clip".
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .calibration import Calibration, load_calibration
from .errors import FcnsyncError
from .faces import FaceTracker
from .media import ArrayMedia
from .model import FCNSyncNet, load_model
from .pipeline import (
    DEFAULT_MAX_LAG,
    SEGMENT_S,
    Extracted,
    Result,
    TrackResult,
    decode_from,
    measure_stretches,
)
from .sync import SIDE_PEAK_EXCLUSION
from .writers import Cell

REFERENCE_FILE = "sync_reference.json"
IN_SYNC_FRAMES = 1.0  # |offset| within this many frames counts as in sync
BOOTSTRAP_SAMPLES = 2000
CI_LEVEL = 0.95
MEASURE = "peak_plus_margin"  # the name of ``sync_strength``'s definition, kept in the reference


class ReferenceError(FcnsyncError):
    """A sync reference file that cannot be read."""


def sync_strength(curve: np.ndarray | Sequence[float]) -> float:
    """Peak of a lag curve (2L+1,) (cosine units) plus its margin over the best lag more than
    ``SIDE_PEAK_EXCLUSION`` frames from it. About 0 for lips that do not follow the audio,
    about 1 for the strongest real footage."""
    c = np.asarray(curve, dtype=np.float64)
    i = int(np.argmax(c))
    away = np.abs(np.arange(len(c)) - i) > SIDE_PEAK_EXCLUSION
    second = float(c[away].max()) if away.any() else float(c.min())
    return float(2 * c[i] - second)


@dataclass
class SyncReference:
    """The sync strengths of real, in-sync footage, sorted: the scale of the sync score.

    ``weights_sha256``: the checkpoint they were measured with (a score is meaningful only
    with the same weights); ``made_by``: the command that made the file; ``clips``: how many
    clips, and from where (``source``)."""

    strengths: list[float]
    measure: str = MEASURE
    weights_sha256: str = ""
    source: str = ""
    made_by: str = ""
    clips: int = 0
    figures: dict[str, float] = field(default_factory=dict)

    def percentile(self, strength: float) -> float:
        """Where ``strength`` falls among the reference clips, 0-100 (linear between them; 0
        below the weakest, 100 above the strongest)."""
        ref = np.asarray(self.strengths, dtype=np.float64)
        if len(ref) == 0:
            raise ReferenceError("the sync reference holds no clips")
        ranks = (np.arange(len(ref)) + 0.5) / len(ref) * 100.0
        return float(np.interp(strength, ref, ranks, left=0.0, right=100.0))

    def save(self, path: str | os.PathLike[str]) -> None:
        tmp = Path(str(path) + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)


def fit_reference(strengths: Sequence[float], **meta: object) -> SyncReference:
    """A reference from the strengths (any order) of real, in-sync clips; ``meta``: the other
    ``SyncReference`` fields."""
    values = sorted(round(float(s), 5) for s in strengths if math.isfinite(s))
    if len(values) < 10:
        raise ReferenceError("need the sync strengths of at least 10 real clips")
    return SyncReference(strengths=values, clips=len(values), **meta)  # type: ignore[arg-type]


def load_reference(path: str | os.PathLike[str] | None = None) -> SyncReference:
    """A reference written by ``SyncReference.save`` (default: the shipped one)."""
    p = (
        Path(str(resources.files("fcnsync.weights").joinpath(REFERENCE_FILE)))
        if path is None
        else Path(path)
    )
    try:
        ref = SyncReference(**json.loads(p.read_text()))
    except FileNotFoundError:
        raise ReferenceError(f"no sync reference file at {p}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ReferenceError(f"{p} is not a sync reference file ({exc})") from None
    if ref.measure != MEASURE or not ref.strengths:
        raise ReferenceError(f"{p} measures {ref.measure!r}, expected {MEASURE!r}")
    return ref


@dataclass
class Score:
    """One video's record: ``detect``'s headline (offset, confidence, status) and the sync
    score of the face track that leads it. ``sync_strength`` is None only where no face was
    found (or the file failed); a face with no audible speech under it has strength 0 (there
    is nothing its lips follow)."""

    path: str
    status: str
    error: str | None = None
    reason: str | None = None
    offset_ms: float | None = None
    offset_frames: float | None = None
    confidence: float | None = None
    sync_strength: float | None = None
    sync_score: float | None = None  # percentile of real footage, 0-100
    speech_frames: int = 0
    fps: float | None = None
    duration_s: float | None = None

    def to_dict(self, evidence: bool = False) -> dict[str, object]:
        """Plain JSON-able dict (``evidence`` is accepted for the writers and ignored)."""
        return asdict(self)


def _scored_track(tracks: list[TrackResult]) -> TrackResult | None:
    """The track the headline comes from (strongest evidence), else the longest face."""
    curved = [t for t in tracks if t.lag_curve is not None]
    if curved:
        return max(curved, key=lambda t: (t.confidence or 0.0, t.speech_frames))
    return max(tracks, key=lambda t: t.frames, default=None)


def score_result(result: Result, reference: SyncReference | None) -> Score:
    """The ``Score`` of a ``detect`` result (whose tracks keep their lag curves); with no
    ``reference``, the strength alone (``sync_score`` None)."""
    score = Score(
        path=result.path,
        status=result.status,
        error=result.error,
        reason=result.reason,
        offset_ms=result.offset_ms,
        offset_frames=result.offset_frames,
        confidence=result.confidence,
        fps=result.fps,
        duration_s=result.duration_s,
    )
    track = _scored_track(result.tracks)
    if track is None or result.status == "error":
        return score
    strength = sync_strength(track.lag_curve) if track.lag_curve is not None else 0.0
    score.sync_strength = round(strength, 4)
    if reference is not None:
        score.sync_score = round(reference.percentile(strength), 1)
    score.speech_frames = track.speech_frames
    return score


def score_arrays(
    frames: np.ndarray | Sequence[np.ndarray],
    fps: float,
    waveform: np.ndarray,
    sample_rate_hz: int,
    model: FCNSyncNet | None = None,
    calibration: Calibration | None = None,
    reference: SyncReference | None = None,
    max_lag: int = DEFAULT_MAX_LAG,
    tracker: FaceTracker | None = None,
    name: str = "<arrays>",
) -> Score:
    """Score video held in memory, with no file written: ``frames`` (T, H, W, 3) uint8 RGB (or
    a list of (H, W, 3) frames) shown at ``fps``, ``waveform`` (N,) or (N, C) float in [-1, 1]
    (or int16) at ``sample_rate_hz``, both starting at time 0. The same steps as for a file:
    what a file of these frames and samples would give (lossless), it gives. Raises
    ``FcnsyncError`` for arrays that are not video and audio."""
    model = model if model is not None else load_model()
    calibration = calibration if calibration is not None else load_calibration()
    reference = reference if reference is not None else load_reference()
    media = ArrayMedia(
        list(frames) if not isinstance(frames, np.ndarray) else frames,
        fps,
        waveform,
        sample_rate_hz,
        name=name,
    )
    stretches = decode_from(media, tracker or FaceTracker(), max_lag, SEGMENT_S)
    result = measure_stretches(name, stretches, model, calibration, max_lag)
    return score_result(result, reference)


def score_extracted(
    ex: Extracted,
    model: FCNSyncNet,
    calibration: Calibration,
    reference: SyncReference | None,
    max_lag: int = DEFAULT_MAX_LAG,
) -> Score:
    """The ``Score`` of a file already decoded and tracked (``pipeline.extract`` or a cached
    ``pipeline.load_extracted``): what ``detect`` and ``score_result`` give for it."""
    return score_result(
        measure_stretches(ex.info.path, [ex], model, calibration, max_lag), reference
    )


def bootstrap_interval(
    values: np.ndarray | Sequence[float], seed: int = 0, samples: int = BOOTSTRAP_SAMPLES
) -> tuple[float, float]:
    """Percentile bootstrap ``CI_LEVEL`` interval of the mean of ``values`` (NaN, NaN for
    fewer than two values). Seeded: the same values give the same interval."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(samples, len(v)))].mean(axis=1)
    tail = (1 - CI_LEVEL) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


@dataclass
class FolderSummary:
    """One folder (or input) of scored videos. ``in_sync``: the share of its measured files
    (errors left out) whose offset is known (status ok) and within ``IN_SYNC_FRAMES`` of 0;
    ``median_abs_offset_frames`` over the files with an offset; ``sync_score`` the mean over the
    files with a face, with its bootstrap interval."""

    name: str
    files: int
    undetermined: int
    errors: int
    in_sync: float | None
    median_abs_offset_frames: float | None
    sync_score: float | None
    ci_low: float | None
    ci_high: float | None
    scored: int


def _opt(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 3)


def summarise_folder(name: str, scores: Sequence[Score]) -> FolderSummary:
    """The row of one folder's table."""
    measured = [s for s in scores if s.status != "error"]
    offsets = [abs(s.offset_frames) for s in measured if s.offset_frames is not None]
    in_sync = sum(o <= IN_SYNC_FRAMES for o in offsets)
    values = [s.sync_score for s in scores if s.sync_score is not None]
    lo, hi = bootstrap_interval(values)
    return FolderSummary(
        name=name,
        files=len(scores),
        undetermined=sum(s.status == "undetermined" for s in scores),
        errors=len(scores) - len(measured),
        in_sync=_opt(in_sync / len(measured)) if measured else None,
        median_abs_offset_frames=_opt(float(np.median(offsets))) if offsets else None,
        sync_score=_opt(float(np.mean(values))) if values else None,
        ci_low=_opt(lo),
        ci_high=_opt(hi),
        scored=len(values),
    )


@dataclass
class Pair:
    """One file and its namesake in the reference folder."""

    name: str
    score: float | None
    reference_score: float | None
    offset_frames: float | None
    reference_offset_frames: float | None

    @property
    def difference(self) -> float | None:
        if self.score is None or self.reference_score is None:
            return None
        return round(self.score - self.reference_score, 1)


@dataclass
class PairSummary:
    """A folder against the reference folder, over the pairs where both have a sync score:
    the mean of each, the mean difference (folder minus reference) with its paired bootstrap
    interval, and the share of pairs where the folder scores higher."""

    name: str
    reference: str
    pairs: int
    unpaired: int
    sync_score: float | None
    reference_score: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    higher: float | None


def pair_key(path: str, root: str) -> str:
    """What pairs two files: the path below its input folder, without the extension."""
    rel = os.path.relpath(path, root) if os.path.isdir(root) else os.path.basename(path)
    return os.path.splitext(rel)[0]


def pair_up(
    scores: Sequence[Score], root: str, references: Sequence[Score], reference_root: str
) -> tuple[list[Pair], int]:
    """Pairs of files with the same name (path below the folder, extension aside); returns the
    pairs, in the folder's order, and the number of files of the folder without a namesake."""
    ref = {pair_key(s.path, reference_root): s for s in references}
    pairs, unpaired = [], 0
    for s in scores:
        key = pair_key(s.path, root)
        r = ref.get(key)
        if r is None:
            unpaired += 1
            continue
        pairs.append(Pair(key, s.sync_score, r.sync_score, s.offset_frames, r.offset_frames))
    return pairs, unpaired


def summarise_pairs(name: str, reference: str, pairs: Sequence[Pair], unpaired: int) -> PairSummary:
    """The paired comparison of one folder with the reference folder."""
    both = [p for p in pairs if p.difference is not None]
    a = np.array([p.score for p in both], dtype=np.float64)
    b = np.array([p.reference_score for p in both], dtype=np.float64)
    lo, hi = bootstrap_interval(a - b)
    return PairSummary(
        name=name,
        reference=reference,
        pairs=len(both),
        unpaired=unpaired + len(pairs) - len(both),
        sync_score=_opt(float(a.mean())) if len(both) else None,
        reference_score=_opt(float(b.mean())) if len(both) else None,
        difference=_opt(float((a - b).mean())) if len(both) else None,
        ci_low=_opt(lo),
        ci_high=_opt(hi),
        higher=_opt(float((a > b).mean())) if len(both) else None,
    )


FOLDER_COLUMNS = (
    "folder",
    "files",
    "undetermined",
    "errors",
    "in sync ±1 frame (%)",
    "median |offset| (frames)",
    "sync score",
    "95 % interval",
)
PAIR_SUMMARY_COLUMNS = (
    "folder",
    "against",
    "pairs",
    "unpaired",
    "sync score",
    "against's score",
    "difference",
    "95 % interval",
    "share higher (%)",
)
PAIR_COLUMNS = ("file", "sync score", "against's score", "difference", "offset", "against's offset")


def _percent(share: float | None) -> float | None:
    return None if share is None else round(100.0 * share, 1)


def _interval(lo: float | None, hi: float | None) -> str | None:
    return None if lo is None or hi is None else f"{lo:.1f} to {hi:.1f}"


def folder_table(summaries: Sequence[FolderSummary]) -> tuple[tuple[str, ...], list[list[Cell]]]:
    """Columns and rows of the folder table (one row per folder)."""
    rows: list[list[Cell]] = [
        [
            s.name,
            s.files,
            s.undetermined,
            s.errors,
            _percent(s.in_sync),
            s.median_abs_offset_frames,
            None if s.sync_score is None else round(s.sync_score, 1),
            _interval(s.ci_low, s.ci_high),
        ]
        for s in summaries
    ]
    return FOLDER_COLUMNS, rows


def pair_summary_table(
    summaries: Sequence[PairSummary],
) -> tuple[tuple[str, ...], list[list[Cell]]]:
    """Columns and rows of the paired comparison (one row per folder)."""
    rows: list[list[Cell]] = [
        [
            s.name,
            s.reference,
            s.pairs,
            s.unpaired,
            None if s.sync_score is None else round(s.sync_score, 1),
            None if s.reference_score is None else round(s.reference_score, 1),
            None if s.difference is None else round(s.difference, 1),
            _interval(s.ci_low, s.ci_high),
            _percent(s.higher),
        ]
        for s in summaries
    ]
    return PAIR_SUMMARY_COLUMNS, rows


def pair_table(pairs: Sequence[Pair]) -> tuple[tuple[str, ...], list[list[Cell]]]:
    """Columns and rows of the per-pair differences."""
    rows: list[list[Cell]] = [
        [
            p.name,
            p.score,
            p.reference_score,
            p.difference,
            p.offset_frames,
            p.reference_offset_frames,
        ]
        for p in pairs
    ]
    return PAIR_COLUMNS, rows


def score_paths(
    paths: Sequence[str],
    model: FCNSyncNet,
    calibration: Calibration,
    reference: SyncReference,
    max_lag: int = DEFAULT_MAX_LAG,
    jobs: int = 1,
    settings: object = None,
    on_score: object = None,
) -> list[Score]:
    """``Score`` every path (in input order); a file that fails gets an error record. With
    ``jobs`` > 1, worker processes built from ``settings`` (a ``batch.WorkerSettings``) measure
    the files. ``on_score(score)`` is called as each file is done."""
    from .batch import WorkerSettings, measure_file, run_parallel  # noqa: PLC0415

    out: list[Score | None] = [None] * len(paths)

    def take(index: int, result: Result) -> None:
        out[index] = score_result(result, reference)
        if callable(on_score):
            on_score(out[index])

    if jobs > 1 and len(paths) > 1 and isinstance(settings, WorkerSettings):
        run_parallel(list(paths), settings, jobs, take)
    else:
        for i, path in enumerate(paths):
            take(i, measure_file(path, model, calibration, max_lag, 16))
    return [s for s in out if s is not None]
