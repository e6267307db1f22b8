"""Continuous lip-sync monitoring of a live input (HLS, RTMP, SRT, UDP, HTTP, a growing file).

The stream is decoded as it arrives by the same layer as ``detect``; every ``hop_s`` seconds of
stream time the last ``window_s`` seconds are scored with the same features, model and
calibration (``pipeline.track_evidence``) and a record is emitted. The alarm listens to the
newest ``recent_s`` seconds of each window (by default the last hop, at least 2 s) rather than
to the whole window, so that a change is heard as soon as it fills that span instead of once
it outweighs the older part of the window: it is raised when that recent offset is outside the
tolerance, with a verdict of at least ``ALARM_MIN_CONFIDENCE``, in ``alarm_windows`` windows in
a row that read within ``ALARM_AGREE_MS`` of each other (other windows neither count nor break
the run), and
cleared when as many are back inside. With one window the alarm comes within two hops of a
change, with two (the default) a hop or more later but without most false alarms of single
short spans (``benchmarks/monitor_alarms.py``). The whole-window offsets
of recent windows are smoothed for display, and a steady trend of them over the last minute is
reported as ``drift`` (``DriftWatch``) before it takes the offset outside the tolerance.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .calibration import Calibration
from .errors import MediaError, StreamError
from .faces import FaceTracker, Track
from .features import MelStream
from .inference import audio_pad_frames
from .media import MediaReader, VideoFrame
from .model import FCNSyncNet
from .pipeline import (
    DEFAULT_MAX_LAG,
    Extracted,
    Result,
    summarise_tracks,
    track_evidence,
    track_results,
)

EBU_R37 = (40.0, 60.0)  # audio at most 40 ms early, 60 ms late
RECONNECT_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
MIN_RECENT_S = 2.0  # the alarm's evidence span is the last hop, but never less than this
ALARM_AGREE_MS = 40.0  # a run raising the alarm: each window within this of the one before
# ... and each window this confident (calibrated probability of being right within a frame);
# the threshold of an answer is about 0.5, so a window just answered does not count
ALARM_MIN_CONFIDENCE = 0.8
SMOOTH_WINDOWS = 3  # whole-window offsets shown smoothed: median of this many ok windows
DRIFT_SPAN_S = 120.0  # the drift watch looks at the confident windows of this much stream
DRIFT_MIN_S = 20.0  # ... and says nothing until they cover this much
DRIFT_MIN_WINDOWS = 8
DRIFT_SIGNIFICANCE = 4.0  # the rate must be this many standard errors away from zero
DRIFT_MIN_CHANGE_MS = 40.0  # ... and move the offset this much over the span watched


@dataclass(frozen=True)
class Tolerance:
    """The acceptable offsets: ``early_ms`` the most the audio may lead, ``late_ms`` the most
    it may lag (both positive numbers)."""

    early_ms: float = EBU_R37[0]
    late_ms: float = EBU_R37[1]

    def contains(self, offset_ms: float) -> bool:
        return -self.late_ms <= offset_ms <= self.early_ms

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        """ "EARLY,LATE" in ms, e.g. "40,60" (EBU R37) or "90,185" (ITU-R BT.1359)."""
        try:
            early, late = (abs(float(x)) for x in text.split(","))
        except ValueError:
            raise ValueError("tolerance is EARLY_MS,LATE_MS, e.g. 40,60") from None
        return cls(early, late)


@dataclass
class AlarmState:
    """Raises or clears the alarm after ``windows`` windows in a row outside or inside the
    tolerance, judging the median of the last ``smooth`` offsets it was given (undetermined
    windows neither count nor break a run). Windows outside count toward raising it only
    while each reads within ``agree_ms`` of the one before (a wrong offset holds from window
    to window, where wrong readings scatter; None: any reading outside counts)."""

    tolerance: Tolerance = field(default_factory=Tolerance)
    windows: int = 2
    smooth: int = 1
    agree_ms: float | None = ALARM_AGREE_MS
    in_alarm: bool = False
    _recent: deque[float] = field(default_factory=lambda: deque(maxlen=3))
    _streak: int = 0
    _last_out: float | None = None

    def __post_init__(self) -> None:
        self._recent = deque(maxlen=self.smooth)

    def update(self, offset_ms: float | None) -> tuple[float | None, str | None]:
        """Feed one window's offset (None: undetermined). Returns the offset judged and the
        event raised by this window, if any ("out_of_sync" or "back_in_sync")."""
        if offset_ms is None:
            return (float(np.median(self._recent)) if self._recent else None), None
        self._recent.append(offset_ms)
        judged = float(np.median(self._recent))
        outside = not self.tolerance.contains(judged)
        if outside != self.in_alarm:
            if outside:
                last, self._last_out = self._last_out, judged
                if self.agree_ms is not None and last is not None:
                    if abs(judged - last) > self.agree_ms:
                        self._streak = 0  # a different reading starts a run of its own
            self._streak += 1
            if self._streak >= self.windows:
                self.in_alarm, self._streak, self._last_out = outside, 0, None
                return judged, "out_of_sync" if outside else "back_in_sync"
        else:
            self._streak, self._last_out = 0, None
        return judged, None


def alarm_reading(
    rec: dict[str, Any], min_confidence: float = ALARM_MIN_CONFIDENCE
) -> float | None:
    """What a window record gives the alarm: its recent offset (ms) when that verdict is
    determined with at least ``min_confidence``, else None (neither counts nor breaks a run)."""
    if rec["recent_status"] != "ok" or (rec["recent_confidence"] or 0.0) < min_confidence:
        return None
    return float(rec["recent_offset_ms"])


@dataclass
class DriftWatch:
    """Says when the recent windows show a steady trend of the offset (drift): a line through
    the confident whole-window offsets of the last ``span_s`` seconds of stream, its slope the
    median of the pairwise slopes (Theil-Sen, so a few wrong windows do not make a trend), its
    standard error from the residuals' median absolute deviation. A drift is reported once
    the windows cover ``min_s`` seconds, the slope is ``significance`` standard errors from
    zero and it moves the offset at least ``min_change_ms`` over the span, unless one step
    between two constant offsets explains the windows clearly better than the line (an edit,
    which the alarm reports)."""

    span_s: float = DRIFT_SPAN_S
    min_s: float = DRIFT_MIN_S
    min_windows: int = DRIFT_MIN_WINDOWS
    significance: float = DRIFT_SIGNIFICANCE
    min_change_ms: float = DRIFT_MIN_CHANGE_MS
    _points: deque[tuple[float, float]] = field(default_factory=deque)

    def update(self, t_s: float, offset_ms: float | None) -> dict[str, float] | None:
        """Feed one window (its stream time and whole-window offset, None: undetermined).
        Returns ``{"ms_per_min", "over_s", "windows"}`` while a drift shows, else None."""
        if offset_ms is not None:
            self._points.append((t_s, offset_ms))
        while self._points and self._points[0][0] < t_s - self.span_s:
            self._points.popleft()
        if len(self._points) < self.min_windows:
            return None
        t = np.array([p[0] for p in self._points])
        y = np.array([p[1] for p in self._points])
        span = float(t[-1] - t[0])
        if span < self.min_s:
            return None
        i, j = np.triu_indices(len(t), 1)
        dt = t[j] - t[i]
        keep = dt > 0
        slope = float(np.median((y[j] - y[i])[keep] / dt[keep]))
        resid = y - slope * t
        resid -= np.median(resid)
        sigma = max(1.4826 * float(np.median(np.abs(resid))), 1.0)
        se = sigma / math.sqrt(float(np.sum((t - t.mean()) ** 2)))
        if abs(slope) < self.significance * se or abs(slope) * span < self.min_change_ms:
            return None
        if _step_spread(y, self.min_windows // 2) < 0.7 * sigma:
            return None  # a jump between two steady offsets, which the alarm is for
        return {
            "ms_per_min": round(60.0 * slope, 1),
            "over_s": round(span, 1),
            "windows": float(len(t)),
        }


def _step_spread(y: np.ndarray, min_side: int) -> float:
    """The robust spread (1.4826 x median absolute deviation) of ``y`` around the best single
    step: a constant on each side of one split, each side at least ``min_side`` long."""
    best = math.inf
    for k in range(min_side, len(y) - min_side + 1):
        resid = np.concatenate([y[:k] - np.median(y[:k]), y[k:] - np.median(y[k:])])
        best = min(best, 1.4826 * float(np.median(np.abs(resid))))
    return best


class _FollowFile:
    """A file still being written: reads wait for more data instead of ending, until nothing
    has been added for ``idle_s`` seconds."""

    def __init__(self, path: str, idle_s: float):
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.idle_s = idle_s

    def read(self, n: int = -1) -> bytes:
        waited = 0.0
        while True:
            data = self._fh.read(n)
            if data or waited >= self.idle_s:
                return data
            time.sleep(0.2)
            waited += 0.2

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self._fh.close()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def monitor(
    source: str,
    model: FCNSyncNet,
    calibration: Calibration,
    window_s: float = 8.0,
    hop_s: float = 2.0,
    max_lag: int = DEFAULT_MAX_LAG,
    tolerance: Tolerance | None = None,
    alarm_windows: int = 2,
    follow: bool = False,
    idle_s: float = 10.0,
    reconnect: bool = True,
    tracker_factory: Callable[[], Any] = FaceTracker,
    skip_after_s: float | None = None,
    recent_s: float | None = None,
    live: bool | None = None,
    alarm_agree_ms: float | None = ALARM_AGREE_MS,
    alarm_confidence: float = ALARM_MIN_CONFIDENCE,
) -> Iterator[dict[str, Any]]:
    """Records for a live input, as they happen: ``{"event": "window", ...}`` every ``hop_s``
    seconds of stream, ``"out_of_sync"`` / ``"back_in_sync"`` alarms, ``"reconnecting"`` after
    a network error, ``"skipped"`` when scoring fell more than ``skip_after_s`` (default: a
    window) behind a live source and frames were passed over to catch up, and a final
    ``"end"`` with a summary. Offsets: positive, audio leads. ``recent_s``: the span at the end
    of each window that the alarm judges (default: ``hop_s``, at least 2 s). ``live``: whether
    the source plays at 1x, so that falling behind it skips ahead; by default a followed file,
    or a network source of unknown length (a live HLS playlist, RTMP, SRT, UDP), but not a
    finished recording behind a URL (a VOD playlist, a file over HTTP), which is read whole.
    ``alarm_agree_ms``: how close the windows of a run raising the alarm must read
    (``AlarmState``; None: any readings outside count); ``alarm_confidence``: the least
    confidence of a window's recent verdict for it to count toward the alarm
    (``alarm_reading``)."""
    alarm = AlarmState(tolerance or Tolerance(), windows=alarm_windows, agree_ms=alarm_agree_ms)
    drift = DriftWatch()
    recent_s = min(window_s, recent_s or max(hop_s, MIN_RECENT_S))
    shown: deque[float] = deque(maxlen=SMOOTH_WINDOWS)
    counts = {"windows": 0, "ok": 0, "undetermined": 0, "alarms": 0, "reconnects": 0}
    offsets: list[float] = []
    attempt = 0
    while True:
        try:
            for rec in _windows(
                source,
                model,
                calibration,
                window_s,
                hop_s,
                max_lag,
                follow,
                idle_s,
                tracker_factory,
                window_s if skip_after_s is None else skip_after_s,
                recent_s,
                live,
            ):
                if rec["event"] != "window":
                    yield rec
                    continue
                attempt = 0
                counts["windows"] += 1
                counts[rec["status"]] = counts.get(rec["status"], 0) + 1
                judged, event = alarm.update(alarm_reading(rec, alarm_confidence))
                if rec["status"] == "ok":
                    shown.append(rec["offset_ms"])
                    offsets.append(rec["offset_ms"])
                rec["smoothed_offset_ms"] = round(float(np.median(shown)), 1) if shown else None
                rec["in_tolerance"] = None if judged is None else alarm.tolerance.contains(judged)
                rec["drift"] = drift.update(
                    rec["stream_end_s"], rec["offset_ms"] if rec["status"] == "ok" else None
                )
                yield rec
                if event:
                    counts["alarms"] += event == "out_of_sync"
                    yield {
                        "event": event,
                        "stream_time_s": rec["stream_end_s"],
                        "wall_time": _now(),
                        "recent_offset_ms": None if judged is None else round(judged, 1),
                        "smoothed_offset_ms": rec["smoothed_offset_ms"],
                        "tolerance_ms": {
                            "early": alarm.tolerance.early_ms,
                            "late": alarm.tolerance.late_ms,
                        },
                    }
            break  # the stream ended
        except MediaError as exc:
            retry = isinstance(exc, StreamError) and _is_network(source)
            if not reconnect or not retry or attempt >= len(RECONNECT_DELAYS_S):
                yield {"event": "error", "wall_time": _now(), "error": str(exc)}
                break
            delay = RECONNECT_DELAYS_S[attempt]
            attempt += 1
            counts["reconnects"] += 1
            yield {
                "event": "reconnecting",
                "wall_time": _now(),
                "error": str(exc),
                "attempt": attempt,
                "delay_s": delay,
            }
            time.sleep(delay)
        except KeyboardInterrupt:
            break
    yield {
        "event": "end",
        "wall_time": _now(),
        **counts,
        "median_offset_ms": round(float(np.median(offsets)), 1) if offsets else None,
        "in_alarm": alarm.in_alarm,
    }


def _is_network(source: str) -> bool:
    return "://" in source[:16]


def _windows(
    source: str,
    model: FCNSyncNet,
    calibration: Calibration,
    window_s: float,
    hop_s: float,
    max_lag: int,
    follow: bool,
    idle_s: float,
    tracker_factory: Callable[[], Any],
    skip_after_s: float,
    recent_s: float,
    live: bool | None,
) -> Iterator[dict[str, Any]]:
    opened: Any = _FollowFile(source, idle_s) if follow else source
    reader = MediaReader(opened, require_audio=False)
    if live is None:
        live = follow or ("://" in source[:16] and not reader.info.duration_s)
    has_audio = reader.info.has_audio
    fps = reader.info.fps or 25.0
    tracker = tracker_factory()
    mel_stream = MelStream()
    margin_s = (audio_pad_frames(max_lag) + 2) / fps + 0.5
    kept: dict[int, Track] = {}
    next_end: float | None = None
    scale = model.logit_scale

    def measure(start: float, end_s: float) -> Any:
        """The same measurement as ``detect`` on the part of the kept tracks in [start, end_s)."""
        part = []
        for t in kept.values():
            k = bisect.bisect_left(t.times_s, start)
            if k < len(t.times_s):
                part.append(t.part(k))
        ex = Extracted(
            info=reader.info,
            tracks=part,
            mel=mel_stream.window(start - margin_s),
            video_start_s=start,
            video_end_s=end_s - 1 / fps,
            video_frames=round((end_s - start) * fps),
            frame_size=reader.stats.frame_size,
            decode_scale=reader.stats.scale,
        )
        evidence = track_evidence(ex, model, calibration, max_lag)
        tracks, _ = track_results(evidence, fps, calibration, scale)
        return summarise_tracks(source, ex, tracks, max_lag, 0.0)

    def window_record(end_s: float) -> dict[str, Any]:
        t0 = time.perf_counter()
        start = end_s - window_s
        for piece in tracker.drain(end_s):
            if piece.track_id in kept:
                kept[piece.track_id].extend(piece)
            else:
                kept[piece.track_id] = piece
        for tr in list(kept.values()):
            k = bisect.bisect_left(tr.times_s, start)
            tr.drop_first(k)
            if not tr.times_s:
                del kept[tr.track_id]
        rec: dict[str, Any] = {
            "event": "window",
            "stream_start_s": round(start, 3),
            "stream_end_s": round(end_s, 3),
        }
        if has_audio:
            whole, recent = measure(start, end_s), measure(end_s - recent_s, end_s)
            mel_stream.discard_before(end_s - window_s + hop_s - margin_s)
        else:
            whole = recent = Result(source, "undetermined", reason="no audio stream")
        rec.update(
            wall_time=_now(),
            status=whole.status,
            reason=whole.reason,
            offset_ms=whole.offset_ms,
            offset_frames=whole.offset_frames,
            confidence=whole.confidence,
            recent_offset_ms=recent.offset_ms,
            recent_confidence=recent.confidence,
            recent_status=recent.status,
            faces=len(kept),
            processing_s=round(time.perf_counter() - t0, 3),
        )
        return rec

    last_video_s = None
    # a live source plays at 1x: if scoring falls more than a window behind it, frames are
    # passed over (not tracked) until it has caught up, and a record says so
    clock0: tuple[float, float] | None = None  # (wall, stream) at the first frame
    skipping_from: float | None = None
    try:
        for item in reader:
            if not isinstance(item, VideoFrame):
                mel_stream.push(item.time_s, item.samples)
                continue
            if clock0 is None:
                clock0 = (time.monotonic(), item.time_s)
            behind = (time.monotonic() - clock0[0]) - (item.time_s - clock0[1])
            if live and skipping_from is None and behind > skip_after_s:
                skipping_from = item.time_s
            if skipping_from is not None:
                if behind > hop_s:
                    continue
                yield {
                    "event": "skipped",
                    "wall_time": _now(),
                    "from_s": round(skipping_from, 3),
                    "to_s": round(item.time_s, 3),
                    "why": "processing fell behind the live stream",
                }
                skipping_from = None
                clock0 = (time.monotonic(), item.time_s)
                next_end = item.time_s + window_s  # the next window after the gap
            tracker.update(item.time_s, item)
            last_video_s = item.time_s
            if next_end is None:
                next_end = item.time_s + window_s
            while item.time_s >= next_end and (
                not has_audio or mel_stream.computed_until_s >= next_end + margin_s
            ):
                yield window_record(next_end)
                next_end += hop_s
        # the stream ended: the windows that its last frames complete
        mel_stream.finish()
        while (
            next_end is not None
            and last_video_s is not None
            and (next_end <= last_video_s + 1.0 / fps + 1e-6)
        ):
            yield window_record(next_end)
            next_end += hop_s
    finally:
        if follow and hasattr(opened, "close"):
            opened.close()


__all__ = ["EBU_R37", "AlarmState", "DriftWatch", "Tolerance", "monitor"]
