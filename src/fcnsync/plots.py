"""Pictures of the evidence behind a result (matplotlib, which the face tracker installs)."""

from __future__ import annotations

import os
from typing import BinaryIO

from .pipeline import Result

EBU_R37_MS = (40.0, 60.0)  # audio at most 40 ms early, 60 ms late
MAX_LEGEND_TRACKS = 6  # more face tracks than this share one legend entry


def plot_result(
    result: Result,
    path: str | os.PathLike[str] | BinaryIO,
    tolerance_ms: tuple[float, float] = EBU_R37_MS,
) -> None:
    """Write a PNG for one record (needs the tracks' lag curves and series, which ``detect``
    fills): left, the lag curve of each face track (mean evidence per candidate offset, the
    chosen peak, the searched range); right, the offset found each second with its confidence,
    per track, over the tolerance band, and the fitted profile when the offset changes."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fps = result.fps or 25.0
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    max_lag = result.max_lag_frames
    many = len(result.tracks) > MAX_LEGEND_TRACKS

    def label(k: int, own: str) -> str | None:
        if not many:
            return own
        return f"{len(result.tracks)} face tracks, a colour each" if k == 0 else None

    for k, tr in enumerate(t for t in result.tracks if t.lag_curve):
        assert tr.lag_curve is not None
        # the curve runs over lags -L..L around its centre (0 unless a drift was followed past
        # the range); offsets are the centre minus the lag (positive: audio leads)
        centre = tr.lag_curve_centre_frames or 0
        offsets = [centre - (i - max_lag) for i in range(len(tr.lag_curve))]
        ax1.plot(offsets, tr.lag_curve, label=label(k, f"face {tr.track_id}"))
        if tr.offset_frames is not None:
            ax1.axvline(tr.offset_frames, ls="--", lw=1, color=ax1.lines[-1].get_color())
    ax1.axvspan(
        -tolerance_ms[1] * fps / 1000,
        tolerance_ms[0] * fps / 1000,
        color="green",
        alpha=0.12,
        label="tolerance (EBU R37)",
    )
    centres = [0] + [t.lag_curve_centre_frames or 0 for t in result.tracks if t.lag_curve]
    ax1.set_xlim(min(centres) - max_lag - 0.5, max(centres) + max_lag + 0.5)
    ax1.set_xlabel("offset, frames (positive: audio leads)")
    ax1.set_ylabel("mean lip-audio evidence")
    ax1.set_title(f"lag curve (search range +-{max_lag} frames)", fontsize=9)
    ax1.legend(fontsize=7, loc="lower right")
    k = 0
    for tr in result.tracks:
        pts = [p for p in (tr.series or []) if p.get("offset_frames") is not None]
        if not pts:
            continue
        t = [p["t_s"] for p in pts]
        ax2.scatter(
            t,
            [p["offset_frames"] for p in pts],
            s=[8 + 40 * (p["confidence"] or 0) for p in pts],
            label=label(k, f"face {tr.track_id} ({tr.start_s:.0f}-{tr.end_s:.0f} s)"),
        )
        k += 1
    ax2.axhspan(
        -tolerance_ms[1] * fps / 1000, tolerance_ms[0] * fps / 1000, color="green", alpha=0.12
    )
    for k, seg in enumerate(result.segments or []):
        if not result.varies:
            break
        end = seg.offset_frames if seg.end_offset_frames is None else seg.end_offset_frames
        ax2.plot(
            [seg.start_s, seg.end_s],
            [seg.offset_frames, end],
            lw=2.5,
            color="crimson",
            label=f"fitted profile: {result.sync_profile}" if k == 0 else None,
        )
    if result.offset_frames is not None:
        ax2.axhline(
            result.offset_frames,
            ls="--",
            lw=1,
            color="black",
            label=f"file: {result.offset_frames:+.1f} frames",
        )
    seen = [
        abs(v)
        for seg in result.segments or []
        for v in (seg.offset_frames, seg.end_offset_frames)
        if v is not None
    ]
    top = max([max_lag, *seen])
    ax2.set_ylim(-top - 1, top + 1)
    ax2.set_xlabel("time, s")
    ax2.set_ylabel("offset each second, frames (dot size: confidence)")
    ax2.set_title("evidence over time", fontsize=9)
    ax2.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{os.path.basename(result.path)}: {result.verdict}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)
