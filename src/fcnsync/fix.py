"""Correcting a file: measure (or take a known offset), move the audio, check the result.

The video packets are copied untouched. The audio is moved by rewriting its timestamps where
the container keeps them (mp4, mov, mkv, webm, ts, flv), otherwise (avi, or on request) by moving
its samples and re-encoding it. The output is written under a temporary name and renamed, so an
interrupted run leaves no half file, and the input is never overwritten.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .calibration import Calibration
from .errors import FcnsyncError
from .model import FCNSyncNet
from .pipeline import detect, profile_verdict
from .remux import shift_audio

TIMESTAMP_CONTAINERS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".ts", ".flv", ".mpg", ".mpeg"}


@dataclass
class FixResult:
    """What ``fix_file`` did: the correction applied and the offset measured afterwards."""

    path: str
    output: str
    applied_offset_ms: float
    method: str  # "timestamps" or "samples"
    measured_before_ms: float | None
    confidence_before: float | None
    residual_ms: float | None
    residual_frames: float | None
    verified: bool  # the output measures within +-1 frame of zero

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
    positive: the audio leads, so it is delayed by that much). Raises ``FcnsyncError`` when the
    measurement is undetermined, below ``min_confidence`` or finds an offset that drifts or
    steps within the file (and no ``offset_ms`` is given), or when ``dst`` is ``src``."""
    src_p, dst_p = Path(src), Path(dst)
    if dst_p.exists() and src_p.exists() and os.path.samefile(src_p, dst_p):
        raise FcnsyncError("refusing to overwrite the input: give another output path")
    make_tracker = tracker_factory or (lambda: None)
    before = None
    if offset_ms is None:
        before = detect(src_p, model=model, calibration=calibration, tracker=make_tracker())
        if before.status == "error":
            raise FcnsyncError(before.error or "cannot measure")
        if before.status != "ok" or before.offset_ms is None:
            raise FcnsyncError(
                f"not fixed: the measurement is undetermined ({before.reason}); "
                "give --offset-ms to apply a known correction"
            )
        if (before.confidence or 0.0) < min_confidence:
            raise FcnsyncError(
                f"not fixed: confidence {before.confidence:.2f} is below "
                f"{min_confidence:.2f}; give --offset-ms to apply a known correction"
            )
        changes = profile_verdict(before)
        if changes is not None:
            # one offset applied to a drifting or stepped file would be right at one moment only
            raise FcnsyncError(
                f"not fixed: the offset changes within the file ({changes}); only a constant "
                "offset is corrected, give --offset-ms to apply one anyway"
            )
        offset_ms = before.offset_ms
    method = (
        "samples"
        if reencode_audio
        or src_p.suffix.lower() not in TIMESTAMP_CONTAINERS
        or dst_p.suffix.lower() not in TIMESTAMP_CONTAINERS
        else "timestamps"
    )
    tmp = dst_p.with_name(f".{dst_p.stem}.partial{dst_p.suffix}")
    try:
        shift_audio(src_p, tmp, -offset_ms / 1000.0, mode=method)
        os.replace(tmp, dst_p)
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
        applied_offset_ms=round(offset_ms, 1),
        method=method,
        measured_before_ms=before.offset_ms if before else None,
        confidence_before=before.confidence if before else None,
        residual_ms=best.offset_ms if best else None,
        residual_frames=residual_frames,
        verified=residual_frames is not None and abs(residual_frames) <= 1.0,
    )
