"""detect(): media -> faces -> features -> model -> sync -> calibration -> Result."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

import numpy as np

from .calibration import MIN_FACE_FRACTION, MIN_SPEECH_FRAMES, Calibration, load_calibration
from .errors import FcnsyncError
from .faces import FaceTracker, Track
from .features import (
    LogMel,
    MelStream,
    audio_on_grid,
    join_mel,
    lip_features,
    mel_from,
    normalise_mel,
    speech_activity,
    track_on_grid,
)
from .inference import CONTEXT_FRAMES, Sequence, audio_pad_frames, score_sequences
from .media import ArrayMedia, MediaInfo, MediaReader, VideoFrame
from .model import FCNSyncNet, load_model
from .profile import VARYING, Follower, Segment, Stretches, fit_profile, residual_sums
from .sync import (
    Estimate,
    audible,
    curve_from_sums,
    estimate,
    frame_weights,
    peaks_on_edge,
    recentred,
)

DEFAULT_MAX_LAG = 15  # frames searched each way (+-600 ms at 25 fps)
MIN_TRACK_FRAMES = 10  # shorter face tracks are not scored
SERIES_STEP_S = 1.0  # the evidence-over-time series has one point per this many seconds
EVIDENCE_KEYS = ("lag_curve", "series", "lag_curve_centre_frames")  # a track's, with evidence
STRETCH_PARTS = 5  # ... and each second's evidence is kept in this many parts, to place a change
SEGMENT_S = 60.0  # long files are scored in stretches of this length as they are decoded
FOLLOW_PIECE_S = 5.0  # a drift is followed by re-centring the search this often (seconds)


@dataclass
class Extracted:
    """Everything the model needs from one file: tracks of lip landmarks and the log-mel audio,
    on the same clock. Kept small (no pixels), so it can be cached for training."""

    info: MediaInfo
    tracks: list[Track]
    mel: LogMel
    video_start_s: float
    video_end_s: float
    video_frames: int
    scene_cuts_s: list[float] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    frame_size: tuple[int, int] = (0, 0)  # decoded (width, height); tracks are in these pixels
    decode_scale: float = 1.0  # decoded size over the stored size


def _decode_into(
    reader: MediaReader | ArrayMedia,
    tracker: FaceTracker,
    mel_stream: MelStream,
    timings: dict[str, float],
) -> Iterator[float]:
    """The one decode loop: every frame goes to the face tracker, every audio chunk to the
    log-mel stream (time spent added to ``timings``). Yields each video frame's time once it
    is tracked, so that a caller can act between frames."""
    items = iter(reader)
    while True:
        t1 = time.perf_counter()
        item = next(items, None)
        t2 = time.perf_counter()
        timings["decode"] = timings.get("decode", 0.0) + t2 - t1
        if item is None:
            return
        if isinstance(item, VideoFrame):
            tracker.update(item.time_s, item)
            timings["track"] = timings.get("track", 0.0) + time.perf_counter() - t2
            yield item.time_s
        else:
            mel_stream.push(item.time_s, item.samples)
            timings["audio"] = timings.get("audio", 0.0) + time.perf_counter() - t2


def _extracted(
    reader: MediaReader | ArrayMedia,
    tracks: list[Track],
    mel: LogMel,
    scene_cuts: list[float],
    timings: dict[str, float],
) -> Extracted:
    stats = reader.stats
    return Extracted(
        info=reader.info,
        tracks=tracks,
        mel=mel,
        video_start_s=float(stats.first_video_time_s or 0.0),
        video_end_s=float(stats.last_video_time_s or 0.0),
        video_frames=stats.video_frames,
        scene_cuts_s=scene_cuts,
        frame_size=stats.frame_size,
        decode_scale=stats.scale,
        timings_s=timings,
    )


def extract(path: str | os.PathLike[str], tracker: FaceTracker | None = None) -> Extracted:
    """Decode ``path`` once, streaming, and keep every face track and the whole log-mel (for
    training and evaluation on short clips; ``detect`` scores long files in stretches).
    Raises ``MediaError`` for unreadable input."""
    tracker = tracker or FaceTracker()
    mel_stream = MelStream()
    reader = MediaReader(path)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    for _ in _decode_into(reader, tracker, mel_stream, timings):
        pass
    ex = _extracted(
        reader,
        tracker.finish(),
        mel_stream.finish(),
        list(getattr(tracker, "scene_cuts", [])),
        timings,
    )
    timings["extract"] = time.perf_counter() - t0
    return ex


def save_extracted(ex: Extracted, path: str | os.PathLike[str]) -> None:
    """Cache an ``Extracted`` as .npz (used by training and evaluation)."""
    arrays: dict[str, np.ndarray] = {
        "fps": np.array(ex.info.fps),
        "mel_start_s": np.array(ex.mel.start_s),
        "mel": ex.mel.values,
        "energy": ex.mel.energy,
        "video_span": np.array([ex.video_start_s, ex.video_end_s, ex.video_frames]),
        "n_tracks": np.array(len(ex.tracks)),
    }
    for i, tr in enumerate(ex.tracks):
        times, points, boxes, appearance = tr.arrays()
        arrays[f"t{i}_times"] = times
        arrays[f"t{i}_points"] = points
        arrays[f"t{i}_boxes"] = boxes
        arrays[f"t{i}_appearance"] = appearance
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def load_extracted(path: str | os.PathLike[str]) -> Extracted:
    """An ``Extracted`` cached by ``save_extracted`` (its media info carries only the frame
    rate and the video span; scene cuts and timings are not kept)."""
    z = np.load(path)
    fps = float(z["fps"])
    v0, v1, frames = (float(x) for x in z["video_span"])
    tracks = [
        Track(
            i,
            z[f"t{i}_times"].tolist(),
            list(z[f"t{i}_points"]),
            list(z[f"t{i}_boxes"]),
            list(z[f"t{i}_appearance"]),
        )
        for i in range(int(z["n_tracks"]))
    ]
    return Extracted(
        info=MediaInfo(os.fspath(path), "", v1 - v0 + 1 / fps, fps, 0, 0, "", "", 0, 0),
        tracks=tracks,
        mel=LogMel(float(z["mel_start_s"]), z["mel"], z["energy"]),
        video_start_s=v0,
        video_end_s=v1,
        video_frames=int(frames),
    )


@dataclass
class TrackResult:
    """One face track's measurement. Times in seconds on the media clock, ``box`` the median
    face box (x0, y0, x1, y1) in the video's pixels (as displayed, after rotation)."""

    track_id: int
    start_s: float
    end_s: float
    frames: int
    face_fraction: float
    speech_frames: int
    box: list[float]
    offset_frames: float | None
    offset_ms: float | None
    confidence: float | None
    status: str
    reason: str | None
    lag_curve: list[float] | None = None
    series: list[dict[str, float]] | None = None
    lag_curve_centre_frames: int | None = None  # the offset at the middle of ``lag_curve``


@dataclass
class Result:
    """The record of one input file; ``to_dict`` is the JSON object the writers print.

    ``offset_ms`` positive: the audio leads the video (delay the audio by that much to fix).
    It is the one offset that best fits the whole of the headline track; when
    ``sync_profile`` is "drift" or "steps" it does not hold throughout the file, and
    ``segments`` say how the offset changes (see ``profile.Segment``).
    """

    path: str
    status: str  # "ok" | "undetermined" | "error"
    error: str | None = None
    reason: str | None = None
    offset_ms: float | None = None
    offset_frames: float | None = None
    fps: float | None = None
    confidence: float | None = None
    verdict: str = ""
    tracks: list[TrackResult] = field(default_factory=list)
    duration_s: float | None = None
    elapsed_s: float | None = None
    max_lag_frames: int = DEFAULT_MAX_LAG
    sync_profile: str | None = None  # "constant" | "drift" | "steps"; None when undetermined
    segments: list[Segment] | None = None
    drift_ms_per_min: float | None = None

    @property
    def varies(self) -> bool:
        """Whether the offset changes within the file (a drift or steps)."""
        return self.sync_profile in VARYING

    @property
    def note(self) -> str:
        """One line for a table: why there is no answer, or, when the offset changes within
        the file, the verdict that says how."""
        return self.error or self.reason or (self.verdict if self.varies else "")

    def to_dict(self, evidence: bool = False) -> dict[str, object]:
        """Plain JSON-able dict; ``evidence`` keeps each track's lag curve and series."""
        d = asdict(self)
        if not evidence:
            for tr in d["tracks"]:
                for key in EVIDENCE_KEYS:
                    tr.pop(key, None)
        return d


def _box_in_video_pixels(box: np.ndarray, ex: Extracted) -> list[float]:
    """A face box from decoded-frame pixels to the video's own (upright) pixels, clipped."""
    w, h = ex.frame_size
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = max(0.0, x0), min(float(w), x1) if w else x1
    y0, y1 = max(0.0, y0), min(float(h), y1) if h else y1
    return [round(v / ex.decode_scale, 1) for v in (x0, y0, x1, y1)]


def verdict_text(offset_ms: float, offset_frames: float) -> str:
    """A sentence for people: "audio leads video by 120 ms (3.0 frames)"."""
    if abs(offset_frames) < 0.5:
        return f"audio and video in sync (offset {offset_ms:+.0f} ms, {offset_frames:+.1f} frames)"
    side = "leads" if offset_ms > 0 else "lags"
    return f"audio {side} video by {abs(offset_ms):.0f} ms ({abs(offset_frames):.1f} frames)"


def error_result(path: str, message: str, elapsed_s: float | None = None) -> Result:
    return Result(
        path=path, status="error", error=message, verdict=f"error: {message}", elapsed_s=elapsed_s
    )


def stretch_sums(
    scores: np.ndarray,
    weights: np.ndarray,
    fps: float,
    start_s: float,
    centre: int = 0,
    parts: int = STRETCH_PARTS,
) -> Stretches:
    """One stretch per ``SERIES_STEP_S`` of a track's (2L+1, T) lag scores and weights, whose
    first frame is at ``start_s`` and whose search was centred on ``centre`` frames: the lag
    sums and the frames with a face and speech (``profile.Stretches``), and the same sums over
    ``parts`` consecutive parts of each stretch (its ``parts``; none with ``parts`` 0)."""
    step = max(1, round(SERIES_STEP_S * fps))
    mid = (len(weights) - 1) // 2
    n = scores.shape[1]
    if n == 0:
        return Stretches.empty(mid)
    starts = np.arange(0, n, step)
    ends = np.minimum(starts + step, n)

    def sums(a: np.ndarray, b: np.ndarray, t_a: np.ndarray, t_b: np.ndarray) -> Stretches:
        # sums over frames a:b (end exclusive), by differences of running sums
        run = np.zeros((len(weights), n + 1))
        np.cumsum(scores * weights, axis=1, out=run[:, 1:])
        num = (run[:, b] - run[:, a]).T
        np.cumsum(weights, axis=1, out=run[:, 1:])
        den = (run[:, b] - run[:, a]).T
        used = np.concatenate([[0.0], np.cumsum(audible(weights, 0.5))])
        return Stretches(
            t_s=start_s + (t_a + t_b) / 2 / fps,
            centre=np.full(len(a), centre, dtype=int),
            num=num.astype(np.float64),
            den=den.astype(np.float64),
            frames=used[b] - used[a],
            start_s=start_s + t_a / fps,
        )

    st = sums(starts, ends, starts, ends)
    if parts > 0:
        # each stretch's frames cut into ``parts`` (as equal as whole frames allow; a part of
        # the last, short stretch may be empty, its time still within the stretch)
        cut = starts[:, None] + np.round(np.arange(parts + 1)[None, :] * step / parts).astype(int)
        a, b = cut[:, :-1].ravel(), cut[:, 1:].ravel()
        st.parts = sums(np.minimum(a, n), np.minimum(b, n), a, b)
    return st


def _series(st: Stretches, fps: float, cal: Calibration, scale: float) -> list[dict]:  # type: ignore[type-arg]
    """The evidence-over-time series of a track from its stretches: one point per stretch
    with enough frames, its offset (frames, calibrated bias removed) and confidence."""
    step = max(1, round(SERIES_STEP_S * fps))
    out = []
    for s in range(len(st.t_s)):
        t_s = round(float(st.start_s[s]), 3)
        used = int(st.frames[s])
        if used < max(3, step // 4):
            out.append({"t_s": t_s, "offset_frames": None, "confidence": 0.0})
            continue
        est = estimate(curve_from_sums(st.num[s], st.den[s]), used, scale)
        out.append(
            {
                "t_s": t_s,
                "offset_frames": round(est.offset_frames + st.centre[s] - cal.bias_frames, 2),
                "confidence": round(cal.probability(est), 3),
            }
        )
    return out


@dataclass
class TrackEvidence:
    """What one face track (or a piece of it) contributes: the lag curve as weighted sums, so
    that pieces of a track measured one after another add up exactly."""

    track_id: int
    start_s: float
    end_s: float
    frames: int
    valid_frames: int
    speech_frames: int
    box: np.ndarray  # (4,) mean face box in video pixels
    num: np.ndarray  # (2L+1,) sum over frames of weight * score
    den: np.ndarray  # (2L+1,) sum of weights
    series: list[dict[str, float | None]] = field(default_factory=list)
    stretches: Stretches | None = None  # per-second lag sums (``profile.Stretches``)

    def merge(self, other: TrackEvidence) -> None:
        total = self.frames + other.frames
        self.box = (self.box * self.frames + other.box * other.frames) / max(total, 1)
        self.start_s = min(self.start_s, other.start_s)
        self.end_s = max(self.end_s, other.end_s)
        self.frames = total
        self.valid_frames += other.valid_frames
        self.speech_frames += other.speech_frames
        self.num = self.num + other.num
        self.den = self.den + other.den
        self.series = self.series + other.series
        if self.stretches is not None and other.stretches is not None:
            self.stretches = Stretches.concat([self.stretches, other.stretches], len(self.num) // 2)


def score_piece(
    model: FCNSyncNet,
    lips: np.ndarray,
    valid: np.ndarray,
    mels: tuple[LogMel, LogMel],
    grid_start_s: float,
    fps: float,
    span: tuple[int, int],
    centre: int,
    max_lag: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Lag scores and weights ((2L+1, p1 - p0) each) of frames ``span`` = (p0, p1) of a
    track, the search centred on an offset of ``centre`` frames: the audio is read
    ``centre`` frames later, so that lag l stands for the offset ``centre - l``. ``lips``
    (T, LIP_DIMS), ``valid`` (T,), ``mels``: the normalised log-mel (model input) and the
    raw one (speech level). Lips around the span are kept as the network's context."""
    p0, p1 = span
    pad = audio_pad_frames(max_lag)
    q0, q1 = max(0, p0 - CONTEXT_FRAMES), min(len(lips), p1 + CONTEXT_FRAMES)
    t_q = grid_start_s + (q0 - centre) / fps
    audio = audio_on_grid(mels[0], t_q - pad / fps, fps, q1 - q0 + 2 * pad)
    seq = Sequence(lips[q0:q1], valid[q0:q1], audio, pad)
    sc = score_sequences(model, [seq], max_lag)[0][:, p0 - q0 : p1 - q0]
    t_p = grid_start_s + (p0 - centre) / fps
    level = speech_activity(mels[1], t_p - max_lag / fps, fps, p1 - p0 + 2 * max_lag)
    return sc, frame_weights(valid[p0:p1], level, max_lag)


def followed_stretches(
    model: FCNSyncNet,
    lips: np.ndarray,
    valid: np.ndarray,
    mels: tuple[LogMel, LogMel],
    grid_start_s: float,
    fps: float,
    max_lag: int,
    follower: Follower,
    centred: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Stretches, np.ndarray, np.ndarray]:
    """A track's stretches, piece by piece (``FOLLOW_PIECE_S``), each piece searched around
    where ``follower`` says the offset is by then (``score_piece``). ``centred``: the
    track's scores and weights already computed around offset 0, reused for pieces centred
    there. Returns the stretches and the track's lag sums over +-max_lag around offset 0
    (the pieces searched elsewhere count where their lags overlap it)."""
    n = len(lips)
    step = max(1, round(SERIES_STEP_S * fps))
    piece = step * max(1, round(FOLLOW_PIECE_S / SERIES_STEP_S))
    width = 2 * max_lag + 1
    num, den = np.zeros(width), np.zeros(width)
    parts = []
    for p0 in range(0, n, piece):
        p1 = min(n, p0 + piece)
        t_mid = grid_start_s + (p0 + p1) / 2 / fps
        c = follower.predict(t_mid)
        if c == 0 and centred is not None:
            sc, w = centred[0][:, p0:p1], centred[1][:, p0:p1]
        else:
            sc, w = score_piece(model, lips, valid, mels, grid_start_s, fps, (p0, p1), c, max_lag)
        st = stretch_sums(sc, w, fps, grid_start_s + p0 / fps, c)
        other = follower.scout(t_mid)
        if other is not None:  # lost: this piece is also searched in a neighbouring range
            sc2, w2 = score_piece(
                model, lips, valid, mels, grid_start_s, fps, (p0, p1), other, max_lag
            )
            st2 = stretch_sums(sc2, w2, fps, grid_start_s + p0 / fps, other)
            if follower.adopt(st, st2):
                c, sc, w, st = other, sc2, w2, st2
        follower.add(st)
        parts.append(st)
        num += recentred((sc * w).sum(axis=1), -c)
        den += recentred(w.sum(axis=1), -c)
    return Stretches.concat(parts, max_lag), num, den


def track_evidence(
    ex: Extracted,
    model: FCNSyncNet,
    calibration: Calibration,
    max_lag: int = DEFAULT_MAX_LAG,
    batch_size: int = 16,
    follower: Follower | None = None,
    around: LogMel | None = None,
) -> list[TrackEvidence]:
    """Score every face track of an ``Extracted`` file (or stretch of a file). ``follower``:
    the file's drift follower, carried from stretch to stretch (default: a new one).
    ``around``: the file's log-mel around the stretch, reaching further than ``ex.mel``, for a
    search the follower has centred far from offset 0 (default ``ex.mel``); it is normalised
    as ``ex.mel`` is, so that what lies inside ``ex.mel`` reads the same."""
    fps = ex.info.fps
    pad = audio_pad_frames(max_lag)
    mel = normalise_mel(ex.mel)
    wide = ex.mel if around is None else around
    wide_mels = (normalise_mel(wide, reference=ex.mel), wide)
    follower = follower if follower is not None else Follower(max_lag, model.logit_scale)
    usable: list[tuple[Track, float, Sequence, np.ndarray]] = []
    for tr in ex.tracks:
        times, points, boxes, appearance = tr.arrays()
        if len(times) < MIN_TRACK_FRAMES or tr.found_fraction < MIN_FACE_FRACTION:
            continue
        start, lips, valid = track_on_grid(times, lip_features(points, appearance), fps)
        audio = audio_on_grid(mel, start - pad / fps, fps, len(lips) + 2 * pad)
        usable.append((tr, start, Sequence(lips, valid, audio, pad), np.median(boxes, axis=0)))
    scores = score_sequences(model, [u[2] for u in usable], max_lag, batch_size=batch_size)
    scale = model.logit_scale
    out = []
    order = sorted(range(len(usable)), key=lambda i: usable[i][1])
    for i in order:
        (tr, start, seq, box), sc = usable[i], scores[i]
        n = len(seq.lips)
        level = speech_activity(ex.mel, start - max_lag / fps, fps, n + 2 * max_lag)
        w = frame_weights(seq.valid, level, max_lag)
        st, num, den = followed_stretches(
            model, seq.lips, seq.valid, wide_mels, start, fps, max_lag, follower, (sc, w)
        )
        out.append(
            TrackEvidence(
                track_id=tr.track_id,
                start_s=start,
                end_s=start + n / fps,
                frames=n,
                valid_frames=int(seq.valid.sum()),
                speech_frames=int(audible(w, 0.5).sum()),
                box=np.array(_box_in_video_pixels(box, ex)),
                num=num,
                den=den,
                series=_series(st, fps, calibration, scale),
                stretches=st,
            )
        )
    out.sort(key=lambda e: e.track_id)
    return out


def track_results(
    evidence: list[TrackEvidence], fps: float, calibration: Calibration, logit_scale: float
) -> tuple[list[TrackResult], list[Estimate | None]]:
    """Offsets, confidence and status of each track from its (summed) evidence."""
    results: list[TrackResult] = []
    estimates: list[Estimate | None] = []
    for ev in evidence:
        result = TrackResult(
            track_id=ev.track_id,
            start_s=round(ev.start_s, 3),
            end_s=round(ev.end_s, 3),
            frames=ev.frames,
            face_fraction=round(ev.valid_frames / max(ev.frames, 1), 3),
            speech_frames=ev.speech_frames,
            box=[round(float(v), 1) for v in ev.box],
            offset_frames=None,
            offset_ms=None,
            confidence=None,
            status="undetermined",
            reason="no speech",
        )
        results.append(result)
        if ev.speech_frames < MIN_SPEECH_FRAMES:
            estimates.append(None)
            continue
        centre, num, den = _judged_sums(ev)
        est = estimate(curve_from_sums(num, den), ev.speech_frames, logit_scale)
        conf = calibration.probability(est)
        off = est.offset_frames + centre - calibration.bias_frames
        result.offset_frames = round(off, 2)
        result.offset_ms = round(off / fps * 1000, 1)
        result.confidence = round(conf, 4)
        result.status = "ok" if conf >= calibration.threshold else "undetermined"
        result.reason = None if conf >= calibration.threshold else "ambiguous lip-sync evidence"
        result.lag_curve = [round(float(x), 4) for x in est.curve]
        result.lag_curve_centre_frames = centre
        result.series = ev.series  # type: ignore[assignment]
        estimates.append(est)
    return results, estimates


def _judged_sums(ev: TrackEvidence) -> tuple[int, np.ndarray, np.ndarray]:
    """Where a track is judged: the offset (frames) its search was centred on for most of its
    speech, and its lag sums over +-max_lag around it, the pieces searched elsewhere counting
    where their lags overlap. That is offset 0 (the track's own sums) unless a drift was
    followed past the searched range for most of the track."""
    st = ev.stretches
    if st is None or not st.centre.any():
        return 0, ev.num, ev.den
    centres, at = np.unique(st.centre, return_inverse=True)
    speech = np.bincount(at, weights=st.frames, minlength=len(centres))
    home = speech[centres == 0].sum()
    if home >= speech.max():
        return 0, ev.num, ev.den
    centre = int(centres[np.argmax(speech)])
    num, den = np.zeros(len(ev.num)), np.zeros(len(ev.den))
    for k, c in enumerate(centres):
        num += recentred(st.num[at == k].sum(axis=0), centre - int(c))
        den += recentred(st.den[at == k].sum(axis=0), centre - int(c))
    return centre, num, den


@lru_cache(maxsize=1)
def _shipped_model() -> FCNSyncNet:
    """The shipped network, loaded on the first ``detect`` that is given none, then kept."""
    return load_model()


@lru_cache(maxsize=1)
def _shipped_calibration() -> Calibration:
    return load_calibration()


def detect(
    path: str | os.PathLike[str],
    model: FCNSyncNet | None = None,
    calibration: Calibration | None = None,
    max_lag: int = DEFAULT_MAX_LAG,
    batch_size: int = 16,
    tracker: FaceTracker | None = None,
    segment_s: float = SEGMENT_S,
) -> Result:
    """Measure the lip-sync offset of one file. Never raises for bad media: the ``Result`` has
    ``status`` "error" and a one-line ``error`` instead. ``tracker``: a face tracker to use
    instead of a new ``FaceTracker`` (anything with its ``update``/``drain``/``finish``).

    The file is decoded once and scored in stretches of ``segment_s`` seconds as it is decoded,
    so memory does not grow with its length; the evidence of each face track adds up over the
    stretches. Raises ``ValueError`` for arguments out of range (``max_lag`` and ``batch_size``
    at least 1, ``segment_s`` above 0)."""
    if max_lag < 1 or batch_size < 1 or not segment_s > 0:
        raise ValueError(
            "detect needs max_lag >= 1, batch_size >= 1 and segment_s > 0; got "
            f"max_lag={max_lag}, batch_size={batch_size}, segment_s={segment_s}"
        )
    model = model if model is not None else _shipped_model()
    calibration = calibration if calibration is not None else _shipped_calibration()
    tracker = tracker or FaceTracker()  # made first: its one-off imports are no file's time
    t0 = time.perf_counter()
    spath = os.fspath(path)
    try:
        stretches = decode_stretches(spath, tracker, max_lag, segment_s)
        return measure_stretches(spath, stretches, model, calibration, max_lag, batch_size, t0)
    except FcnsyncError as exc:
        return error_result(spath, str(exc), round(time.perf_counter() - t0, 3))


def measure_stretches(
    path: str,
    stretches: Iterable[Extracted],
    model: FCNSyncNet,
    calibration: Calibration,
    max_lag: int = DEFAULT_MAX_LAG,
    batch_size: int = 16,
    t0: float | None = None,
) -> Result:
    """The model half of ``detect``: score the stretches of one file (from
    ``decode_stretches``, consumed as they come, or a list decoded elsewhere), add up each
    track's evidence and make the file's ``Result``. ``t0``: ``time.perf_counter()`` when the
    file's work began, for ``elapsed_s`` (default: now). Raises ``FcnsyncError`` for bad media
    met while the stretches are decoded."""
    t0 = time.perf_counter() if t0 is None else t0
    ex, evidence = _score_stretches(stretches, model, calibration, max_lag, batch_size)
    scale = model.logit_scale
    tracks, _ = track_results(evidence, ex.info.fps, calibration, scale)
    res = summarise_tracks(path, ex, tracks, max_lag, time.perf_counter() - t0)
    add_profile(res, evidence, calibration, scale, ex.scene_cuts_s)
    res.elapsed_s = round(time.perf_counter() - t0, 3)
    return res


def add_profile(
    res: Result,
    evidence: list[TrackEvidence],
    calibration: Calibration,
    logit_scale: float,
    cuts_s: Iterable[float] = (),
) -> None:
    """Fill ``res.sync_profile``, ``segments`` and ``drift_ms_per_min`` from the per-second
    evidence of the tracks that measured an offset (status "ok"), and say in the verdict when
    the offset changes by more than the tolerance (a step at a scene cut of ``cuts_s`` is
    placed there). Tracks searched far from offset 0 count where their own evidence shows the
    offset (``_followed_offset_shown``). Leaves them None when undetermined."""
    if res.status != "ok" or not res.fps:
        return
    ok = {t.track_id for t in res.tracks if t.status == "ok"}
    parts = [
        e.stretches
        for e in evidence
        if e.stretches is not None
        and (e.track_id in ok or _followed_offset_shown(e.stretches, calibration, logit_scale))
    ]
    if not parts:
        return
    max_lag = res.max_lag_frames
    st = Stretches.concat(parts, max_lag)
    prof = fit_profile(st, logit_scale, cuts_s=tuple(cuts_s))
    if prof is None:
        return
    fps = res.fps
    bias = calibration.bias_frames
    segments = []
    for start_s, end_s, off0, off1 in prof.segments:
        rows = np.flatnonzero((st.t_s >= start_s) & (st.t_s <= end_s) & (st.frames > 0))
        sub = st.select(rows)
        slope = 0.0 if end_s <= start_s else (off1 - off0) / (end_s - start_s)
        num, den = residual_sums(sub, off0 + slope * (sub.t_s - start_s))
        used = int(sub.frames.sum())
        conf = calibration.probability(estimate(curve_from_sums(num, den), used, logit_scale))
        seg = Segment(
            start_s=round(start_s, 2),
            end_s=round(end_s, 2),
            offset_ms=round((off0 - bias) / fps * 1000, 1),
            offset_frames=round(off0 - bias, 2),
            confidence=round(conf, 4),
        )
        if prof.kind == "drift":
            seg.end_offset_ms = round((off1 - bias) / fps * 1000, 1)
            seg.end_offset_frames = round(off1 - bias, 2)
        segments.append(seg)
    res.sync_profile = prof.kind
    res.segments = segments
    if prof.kind == "drift" and prof.drift_frames_per_s is not None:
        res.drift_ms_per_min = round(prof.drift_frames_per_s / fps * 1000 * 60, 1)
    res.verdict = profile_verdict(res) or res.verdict


def _followed_offset_shown(st: Stretches, calibration: Calibration, logit_scale: float) -> bool:
    """Whether a track's stretches show an offset with confidence where they were searched:
    their lag sums added up around each stretch's own centre. A track searched far from
    offset 0 (a drift followed past the range) is undetermined around 0, where its status is
    judged, yet its evidence belongs to the file's profile."""
    if not len(st.t_s) or not st.centre.any():
        return False
    curve = curve_from_sums(st.num.sum(axis=0), st.den.sum(axis=0))
    est = estimate(curve, int(st.frames.sum()), logit_scale)
    return calibration.probability(est) >= calibration.threshold


def clock_text(t_s: float) -> str:
    """Seconds as a clock: 0:08, 12:34, 1:02:03."""
    m, s = divmod(int(round(t_s)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def profile_verdict(res: Result) -> str | None:
    """Words for an offset that changes over the file ("audio drifts from +10 ms to -320 ms,
    -16 ms per minute"; "offset changes at 0:08 from -80 ms to -320 ms"); None when constant."""
    segs = res.segments or []
    if res.sync_profile == "drift" and segs and segs[0].end_offset_ms is not None:
        return (
            f"audio drifts from {segs[0].offset_ms:+.0f} ms to {segs[0].end_offset_ms:+.0f} ms, "
            f"{res.drift_ms_per_min:+.0f} ms per minute"
        )
    if res.sync_profile == "steps" and len(segs) > 1:
        words = [
            f"at {clock_text(b.start_s)} from {a.offset_ms:+.0f} ms to {b.offset_ms:+.0f} ms"
            for a, b in zip(segs[:-1], segs[1:], strict=True)
        ]
        return "offset changes " + "; ".join(words)
    return None


def decode_stretches(
    path: str,
    tracker: FaceTracker,
    max_lag: int = DEFAULT_MAX_LAG,
    segment_s: float = SEGMENT_S,
) -> Iterator[Extracted]:
    """The decoding half of ``detect`` (no model): decode and track ``path``, yielding one
    ``Extracted`` per stretch of ``segment_s`` seconds (its face tracks and the log-mel around
    them). The last one is also the file's summary: its media info with the measured frame
    rate, video span, scene cuts and ``timings_s`` per stage (seconds; "model" is added to by
    whoever scores the stretches). Raises ``MediaError`` for unreadable input."""
    yield from decode_from(MediaReader(path), tracker, max_lag, segment_s)


def decode_from(
    reader: MediaReader | ArrayMedia,
    tracker: FaceTracker,
    max_lag: int = DEFAULT_MAX_LAG,
    segment_s: float = SEGMENT_S,
) -> Iterator[Extracted]:
    """``decode_stretches`` of any source of ``VideoFrame`` and ``AudioChunk`` items: a file's
    ``MediaReader`` or frames and samples held in memory (``media.ArrayMedia``)."""
    mel_stream = MelStream()
    fps = reader.info.fps
    # audio needed beyond a stretch: the searched lags plus the network's context, and slack
    margin_s = (audio_pad_frames(max_lag) + 2) / fps + 1.0 if fps else 0.0
    cut: float | None = None
    timings = {"decode": 0.0, "track": 0.0, "audio": 0.0, "model": 0.0}
    for t in _decode_into(reader, tracker, mel_stream, timings):
        if cut is None:
            cut = t + segment_s
        elif fps and t > cut + margin_s and mel_stream.computed_until_s > cut + margin_s:
            pieces = tracker.drain(cut)
            start = _stretch_start(pieces, cut, segment_s)
            yield Extracted(
                info=reader.info,
                tracks=pieces,
                mel=mel_stream.window(start - margin_s),
                video_start_s=0.0,
                video_end_s=0.0,
                video_frames=0,
                frame_size=reader.stats.frame_size,
                decode_scale=reader.stats.scale,
                timings_s=timings,
            )
            mel_stream.discard_before(cut - margin_s)
            cut += segment_s
    # the last stretch: reader.info now has the measured frame rate
    scene_cuts = list(getattr(tracker, "scene_cuts", []))
    yield _extracted(reader, tracker.finish(), mel_stream.finish(), scene_cuts, timings)


def _audio_reach_s(part: Extracted, follower: Follower, max_lag: int) -> float:
    """How far beyond a stretch, either way, its search may read the audio (seconds): the
    follower's centre now, as far again as it can move within the stretch (``max_lag`` per
    piece), the searched lags and the network's context, and a second of slack."""
    fps = part.info.fps or 25.0
    pieces = math.ceil(max(part.mel.end_s - part.mel.start_s, 0.0) / FOLLOW_PIECE_S)
    frames = abs(follower.centre) + max_lag * pieces + audio_pad_frames(max_lag)
    return frames / fps + 1.0


def _score_stretches(
    stretches: Iterable[Extracted],
    model: FCNSyncNet,
    calibration: Calibration,
    max_lag: int,
    batch_size: int,
) -> tuple[Extracted, list[TrackEvidence]]:
    """Score the stretches of one file in order. A stretch is scored once the audio after it
    has been decoded as far as its search may read (``_audio_reach_s``: a drift followed
    beyond the search range reads audio seconds away from its pictures), or at the end; the
    audio before it is kept as far back."""
    merged: dict[int, TrackEvidence] = {}
    t_start = time.perf_counter()
    last: Extracted | None = None
    follower = Follower(
        max_lag, model.logit_scale
    )  # one per file: the profile belongs to the file's audio
    held: list[Extracted] = []
    audio: LogMel | None = None

    def score(part: Extracted, decoded: LogMel) -> None:
        t0 = time.perf_counter()
        around = mel_from(decoded, part.mel.start_s - _audio_reach_s(part, follower, max_lag))
        for ev in track_evidence(part, model, calibration, max_lag, batch_size, follower, around):
            if ev.track_id in merged:
                merged[ev.track_id].merge(ev)
            else:
                merged[ev.track_id] = ev
        part.timings_s["model"] = part.timings_s.get("model", 0.0) + time.perf_counter() - t0

    for part in stretches:
        audio = part.mel if audio is None else join_mel(audio, part.mel)
        held.append(part)
        while held and audio.end_s >= held[0].mel.end_s + _audio_reach_s(
            held[0], follower, max_lag
        ):
            score(held.pop(0), audio)
        # forget the audio that no stretch still to come can read
        nxt = held[0] if held else part
        audio = mel_from(audio, nxt.mel.start_s - _audio_reach_s(nxt, follower, max_lag))
        last = part
    if last is None or audio is None:
        raise ValueError("no stretches to score")
    for part in held:
        score(part, audio)
    last.timings_s["total"] = time.perf_counter() - t_start
    summary = replace(last, tracks=[])
    return summary, sorted(merged.values(), key=lambda e: e.track_id)


def analyse(
    path: str,
    tracker: FaceTracker,
    model: FCNSyncNet,
    calibration: Calibration,
    max_lag: int = DEFAULT_MAX_LAG,
    batch_size: int = 16,
    segment_s: float = SEGMENT_S,
) -> tuple[Extracted, list[TrackEvidence]]:
    """Decode, track and score ``path`` in stretches; returns a summary ``Extracted`` (no
    tracks, the last stretch's audio, ``timings_s`` per stage) and the evidence of every
    track."""
    stretches = decode_stretches(path, tracker, max_lag, segment_s)
    return _score_stretches(stretches, model, calibration, max_lag, batch_size)


def _stretch_start(pieces: list[Track], cut: float, segment_s: float) -> float:
    return min((p.times_s[0] for p in pieces if p.times_s), default=cut - segment_s)


def summarise_tracks(
    path: str, ex: Extracted, tracks: list[TrackResult], max_lag: int, elapsed_s: float
) -> Result:
    """The file's record: the headline is the track with the strongest sync evidence."""
    fps = ex.info.fps
    duration = max(ex.info.duration_s, ex.video_end_s - ex.video_start_s + 1 / fps)
    res = Result(
        path=path,
        status="undetermined",
        fps=round(fps, 3),
        tracks=tracks,
        duration_s=round(duration, 3),
        elapsed_s=round(elapsed_s, 3),
        max_lag_frames=max_lag,
    )
    scored = [t for t in tracks if t.confidence is not None]
    on_edge = False
    if ex.video_frames < 2 * max_lag:
        res.reason = f"clip too short for the searched range (+-{max_lag} frames)"
    elif not tracks:
        res.reason = "no face found"
    elif not scored:
        res.reason = tracks[0].reason or "no speech"
    else:
        best = max(scored, key=lambda t: (t.confidence or 0.0, t.speech_frames))
        res.confidence = best.confidence
        res.status = best.status
        res.reason = best.reason
        if best.status == "ok":  # an undetermined answer gives no number to act on
            res.offset_frames = best.offset_frames
            res.offset_ms = best.offset_ms
            on_edge = peaks_on_edge(best.lag_curve) if best.lag_curve else False
    if res.status == "ok" and res.offset_ms is not None and res.offset_frames is not None:
        res.verdict = verdict_text(res.offset_ms, res.offset_frames)
        if on_edge:
            res.verdict += " or more (the edge of the searched range)"
    else:
        res.verdict = f"undetermined: {res.reason}"
    return res
