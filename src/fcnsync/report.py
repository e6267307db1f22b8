"""One self-contained HTML page for a batch of results: counts, an offset histogram, the worst
files first with their evidence plots (a drift or steps ranked by the largest offset they
reach), and a table that sorts, with each file's sync profile and, where its offset changes,
the verdict that says how. No network: images inline."""

from __future__ import annotations

import base64
import html
import io
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .pipeline import Result, TrackResult
from .plots import plot_result
from .profile import Segment

_SORT_JS = """
document.querySelectorAll('th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const rows = Array.from(body.rows);
  const asc = th.dataset.asc !== 'true'; th.dataset.asc = asc;
  const key = r => { const t = r.cells[col].dataset.v ?? r.cells[col].textContent;
                     const n = parseFloat(t); return isNaN(n) ? t : n; };
  rows.sort((a, b) => { const x = key(a), y = key(b);
                        return (x > y ? 1 : x < y ? -1 : 0) * (asc ? 1 : -1); });
  rows.forEach(r => body.appendChild(r));
}));
"""


def result_from_record(rec: dict[str, Any]) -> Result:
    """A ``Result`` rebuilt from its JSON record (as ``detect`` writes it)."""
    skip = ("tracks", "segments")
    fields = {k: v for k, v in rec.items() if k in Result.__dataclass_fields__ and k not in skip}
    if rec.get("segments") is not None:
        fields["segments"] = [
            Segment(**{k: v for k, v in s.items() if k in Segment.__dataclass_fields__})
            for s in rec["segments"]
        ]
    tracks = [
        TrackResult(**{k: v for k, v in t.items() if k in TrackResult.__dataclass_fields__})
        for t in rec.get("tracks") or []
    ]
    return Result(**fields, tracks=tracks)


def _png(fig_writer: Any) -> str:
    buf = io.BytesIO()
    fig_writer(buf)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _histogram(offsets: list[float]) -> str:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.hist(offsets, bins=[x - 0.5 for x in range(-16, 17)], color="#4a7")
    ax.set_xlabel("offset, frames (positive: audio leads)")
    ax.set_ylabel("files")
    fig.tight_layout()
    uri = _png(lambda b: fig.savefig(b, format="png", dpi=80))
    plt.close(fig)
    return uri


def _worst_frames(r: Result) -> float:
    """How far out of sync a file gets anywhere: its headline offset, or for a drift or steps
    the largest offset of its segments (frames)."""
    worst = abs(r.offset_frames or 0.0)
    if r.varies:
        for seg in r.segments or []:
            for v in (seg.offset_frames, seg.end_offset_frames):
                worst = max(worst, abs(v or 0.0))
    return worst


def write_report(
    records: Iterable[dict[str, Any]], out: str | os.PathLike[str], max_plots: int = 20
) -> Path:
    """Write the HTML page for ``records`` to ``out``; plots for the ``max_plots`` files that
    are furthest out of sync (and carry the evidence, ``detect --evidence``)."""
    results = [result_from_record(r) for r in records]
    counts = Counter(r.status for r in results)
    offsets = [r.offset_frames for r in results if r.offset_frames is not None]
    order = sorted(results, key=lambda r: (r.status != "ok", -_worst_frames(r)))
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>fcnsync report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px}th{cursor:pointer;background:#eee}"
        ".error{color:#b00}.undetermined{color:#a60}.ok{color:#070}</style></head><body>",
        f"<h1>fcnsync report: {len(results)} files</h1>",
        "<p id='counts'>"
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("ok", "undetermined", "error"))
        + "</p>",
    ]
    if offsets:
        parts.append(f"<img id='histogram' alt='offset histogram' src='{_histogram(offsets)}'>")
    parts.append("<h2>Worst first</h2>")
    shown = 0
    for r in order:
        if shown >= max_plots or not any(t.lag_curve for t in r.tracks):
            continue
        tmp = io.BytesIO()
        plot_result(r, tmp)
        uri = "data:image/png;base64," + base64.b64encode(tmp.getvalue()).decode()
        parts.append(f"<h3>{esc(r.path)}</h3><img class='plot' alt='evidence' src='{uri}'>")
        shown += 1
    parts.append(
        "<h2>All files</h2><table id='results'><thead><tr><th>file</th><th>status</th>"
        "<th>offset ms</th><th>offset frames</th><th>confidence</th><th>profile</th>"
        "<th>note</th>"
        "</tr></thead><tbody>"
    )
    for r in order:

        def cell(v: float | None, fmt: str) -> str:
            return "<td data-v=''></td>" if v is None else f"<td data-v='{v}'>{v:{fmt}}</td>"

        parts.append(
            f"<tr><td>{esc(r.path)}</td><td class='{r.status}'>{r.status}</td>"
            + cell(r.offset_ms, "+.0f")
            + cell(r.offset_frames, "+.1f")
            + cell(r.confidence, ".2f")
            + f"<td>{esc(r.sync_profile or '')}</td><td>{esc(r.note)}</td></tr>"
        )
    parts.append(f"</tbody></table><script>{_SORT_JS}</script></body></html>")
    path = Path(out)
    tmp_path = path.with_name(f".{path.name}.partial")
    tmp_path.write_text("".join(parts), encoding="utf-8")
    os.replace(tmp_path, path)
    return path
