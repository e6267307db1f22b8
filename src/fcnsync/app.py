"""The local web page (``fcnsync app``): drop a video, or give the URL of an HLS stream for one
window, and see the verdict, each face track, the evidence plots and the JSON record; a "fix"
button writes the corrected file when the verdict is confident.

The page only lays out library calls: ``batch.measure_file`` (the per-file call of
``fcnsync detect``), ``plots.plot_result`` (``detect --plot``), the json writer
(``detect --format json --evidence``), ``fix.fix_file`` (``fcnsync fix``) and
``monitor.monitor`` (``fcnsync monitor``). The handlers (``measure_upload``,
``measure_stream``, ``fix_upload``) need no web server and never raise: whatever goes wrong is
one line on the page. Gradio (the ``app`` extra) is imported only by ``build_page`` and
``serve``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .batch import measure_file
from .calibration import Calibration
from .errors import FcnsyncError
from .faces import FaceTracker
from .model import FCNSyncNet
from .pipeline import DEFAULT_MAX_LAG, Result, verdict_text

DEFAULT_HOST = "127.0.0.1"  # only this machine, unless told otherwise
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 500
STREAM_WINDOW_S = 8.0  # seconds of a stream measured for its one verdict
QUEUE_SIZE = 32  # requests waiting beyond this many are told to try again later
CACHE_SWEEP_S = (900, 3600)  # every 15 min, delete the server's copies older than an hour
TRACK_COLUMNS = [
    "face",
    "from s",
    "to s",
    "face found",
    "speech frames",
    "offset ms",
    "offset frames",
    "confidence",
    "status",
]

Progress = Callable[[float, str], None]


def _no_progress(fraction: float, desc: str) -> None:
    pass


@dataclass
class Engine:
    """What every request shares: the model and calibration (loaded once), how to make a face
    tracker for a file, the searched range (frames each way), and the least confidence (0-1)
    at which the fix button corrects a file."""

    model: FCNSyncNet
    calibration: Calibration
    tracker_factory: Callable[[], Any] = FaceTracker
    max_lag: int = DEFAULT_MAX_LAG
    batch_size: int = 16
    min_fix_confidence: float = 0.9


@dataclass
class Outcome:
    """One measurement as the page shows it: the verdict sentence, a row per face track
    (``TRACK_COLUMNS``), the evidence PNG and the JSON record (paths, or None), whether the fix
    button may be used, and the measured file (kept for the fix)."""

    verdict: str
    status: str  # "ok" | "undetermined" | "error"
    rows: list[list[Any]] = field(default_factory=list)
    plot: str | None = None
    record: str | None = None
    fixable: bool = False
    source: str | None = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def page_verdict(status: str, verdict: str, confidence: float | None) -> str:
    """The verdict for people, with its confidence: "audio leads video by 120 ms
    (3.0 frames), confidence 0.97"."""
    if status == "error" or confidence is None:
        return verdict
    return f"{verdict}, confidence {confidence:.2f}"


def track_rows(result: Result) -> list[list[Any]]:
    """One row per face track of ``result``, in ``TRACK_COLUMNS`` order."""
    return [
        [
            t.track_id,
            t.start_s,
            t.end_s,
            f"{100 * t.face_fraction:.0f}%",
            t.speech_frames,
            t.offset_ms,
            t.offset_frames,
            t.confidence,
            t.status if t.reason is None else f"{t.status} ({t.reason})",
        ]
        for t in result.tracks
    ]


def _write_record(record: Result | dict[str, Any], workdir: Path, stem: str) -> str:
    """The JSON record as ``fcnsync detect --format json --evidence`` writes it (a stream
    window: as ``fcnsync monitor`` writes it)."""
    from .writers import get_writer  # noqa: PLC0415

    path = workdir / f"{stem}.fcnsync.json"
    with open(path, "w", encoding="utf-8") as fh:
        if isinstance(record, Result):
            writer = get_writer("json", fh, evidence=True)
            writer.write(record)
            writer.finish()
        else:
            fh.write(json.dumps(record, indent=2) + "\n")
    return str(path)


def measure_upload(
    path: str | None,
    engine: Engine,
    workdir: str | os.PathLike[str],
    progress: Progress = _no_progress,
) -> Outcome:
    """Measure an uploaded file the way ``fcnsync detect`` does and prepare what the page
    shows; plot and record are written in ``workdir``. Never raises."""
    if not path:
        return Outcome("error: choose a video file first (or give a stream URL)", "error")
    name = os.path.basename(path)
    progress(0.05, f"measuring {name}")
    try:
        tracker = engine.tracker_factory()
    except Exception as exc:
        return Outcome(f"error: the face tracker cannot start: {_first_line(exc)}", "error")
    result = measure_file(
        path, engine.model, engine.calibration, engine.max_lag, engine.batch_size, tracker
    )
    result.path = name  # the record names the file as uploaded, not where the server keeps it
    progress(0.9, "drawing the evidence")
    out = Outcome(
        page_verdict(result.status, result.verdict, result.confidence),
        result.status,
        rows=track_rows(result),
        source=path,
        fixable=result.status == "ok" and (result.confidence or 0.0) >= engine.min_fix_confidence,
    )
    work = Path(workdir)
    stem = Path(name).stem or "upload"
    try:
        out.record = _write_record(result, work, stem)
        if any(t.lag_curve for t in result.tracks):
            from .plots import plot_result  # noqa: PLC0415

            plot_result(result, work / f"{stem}.evidence.png")
            out.plot = str(work / f"{stem}.evidence.png")
    except Exception as exc:  # a full disk must not lose the verdict already found
        out.verdict += f" (the evidence could not be saved: {_first_line(exc)})"
    return out


def measure_stream(
    url: str,
    engine: Engine,
    workdir: str | os.PathLike[str],
    window_s: float = STREAM_WINDOW_S,
    progress: Progress = _no_progress,
) -> Outcome:
    """Measure one window of ``window_s`` seconds of a stream (http or https, e.g. an HLS
    playlist) the way ``fcnsync monitor`` measures each of its windows. Never raises."""
    from .monitor import monitor  # noqa: PLC0415

    url = url.strip()
    if urlparse(url).scheme not in ("http", "https"):
        return Outcome("error: give an http:// or https:// stream URL", "error")
    progress(0.05, f"reading {window_s:.0f} s of the stream")
    records = monitor(
        url,
        engine.model,
        engine.calibration,
        window_s=window_s,
        hop_s=window_s,
        max_lag=engine.max_lag,
        reconnect=False,
        tracker_factory=engine.tracker_factory,
    )
    window: dict[str, Any] | None = None
    try:
        for rec in records:
            if rec["event"] == "window":
                window = rec
                break
            if rec["event"] == "error":
                return Outcome(f"error: {rec.get('error')}", "error")
    except Exception as exc:
        return Outcome(f"error: internal error: {_first_line(exc)}", "error")
    finally:
        records.close()  # type: ignore[attr-defined]  # a generator: stop reading the stream
    if window is None:
        return Outcome(
            f"error: the stream ended before {window_s:.0f} s could be measured", "error"
        )
    if window["status"] == "ok":
        verdict = verdict_text(window["offset_ms"], window["offset_frames"])
    else:
        verdict = f"undetermined: {window['reason']}"
    out = Outcome(page_verdict(window["status"], verdict, window["confidence"]), window["status"])
    try:
        out.record = _write_record(window, Path(workdir), "stream")
    except OSError as exc:
        out.verdict += f" (the record could not be saved: {_first_line(exc)})"
    return out


def fix_upload(
    source: str | None, engine: Engine, workdir: str | os.PathLike[str]
) -> tuple[str, str | None]:
    """Correct ``source`` with ``fix.fix_file`` (as ``fcnsync fix``: it measures again and
    refuses an undetermined or unconfident verdict). Returns the message for the page and the
    corrected file (None when not fixed). Never raises."""
    from .fix import fix_file  # noqa: PLC0415

    if not source:
        return "error: measure a file first", None
    src = Path(source)
    dst = Path(workdir) / f"{src.stem}.fixed{src.suffix}"
    try:
        res = fix_file(
            src,
            dst,
            engine.model,
            engine.calibration,
            min_confidence=engine.min_fix_confidence,
            tracker_factory=engine.tracker_factory,
        )
    except FcnsyncError as exc:
        return f"error: {exc}", None
    except Exception as exc:
        return f"error: internal error: {_first_line(exc)}", None
    check = (
        "could not be measured again"
        if res.residual_ms is None
        else f"measures {res.residual_ms:+.0f} ms ({res.residual_frames:+.1f} frames) now"
        + (", within 1 frame of sync" if res.verified else ", NOT within 1 frame of sync")
    )
    if res.applied_offset_ms is not None:
        done = f"audio delayed by {res.applied_offset_ms:+.0f} ms ({res.method})"
    else:  # a drift resampled away or steps moved one by one
        done = f"the changing offset undone ({res.profile_before}, {res.method})"
    return f"{done}; the corrected file {check}", str(dst)


class Session:
    """One browser tab's files on the server: a folder for its outputs and the last upload,
    both removed when the tab measures something else or is closed."""

    def __init__(self, root: str | os.PathLike[str]):
        self.workdir = Path(tempfile.mkdtemp(prefix="req-", dir=root))
        self.upload: str | None = None

    def remove(self, keep: str | None = None) -> None:
        """Delete the folder and the upload (unless it is ``keep``, measured again)."""
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.upload and self.upload != keep:
            Path(self.upload).unlink(missing_ok=True)


def _end_session(session: Session | None, keep: str | None = None) -> None:
    if session is not None:
        session.remove(keep)


def _import_gradio() -> Any:
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no telemetry, no version check
    try:
        import gradio as gr  # noqa: PLC0415
    except ImportError:
        raise FcnsyncError('the web page needs the app extra: pip install "fcnsync[app]"') from None
    return gr


def build_page(engine: Engine, root: str | os.PathLike[str]) -> Any:
    """The page as a ``gradio.Blocks``; each tab's files go in a folder under ``root``.
    Measuring and fixing share one queue and run one at a time (one model, CPU-bound work):
    other users wait their turn, and past ``QUEUE_SIZE`` waiting are told to come back."""
    gr = _import_gradio()
    tracking = gr.Progress()  # gradio fills in a handler's progress from its default

    sessions: dict[str, Session] = {}  # one per browser tab (gradio's session hash)
    lock = threading.Lock()

    def take(request: Any) -> Session | None:
        with lock:
            return sessions.pop(request.session_hash or "", None)

    def on_measure(upload: str | None, url: str, request: Any, progress=tracking):  # type: ignore[no-untyped-def]
        _end_session(take(request), keep=upload)
        session = Session(root)
        with lock:
            sessions[request.session_hash or ""] = session
        report = lambda f, d: progress(f, desc=d)  # noqa: E731
        if upload:
            session.upload = upload
            out = measure_upload(upload, engine, session.workdir, report)
        elif url and url.strip():
            out = measure_stream(url, engine, session.workdir, progress=report)
        else:
            out = measure_upload(None, engine, session.workdir)
        return (
            out.verdict,
            gr.update(value=out.rows, visible=bool(out.rows)),
            gr.update(value=out.plot, visible=out.plot is not None),
            out.record,
            gr.update(interactive=out.fixable and out.source is not None),
            "",
            gr.update(value=None, visible=False),
        )

    def on_fix(request: Any, progress=tracking):  # type: ignore[no-untyped-def]
        with lock:
            session = sessions.get(request.session_hash or "")
        if session is None:
            return "error: measure a file first", gr.update(visible=False)
        progress(0.1, desc="correcting and measuring the result")
        message, fixed = fix_upload(session.upload, engine, session.workdir)
        return message, gr.update(value=fixed, visible=fixed is not None)

    def on_close(request: Any) -> None:
        _end_session(take(request))

    for handler in (on_measure, on_fix, on_close):  # gradio passes the request by its type
        handler.__annotations__["request"] = gr.Request

    with gr.Blocks(title="fcnsync", analytics_enabled=False, delete_cache=CACHE_SWEEP_S) as page:
        gr.Markdown(
            "# fcnsync: lip-sync check\n"
            "Drop a talking-head video (or give the URL of an HLS stream to measure "
            f"{STREAM_WINDOW_S:.0f} s of it), then **Measure**. Positive offsets: the audio "
            "leads the video."
        )
        with gr.Row():
            upload = gr.File(label="Video file", type="filepath", elem_id="upload")
            url = gr.Textbox(
                label="or a stream URL (http/https, e.g. an HLS .m3u8)", elem_id="url", lines=1
            )
        measure = gr.Button("Measure", variant="primary", elem_id="measure")
        verdict = gr.Textbox(label="Verdict", interactive=False, elem_id="verdict")
        table = gr.Dataframe(
            headers=TRACK_COLUMNS, label="Face tracks", visible=False, elem_id="tracks"
        )
        plot = gr.Image(
            label="Evidence: lag curve and offset over time",
            type="filepath",
            visible=False,
            elem_id="plot",
        )
        record = gr.File(label="JSON record", elem_id="record", height=100)
        with gr.Row(equal_height=True):
            fix = gr.Button(
                "Fix: write the corrected file", interactive=False, elem_id="fix", scale=1
            )
            fix_note = gr.Textbox(label="Fix", interactive=False, elem_id="fix-note", scale=3)
        fixed = gr.File(label="Corrected file", elem_id="fixed", visible=False)
        measure.click(
            on_measure,
            [upload, url],
            [verdict, table, plot, record, fix, fix_note, fixed],
            concurrency_limit=1,
            concurrency_id="engine",
        )
        fix.click(on_fix, None, [fix_note, fixed], concurrency_limit=1, concurrency_id="engine")
        page.unload(on_close)
    page.queue(max_size=QUEUE_SIZE)
    return page


@dataclass
class Server:
    """A running page: its address and how to stop it (which removes its files)."""

    url: str
    page: Any
    root: Path

    def close(self) -> None:
        self.page.close()
        shutil.rmtree(self.root, ignore_errors=True)


def start(
    engine: Engine,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB,
    block: bool = True,
) -> Server:
    """Serve the page on ``host``:``port`` (uploads up to ``max_upload_mb`` MB). Every upload
    and output lives in one temporary folder, removed when the server stops. ``block``: serve
    until interrupted (then stop); otherwise return the running ``Server``."""
    root = Path(tempfile.mkdtemp(prefix="fcnsync-app-"))
    # gradio keeps uploads and the files it serves under this folder: set before its import
    os.environ["GRADIO_TEMP_DIR"] = str(root / "served")
    try:
        page = build_page(engine, root)
        _, url, _ = page.launch(
            server_name=host,
            server_port=port,
            max_file_size=max_upload_mb * 1024 * 1024,
            share=False,
            inbrowser=False,
            prevent_thread_lock=True,
            show_error=False,
            ssr_mode=False,
            mcp_server=False,
            pwa=False,
            enable_monitoring=False,
            footer_links=[],
            quiet=not block,
        )
    except OSError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise FcnsyncError(f"cannot serve on {host}:{port}: {_first_line(exc)}") from None
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    server = Server(url=url, page=page, root=root)
    if block:
        try:
            page.block_thread()
        finally:
            server.close()
    return server
