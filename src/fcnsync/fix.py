"""Correcting a file: measure (or take a known offset), move the audio, check the result.

The video packets are copied untouched. A constant offset is corrected by rewriting the audio's
timestamps where the container keeps them (mp4, mov, mkv, webm, ts, flv), otherwise (avi, or on
request) by moving its samples and re-encoding it. An offset that drifts is corrected by
resampling the audio to the measured rate, one that steps by moving each segment by its own
offset (the joins at the quietest moment near each change); both re-encode the audio. The output
is written under a temporary name and renamed, so an interrupted run leaves no half file, and
the input is never overwritten.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .calibration import Calibration
from .errors import FcnsyncError
from .model import FCNSyncNet
from .pipeline import Result, clock_text, detect, profile_verdict
from .remux import AudioMove, retime_audio, shift_audio

TIMESTAMP_CONTAINERS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".ts", ".flv", ".mpg", ".mpeg"}


@dataclass
class FixResult:
    """What ``fix_file`` did: the correction applied and the offset measured afterwards."""

    path: str
    output: str
    applied_offset_ms: float | None  # None when a drift or steps were corrected
    method: str  # "timestamps" or "samples"; "resampled" (drift) or "segments" (steps)
    measured_before_ms: float | None
    confidence_before: float | None
    residual_ms: float | None
    residual_frames: float | None
    verified: bool  # the output measures constant, within +-1 frame of zero
    profile_before: str | None = None  # the sync_profile corrected ("constant", ...)
    applied_segments: list[dict[str, Any]] | None = None  # drift or steps: what was undone
    joins_s: list[float] | None = None  # steps: where the moved segments meet
    residual_profile: str | None = None  # the output's sync_profile

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fix_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    model: FCNSyncNet,
    calibration: Calibration,
    offset_ms: float | None = None,
    min_confidence: float = 0.9,
    reencode_audio: bool = False,
    tracker_factory: Any = None,
) -> FixResult:
    """Write ``dst``: ``src`` with its audio delayed by its measured offset (or ``offset_ms``,
    positive: the audio leads, so it is delayed by that much); a measured drift or steps are
    undone segment by segment (``varying_moves``). Raises ``FcnsyncError`` when the
    measurement is undetermined or below ``min_confidence`` (the file's, or any segment's of a
    drift or steps) and no ``offset_ms`` is given, or when ``dst`` is ``src``."""
    src_p, dst_p = Path(src), Path(dst)
    if dst_p.exists() and src_p.exists() and os.path.samefile(src_p, dst_p):
        raise FcnsyncError("refusing to overwrite the input: give another output path")
    if not dst_p.parent.is_dir():  # said before the measurement, not after it
        raise FcnsyncError(f"cannot write {dst_p}: no such folder")
    make_tracker = tracker_factory or (lambda: None)
    before = None
    moves: list[AudioMove] | None = None
    if offset_ms is None:
        before = detect(src_p, model=model, calibration=calibration, tracker=make_tracker())
        if before.status == "error":
            raise FcnsyncError(before.error or "cannot measure")
        if before.status != "ok" or before.offset_ms is None:
            raise FcnsyncError(
                f"not fixed: the measurement is undetermined ({before.reason}); "
                "give --offset-ms to apply a known correction"
            )
        # a drift or steps: each segment's own confidence counts (one offset for the whole
        # file is what a varying file is least sure of)
        if profile_verdict(before) is not None:
            moves = varying_moves(before, min_confidence)
        elif (before.confidence or 0.0) < min_confidence:
            raise FcnsyncError(
                f"not fixed: confidence {before.confidence:.2f} is below "
                f"{min_confidence:.2f}; give --offset-ms to apply a known correction"
            )
        else:
            offset_ms = before.offset_ms
    if moves is not None:
        method = (
            "resampled" if before is not None and before.sync_profile == "drift" else "segments"
        )
    else:
        method = (
            "samples"
            if reencode_audio
            or src_p.suffix.lower() not in TIMESTAMP_CONTAINERS
            or dst_p.suffix.lower() not in TIMESTAMP_CONTAINERS
            else "timestamps"
        )
    tmp = dst_p.with_name(f".{dst_p.stem}.partial{dst_p.suffix}")
    joins = None
    try:
        if moves is not None:
            joins = retime_audio(src_p, tmp, moves)
        else:
            assert offset_ms is not None
            shift_audio(src_p, tmp, -offset_ms / 1000.0, mode=method)
        os.replace(tmp, dst_p)
    except OSError as exc:  # unwritable folder, full disk (PyAV's errors are OSErrors too)
        raise FcnsyncError(f"cannot write {dst_p}: {exc.strerror or exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    after = detect(dst_p, model=model, calibration=calibration, tracker=make_tracker())
    residual_frames = after.tracks[0].offset_frames if after.tracks else None
    best = max(
        (t for t in after.tracks if t.offset_frames is not None),
        key=lambda t: t.confidence or 0.0,
        default=None,
    )
    if best is not None:
        residual_frames = best.offset_frames
    return FixResult(
        path=str(src_p),
        output=str(dst_p),
        applied_offset_ms=None if offset_ms is None else round(offset_ms, 1),
        method=method,
        measured_before_ms=before.offset_ms if before else None,
        confidence_before=before.confidence if before else None,
        residual_ms=best.offset_ms if best else None,
        residual_frames=residual_frames,
        verified=residual_frames is not None and abs(residual_frames) <= 1.0 and not after.varies,
        profile_before=before.sync_profile if before else None,
        applied_segments=(
            [asdict(g) for g in before.segments] if moves and before and before.segments else None
        ),
        joins_s=[round(j, 3) for j in joins] if joins else None,
        residual_profile=after.sync_profile,
    )


def varying_moves(res: Result, min_confidence: float) -> list[AudioMove]:
    """What undoes the drift or steps that ``res`` measured: one ``AudioMove`` per segment.
    Raises ``FcnsyncError`` (one line) when a segment's offset is not known well enough to
    move it: confidence below ``min_confidence``."""
    segs = res.segments or []
    changes = profile_verdict(res)
    if not segs or not res.varies:
        raise FcnsyncError(f"not fixed: no drift or steps to correct ({res.sync_profile})")
    for g in segs:
        if g.confidence is None or g.confidence < min_confidence:
            conf = "unknown" if g.confidence is None else f"{g.confidence:.2f}"
            raise FcnsyncError(
                f"not fixed: the offset changes within the file ({changes}) and the segment "
                f"{clock_text(g.start_s)}-{clock_text(g.end_s)} is measured with confidence "
                f"{conf}, below {min_confidence:.2f}; give --offset-ms to apply one offset anyway"
            )
    return [
        AudioMove(
            g.start_s,
            g.end_s,
            g.offset_ms / 1000.0,
            (g.end_offset_ms if g.end_offset_ms is not None else g.offset_ms) / 1000.0,
        )
        for g in segs
    ]
