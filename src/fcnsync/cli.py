"""The command line: parse, call the library, choose a writer, map errors to exit codes."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .monitor import Tolerance

import click

from . import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _fail(message: str, code: int = EXIT_FAILED) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _fail_to_write(path: str, exc: OSError) -> None:
    """An output the user named cannot be written: a usage error, said before any work."""
    _fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE)


def _make_dir(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        _fail_to_write(path, exc)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fcnsync")
def main() -> None:
    """Measure how far the audio of talking-face video is out of sync with the lips."""
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 pass through as bytes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "table", "json", "jsonl", "csv", "parquet"]),
    default="auto",
    show_default=True,
    help="Output format; auto: table on a terminal, jsonl otherwise (csv for an --output ending"
    " in .csv, parquet for one ending in .parquet: a folder of part files; needs the ray extra).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="Write records to this file instead of stdout (each line complete); a folder for parquet.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="With --output (jsonl, csv or parquet): skip files already in it, append the rest.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray: run on the Ray cluster named by RAY_ADDRESS, or a local one with --jobs CPUs"
    " (needs the ray extra).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes, each loading the model once [default: the CPU count].",
)
@click.option(
    "--ordered", is_flag=True, help="Write records in input order (default: as files finish)."
)
@click.option(
    "--max-lag",
    type=click.IntRange(1, 100),
    default=15,
    show_default=True,
    help=(
        "Search offsets up to this many frames each way (further where a drift leads; where "
        "20 s of talking faces show no offset, also the two ranges beyond, each way)."
    ),
)
@click.option(
    "--calibration",
    type=click.Path(dir_okay=False),
    help="A calibration file from 'fcnsync calibrate' (default: the shipped one).",
)
@click.option(
    "--weights",
    type=click.Path(dir_okay=False),
    help="A checkpoint to use instead of the shipped weights.",
)
@click.option("--device", default=None, help="torch device (default: cuda if present, else cpu).")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1024),
    default=16,
    show_default=True,
    help="Chunks scored per forward pass (results do not depend on it).",
)
@click.option("--glob", "glob_", default=None, help="Only files whose name matches, in folders.")
@click.option(
    "-0",
    "--null",
    "null_sep",
    is_flag=True,
    help="Paths on stdin are NUL-separated (find -print0).",
)
@click.option(
    "--evidence",
    is_flag=True,
    help="Add each track's lag curve and per-second series to json/jsonl records.",
)
@click.option(
    "--plot",
    "plot_dir",
    type=click.Path(file_okay=False),
    help="Write a PNG of the evidence (lag curve, offset over time) per file here.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(1),
    default=1800.0,
    show_default=True,
    help="Seconds one file may take (with workers).",
)
@click.option(
    "-q", "--quiet", is_flag=True, help="No progress, summary or per-file error lines on stderr."
)
def detect(
    inputs: tuple[str, ...],
    fmt: str,
    output: str | None,
    resume: bool,
    engine: str,
    jobs: int | None,
    ordered: bool,
    max_lag: int,
    calibration: str | None,
    weights: str | None,
    device: str | None,
    batch_size: int,
    glob_: str | None,
    null_sep: bool,
    evidence: bool,
    timeout_s: float,
    quiet: bool,
    plot_dir: str | None = None,
) -> None:
    """Measure the lip-sync offset of INPUTS: files, folders, .txt listings of paths, or - for
    paths on stdin.

    Positive offsets mean the audio leads the video. Exit code 0 when every file was
    measured (ok or undetermined), 1 when any file failed, 2 for a usage error."""
    from .batch import (  # noqa: PLC0415 - keep --help fast
        Reorder,
        WorkerSettings,
        check_csv_columns,
        done_paths,
        measure_file,
        run_parallel,
        summary_text,
    )
    from .errors import FcnsyncError  # noqa: PLC0415

    if resume and not output:
        _fail("--resume needs --output FILE", EXIT_USAGE)
    if engine == "ray" and (evidence or plot_dir):
        _fail("--evidence and --plot work with --engine local only", EXIT_USAGE)
    if plot_dir:
        _make_dir(plot_dir)
    if engine == "ray":
        from .ray import RayMissingError, require_ray  # noqa: PLC0415

        try:
            require_ray()
        except RayMissingError as exc:
            _fail(str(exc), EXIT_USAGE)
    if fmt == "auto":
        fmt = (
            {".csv": "csv", ".parquet": "parquet"}.get(os.path.splitext(output)[1], "jsonl")
            if output
            else ("table" if sys.stdout.isatty() else "jsonl")
        )
    if resume and fmt not in ("jsonl", "csv", "parquet"):
        _fail("--resume works with --format jsonl, csv or parquet", EXIT_USAGE)
    if fmt == "parquet" and (not output or evidence):
        _fail("--format parquet needs --output FOLDER and no --evidence", EXIT_USAGE)
    scan = _scan(inputs, glob_, null_sep)
    paths = scan.paths
    # torch and the model are loaded once the inputs are known: an empty folder is said at once
    from .calibration import load_calibration  # noqa: PLC0415
    from .faces import silence_native_stderr  # noqa: PLC0415
    from .model import load_model  # noqa: PLC0415
    from .writers import CSV_FIELDS, get_writer  # noqa: PLC0415

    silence_native_stderr()
    try:
        model = load_model(weights, device=device)
        cal = load_calibration(calibration)
    except FcnsyncError as exc:
        _fail(str(exc))
        return
    except RuntimeError as exc:  # e.g. an unknown torch device
        _fail(f"cannot use device {device!r}: {str(exc).splitlines()[0]}", EXIT_USAGE)
        return
    skipped = 0
    if resume and output:
        try:
            if fmt == "csv" and os.path.isfile(output) and os.path.getsize(output) > 0:
                check_csv_columns(output, CSV_FIELDS)
            done = done_paths(output)
        except FcnsyncError as exc:
            _fail(str(exc), EXIT_USAGE)
        skipped = sum(p in done for p in paths)
        paths = [p for p in paths if p not in done]
    stream: IO[str]
    if fmt == "parquet" and output:
        appending, stream = False, sys.stdout
        try:
            writer: Any = _parquet_writer(output)
        except FcnsyncError as exc:
            _fail(str(exc), EXIT_USAGE)
    elif output:
        try:
            appending = resume and os.path.exists(output) and os.path.getsize(output) > 0
            stream = open(
                output,
                "a" if appending else "w",
                encoding="utf-8",
                newline="",
                errors="surrogateescape",
            )
        except OSError as exc:
            _fail_to_write(output, exc)
            return
    else:
        appending = False
        stream = sys.stdout
    if fmt != "parquet":
        writer = get_writer(fmt, stream, evidence=evidence, header=not appending)
    results = []
    show = not quiet and sys.stderr.isatty()
    progress = _progress(len(paths)) if show and len(paths) > 1 else None

    def emit(result) -> None:  # type: ignore[no-untyped-def]
        results.append(result)
        if result.status == "error" and not quiet:
            line = f"Error: {result.path}: {result.error}"
            (
                progress.console.print(line, markup=False, highlight=False)
                if progress
                else click.echo(line, err=True)
            )
        writer.write(result)
        if plot_dir and result.tracks:
            from .plots import plot_result  # noqa: PLC0415

            stem = os.path.splitext(os.path.basename(result.path))[0]
            tag = hashlib.sha1(os.fsencode(result.path)).hexdigest()[:6]
            plot_result(result, os.path.join(plot_dir, f"{stem}.{tag}.png"))
        if progress:
            progress.advance(0)

    n_jobs = jobs or os.cpu_count() or 1
    try:
        if progress:
            progress.start()
        settings = WorkerSettings(weights, calibration, device, max_lag, batch_size)
        # a table is printed when the batch ends: it may as well keep the input order
        sink = Reorder(emit) if ordered or fmt == "table" else (lambda i, r: emit(r))
        if engine == "ray" and paths:
            from . import ray as fr  # noqa: PLC0415

            fr.init(num_cpus=jobs, quiet=quiet)
            fr.run_paths(paths, settings, sink)
        elif n_jobs > 1 and len(paths) > 1:
            run_parallel(paths, settings, n_jobs, sink, timeout_s=timeout_s)
        else:
            for path in paths:
                result = measure_file(path, model, cal, max_lag, batch_size)
                emit(result)
    except KeyboardInterrupt:
        if progress:
            progress.stop()
        writer.finish()
        click.echo(f"Interrupted: {len(results)} finished records were written.", err=True)
        sys.exit(130)
    except FcnsyncError as exc:  # the Ray engine missing or its job failing
        if progress:
            progress.stop()
        writer.finish()
        _fail(f"{exc} ({len(results)} finished records were written)")
    if progress:
        progress.stop()
    writer.finish()
    if output and fmt != "parquet":
        stream.close()
    if not quiet and (len(results) + skipped > 1 or scan.non_media):
        extra = f" ({skipped} already in {output})" if skipped else ""
        click.echo(summary_text(results, scan.non_media) + extra, err=True)
    failed = sum(r.status == "error" for r in results)
    sys.exit(EXIT_FAILED if failed or scan.empty else EXIT_OK)


def _scan(inputs: tuple[str, ...], glob: str | None = None, null_sep: bool = False) -> Any:
    """The inputs' paths (``batch.scan_inputs``). An input that gives none (a folder without
    media files, an empty listing) gets its one error line; when none of them gives a path,
    that is the command's outcome: exit 1, before anything is loaded."""
    from .batch import scan_inputs  # noqa: PLC0415

    scan = scan_inputs(inputs, glob, null_sep)
    for item, why in scan.empty:
        click.echo(f"Error: {'stdin' if item == '-' else item}: {why}", err=True)
    if not scan.paths and scan.empty:
        sys.exit(EXIT_FAILED)
    return scan


def _parquet_writer(folder: str) -> Any:
    from .errors import FcnsyncError  # noqa: PLC0415
    from .writers import ParquetWriter  # noqa: PLC0415

    try:
        return ParquetWriter(folder)
    except ImportError as exc:
        raise FcnsyncError("--format parquet needs pyarrow: pip install 'fcnsync[ray]'") from exc
    except OSError as exc:
        raise FcnsyncError(f"cannot write {folder}: {exc.strerror}") from exc


def _progress(total: int):  # type: ignore[no-untyped-def]
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("measuring"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    progress.add_task("files", total=total)
    return progress


@main.command("score")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--pairs",
    "pairs_dir",
    type=click.Path(exists=True),
    help="Compare each input with this folder, file by file (the same names, extension aside).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "markdown", "csv", "latex"]),
    default="table",
    show_default=True,
    help="How the table of folders is printed.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="Also write a record per video to this file (.csv, .json, else JSON lines).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes, each loading the model once [default: the CPU count].",
)
@click.option("--max-lag", type=click.IntRange(1, 100), default=15, show_default=True)
@click.option("--weights", type=click.Path(dir_okay=False))
@click.option("--calibration", type=click.Path(dir_okay=False))
@click.option(
    "--reference",
    type=click.Path(dir_okay=False),
    help="A sync reference (real footage's sync strengths) instead of the shipped one.",
)
@click.option("--device", default=None, help="torch device (default: cuda if present, else cpu).")
@click.option("-q", "--quiet", is_flag=True, help="No per-file error lines on stderr.")
def score_cmd(
    inputs: tuple[str, ...],
    pairs_dir: str | None,
    fmt: str,
    output: str | None,
    jobs: int | None,
    max_lag: int,
    weights: str | None,
    calibration: str | None,
    reference: str | None,
    device: str | None,
    quiet: bool,
) -> None:
    """Score lip-sync generators: a sync score per video of INPUTS (folders or files), one row
    per input in one table, and with --pairs a file-by-file comparison.

    The sync score is the percentile (0-100) of real, in-sync footage whose lips follow the
    audio as strongly (50: as well as the median real clip). Exit code 0 when every file was
    measured, 1 when any file failed, 2 for a usage error."""
    from . import score as sc  # noqa: PLC0415
    from .batch import WorkerSettings, expand_inputs  # noqa: PLC0415
    from .calibration import load_calibration  # noqa: PLC0415
    from .errors import FcnsyncError  # noqa: PLC0415
    from .faces import silence_native_stderr  # noqa: PLC0415
    from .model import load_model  # noqa: PLC0415
    from .writers import get_table_writer, get_writer  # noqa: PLC0415

    groups = [(name, list(expand_inputs([name]))) for name in inputs]
    if pairs_dir:
        groups.append((pairs_dir, list(expand_inputs([pairs_dir]))))
    for name, paths in groups:
        if not paths:
            _fail(f"{name}: no media files found", EXIT_USAGE)
    silence_native_stderr()
    try:
        model = load_model(weights, device=device)
        cal = load_calibration(calibration)
        ref = sc.load_reference(reference)
    except FcnsyncError as exc:
        _fail(str(exc))
        return
    except RuntimeError as exc:
        _fail(f"cannot use device {device!r}: {str(exc).splitlines()[0]}", EXIT_USAGE)
        return
    record_writer = None
    stream: IO[str] | None = None
    if output:
        kind = {".csv": "csv", ".json": "json"}.get(os.path.splitext(output)[1], "jsonl")
        try:
            stream = open(output, "w", encoding="utf-8", newline="", errors="surrogateescape")
        except OSError as exc:
            _fail_to_write(output, exc)
            return
        record_writer = get_writer(kind, stream, records="score")

    def emit(score: sc.Score) -> None:
        if score.status == "error" and not quiet:
            click.echo(f"Error: {score.path}: {score.error}", err=True)
        if record_writer:
            record_writer.write(score)

    settings = WorkerSettings(weights, calibration, device, max_lag, 16)
    n_jobs = jobs or os.cpu_count() or 1
    scored = []
    try:
        for _, paths in groups:
            scored.append(sc.score_paths(paths, model, cal, ref, max_lag, n_jobs, settings, emit))
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    finally:
        if record_writer and stream:
            record_writer.finish()
            stream.close()
    table = get_table_writer(fmt, sys.stdout)
    main_groups = groups[: len(inputs)]
    summaries = [
        sc.summarise_folder(name, scores) for (name, _), scores in zip(groups, scored, strict=True)
    ]
    table.write("sync scores (percentile of real footage)", *sc.folder_table(summaries))
    if pairs_dir:
        compared = []
        for (name, _), scores in zip(main_groups, scored, strict=False):
            pairs, unpaired = sc.pair_up(scores, name, scored[-1], pairs_dir)
            table.write(f"{name} against {pairs_dir}, file by file", *sc.pair_table(pairs))
            compared.append(sc.summarise_pairs(name, pairs_dir, pairs, unpaired))
        table.write("paired comparison", *sc.pair_summary_table(compared))
    failed = any(s.status == "error" for scores in scored for s in scores)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


@main.command()
@click.argument("results_file", type=click.Path(exists=True))
@click.option(
    "--max-offset-frames",
    type=float,
    default=1.0,
    show_default=True,
    help="Keep clips whose |offset| is at most this many frames.",
)
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.9, show_default=True)
@click.option("--invert", is_flag=True, help="Print the clips that do NOT pass instead.")
@click.option("-0", "--null", "null_sep", is_flag=True, help="End each path with NUL.")
def select(
    results_file: str, max_offset_frames: float, min_confidence: float, invert: bool, null_sep: bool
) -> None:
    """Print the paths of the clips in RESULTS_FILE (jsonl, csv or parquet from detect) in sync:
    status ok, |offset_frames| <= --max-offset-frames, confidence >= --min-confidence, and an
    offset that holds through the file (not a drift or steps)."""
    from .profile import VARYING  # noqa: PLC0415

    end = "\0" if null_sep else "\n"
    for rec in _records(results_file):
        try:
            offset = float(rec.get("offset_frames") or "nan")
            confidence = float(rec.get("confidence") or "nan")
        except (TypeError, ValueError):
            offset = confidence = float("nan")
        ok = (
            rec.get("status") == "ok"
            and abs(offset) <= max_offset_frames
            and confidence >= min_confidence
            and rec.get("sync_profile") not in VARYING
        )
        if ok != invert:
            sys.stdout.write(str(rec["path"]) + end)


@main.command("monitor")
@click.argument("source")
@click.option(
    "--window",
    "window_s",
    type=click.FloatRange(2, 120),
    default=8.0,
    show_default=True,
    help="Seconds of stream each record covers.",
)
@click.option(
    "--hop",
    "hop_s",
    type=click.FloatRange(0.5, 120),
    default=2.0,
    show_default=True,
    help="Seconds of stream between records.",
)
@click.option(
    "--tolerance",
    default="40,60",
    show_default=True,
    help="EARLY_MS,LATE_MS the audio may lead or lag (EBU R37: 40,60; ITU-R BT.1359"
    " acceptability: 90,185).",
)
@click.option(
    "--alarm-windows",
    type=click.IntRange(1, 100),
    default=2,
    show_default=True,
    help="Windows in a row whose newest part is confidently outside (back inside) the"
    " tolerance to raise (clear) the alarm: 1 is fastest, 2 avoids false alarms.",
)
@click.option(
    "--alarm-agree-ms",
    type=click.FloatRange(0, 10_000),
    default=40.0,
    show_default=True,
    help="The windows that raise the alarm must read within this of each other (0: any"
    " readings outside the tolerance count).",
)
@click.option(
    "--alarm-confidence",
    type=click.FloatRange(0, 1),
    default=0.8,
    show_default=True,
    help="The least confidence of a window's verdict for it to count toward the alarm.",
)
@click.option("--follow", is_flag=True, help="SOURCE is a file still being written.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "live", "jsonl"]),
    default="auto",
    show_default=True,
    help="auto: a live view on a terminal, jsonl otherwise.",
)
@click.option("--max-lag", type=click.IntRange(1, 100), default=15, show_default=True)
@click.option("--weights", type=click.Path(dir_okay=False))
@click.option("--calibration", type=click.Path(dir_okay=False))
def monitor_cmd(
    source: str,
    window_s: float,
    hop_s: float,
    tolerance: str,
    alarm_windows: int,
    alarm_agree_ms: float,
    alarm_confidence: float,
    follow: bool,
    fmt: str,
    max_lag: int,
    weights: str | None,
    calibration: str | None,
) -> None:
    """Watch a live SOURCE (HLS or other stream URL, or a file) and report its lip-sync every
    --hop seconds, with an alarm when it drifts outside --tolerance. Ends with a summary when
    the stream ends (exit 0) or on Ctrl-C; a SOURCE that cannot be opened is an error (exit 1)."""
    import json  # noqa: PLC0415

    from .monitor import Tolerance, monitor  # noqa: PLC0415

    try:
        tol = Tolerance.parse(tolerance)
    except ValueError as exc:
        _fail(str(exc), EXIT_USAGE)
        return
    model, cal = _load(weights, calibration)
    if fmt == "auto":
        fmt = "live" if sys.stdout.isatty() else "jsonl"
    records = monitor(
        source,
        model,
        cal,
        window_s,
        hop_s,
        max_lag,
        tol,
        alarm_windows,
        follow,
        alarm_agree_ms=alarm_agree_ms or None,
        alarm_confidence=alarm_confidence,
    )
    failed: list[dict[str, Any]] = []  # the watch's error record (it is followed by "end")

    def noting(recs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for rec in recs:
            if rec["event"] == "error":
                failed.append(rec)
            yield rec

    try:
        if fmt == "jsonl":
            for rec in noting(records):
                sys.stdout.write(json.dumps(rec) + "\n")
                sys.stdout.flush()
        else:
            _live_view(noting(records), tol)
    except KeyboardInterrupt:
        pass
    if failed:
        click.echo(f"Error: {source}: {failed[-1].get('error')}", err=True)
        sys.exit(EXIT_FAILED)


def _live_view(records: Iterator[dict[str, Any]], tol: Tolerance) -> None:
    from rich.console import Group  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415
    from rich.panel import Panel  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    history: list[str] = []
    last: dict[str, Any] = {}
    state = "in sync"
    with Live(Text("waiting for the first window..."), refresh_per_second=4) as live:
        for rec in records:
            last = rec
            if rec["event"] in ("out_of_sync", "back_in_sync"):
                state = "OUT OF SYNC" if rec["event"] == "out_of_sync" else "in sync"
            if rec["event"] != "window":
                if rec["event"] in ("reconnecting", "error"):
                    live.console.print(f"{rec['event']}: {rec.get('error')}")
                continue
            off = rec["offset_ms"]
            mark = "?" if off is None else ("o" if tol.contains(off) else "X")
            history = (history + [mark])[-60:]
            line = (
                f"stream {rec['stream_start_s']:.1f}-{rec['stream_end_s']:.1f} s   offset "
                + ("--" if off is None else f"{off:+.0f} ms ({rec['offset_frames']:+.1f} fr)")
                + f"   confidence {rec['confidence'] or 0:.2f}   {rec['status']}"
                + (f" ({rec['reason']})" if rec["reason"] else "")
            )
            band = f"tolerance: audio {tol.early_ms:.0f} ms early .. {tol.late_ms:.0f} ms late"
            drift = rec.get("drift")
            if drift:
                band += (
                    f"   drift {drift['ms_per_min']:+.0f} ms per minute"
                    f" (last {drift['over_s']:.0f} s)"
                )
            live.update(
                Panel(
                    Group(
                        Text(line),
                        Text(band),
                        Text("history " + "".join(history)),
                        Text(
                            f"alarm: {state}", style="bold red" if state != "in sync" else "green"
                        ),
                    ),
                    title="fcnsync monitor",
                )
            )
    if last.get("event") == "end":
        print(
            f"{last['windows']} windows ({last['ok']} ok, {last['undetermined']} undetermined), "
            f"{last['alarms']} alarms, median offset {last['median_offset_ms']} ms"
        )


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="The corrected file (one input)."
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    help="Folder for the corrected files (same names), for several inputs.",
)
@click.option(
    "--offset-ms",
    type=float,
    default=None,
    help="Apply this known offset (positive: the audio leads) instead of measuring.",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0, 1),
    default=0.9,
    show_default=True,
    help="Refuse to fix files (or, for a drift or steps, segments) measured with less confidence.",
)
@click.option(
    "--reencode-audio",
    is_flag=True,
    help="Move the audio samples and re-encode them, instead of its timestamps.",
)
@click.option("--weights", type=click.Path(dir_okay=False))
@click.option("--calibration", type=click.Path(dir_okay=False))
def fix(
    inputs: tuple[str, ...],
    output: str | None,
    out_dir: str | None,
    offset_ms: float | None,
    min_confidence: float,
    reencode_audio: bool,
    weights: str | None,
    calibration: str | None,
) -> None:
    """Correct the lip-sync of INPUTS: measure, move the audio, measure again.

    The video is copied, never re-encoded. An offset that drifts is undone by resampling the
    audio, one that steps by moving each segment by its own offset. Each file gives a JSON line
    with the correction and the residual offset of the output. Exit code 1 when any file was
    not fixed."""
    import json  # noqa: PLC0415

    from .errors import FcnsyncError  # noqa: PLC0415
    from .fix import fix_file  # noqa: PLC0415

    scan = _scan(inputs)
    paths = scan.paths
    if bool(output) == bool(out_dir) or (output and len(paths) != 1):
        _fail("give -o OUTPUT for one input, or --out-dir DIR", EXIT_USAGE)
    if out_dir:
        _make_dir(out_dir)
    model, cal = _load(weights, calibration)
    failed = 0
    for path in paths:
        dst = output or os.path.join(out_dir or ".", os.path.basename(path))
        try:
            res = fix_file(path, dst, model, cal, offset_ms, min_confidence, reencode_audio)
            click.echo(json.dumps(res.to_dict()))
        except FcnsyncError as exc:
            failed += 1
            click.echo(f"Error: {path}: {exc}", err=True)
            click.echo(json.dumps({"path": path, "output": None, "error": str(exc)}))
    sys.exit(EXIT_FAILED if failed or scan.empty else EXIT_OK)


@main.command()
@click.argument("results_file", type=click.Path(exists=True))
@click.option(
    "-o",
    "--output",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The HTML page to write.",
)
@click.option(
    "--max-plots",
    type=click.IntRange(0),
    default=20,
    show_default=True,
    help="Evidence plots for this many of the worst files.",
)
def report(results_file: str, output: str, max_plots: int) -> None:
    """Write one self-contained HTML page for RESULTS_FILE (detect's jsonl, json or csv;
    run detect with --evidence for the plots): counts, offset histogram, worst files first,
    a table that sorts."""
    from .report import write_report  # noqa: PLC0415

    try:
        path = write_report(_records(results_file), output, max_plots)
    except OSError as exc:
        _fail_to_write(output, exc)
    click.echo(f"wrote {path}", err=True)


@main.command("app")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to serve on; 0.0.0.0 lets other machines reach the page.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@click.option(
    "--max-upload-mb",
    type=click.IntRange(1),
    default=500,
    show_default=True,
    help="Largest file the page accepts.",
)
@click.option("--weights", type=click.Path(dir_okay=False))
@click.option("--calibration", type=click.Path(dir_okay=False))
def app_cmd(
    host: str, port: int, max_upload_mb: int, weights: str | None, calibration: str | None
) -> None:
    """Serve a web page at http://HOST:PORT: upload a video (or give an HLS URL), see the
    verdict, the face tracks, the evidence plots and the JSON record, and get a corrected file.
    Opens no browser by itself; Ctrl-C stops it. Needs: pip install "fcnsync[app]"."""
    from .app import Engine, start  # noqa: PLC0415
    from .errors import FcnsyncError  # noqa: PLC0415

    model, cal = _load(weights, calibration)
    try:
        start(Engine(model, cal), host, port, max_upload_mb)
    except FcnsyncError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


def _records(results_file: str) -> list[dict[str, Any]]:
    from .batch import detect_records  # noqa: PLC0415
    from .errors import FcnsyncError  # noqa: PLC0415

    try:
        return detect_records(results_file)
    except FcnsyncError as exc:
        _fail(str(exc), EXIT_USAGE)
        return []


def _load(weights: str | None, calibration: str | None):  # type: ignore[no-untyped-def]
    from .calibration import load_calibration  # noqa: PLC0415
    from .errors import FcnsyncError  # noqa: PLC0415
    from .faces import silence_native_stderr  # noqa: PLC0415
    from .model import load_model  # noqa: PLC0415

    silence_native_stderr()
    try:
        return load_model(weights, device="cpu"), load_calibration(calibration)
    except FcnsyncError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


def _print_tables(report: dict) -> None:  # type: ignore[type-arg]
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    console = Console(stderr=False)
    for truth, rows in report["accuracy"].items():
        ctxs = sorted(
            {k for r in rows.values() for k in r},
            key=lambda k: (k == "ctxclip", int(k[3:]) if k[3:].isdigit() else 0),
        )
        table = Table(title=f"accuracy within +-1 frame ({truth} truth)")
        table.add_column("method/group")
        for k in ctxs:
            table.add_column(
                k.replace("ctx", "") + ("" if k == "ctxclip" else " fr"), justify="right"
            )
        for name, row in sorted(rows.items()):
            table.add_row(name, *[f"{100 * row[k]:.1f}%" if k in row else "" for k in ctxs])
        console.print(table)
    cal = report["calibration"]
    console.print(
        f"calibration: ECE {cal['ece']:.3f} on {cal['trials']} trials "
        f"(cross-validated refit: {cal['cross_validated_ece']:.3f})"
    )


@main.command("eval")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--weights", type=click.Path(dir_okay=False), help="Checkpoint (default: shipped).")
@click.option("--calibration", type=click.Path(dir_okay=False), help="Calibration file.")
@click.option(
    "--cache",
    "cache_dir",
    default=".fcnsync-cache",
    show_default=True,
    help="Where extracted features are cached.",
)
@click.option(
    "--out",
    "out_dir",
    default="eval",
    show_default=True,
    help="Folder for report.json and reliability.png.",
)
@click.option(
    "--fit-calibration",
    "fit_to",
    type=click.Path(dir_okay=False),
    help="Fit a calibration on this data, save it here and report with it.",
)
def eval_cmd(
    data_dir: str,
    weights: str | None,
    calibration: str | None,
    cache_dir: str,
    out_dir: str,
    fit_to: str | None = None,
) -> None:
    """Evaluate on DATA_DIR (clips with a manifest.tsv): injected offsets, context windows of
    5-15 frames and whole clips, the classical baseline, and the calibration's ECE."""
    from .errors import FcnsyncError  # noqa: PLC0415
    from .evaluate import run_evaluation  # noqa: PLC0415

    model, cal = _load(weights, calibration)
    cache = os.path.join(cache_dir, os.path.basename(os.path.abspath(data_dir)))
    try:
        report = run_evaluation(data_dir, model, cal, cache, out_dir, fit_to=fit_to)
    except FcnsyncError as exc:
        _fail(str(exc), EXIT_FAILED)
        return
    _print_tables(report)
    click.echo(f"wrote {out_dir}/report.json and {out_dir}/reliability.png", err=True)


@main.command()
@click.argument("clips", nargs=-1, required=True)
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False),
    help="CSV with columns path,offset_frames: the clips' true offsets.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Calibration file to write (use it with detect --calibration).",
)
@click.option("--weights", type=click.Path(dir_okay=False), help="Checkpoint (default: shipped).")
@click.option(
    "--calibration",
    type=click.Path(dir_okay=False),
    help="The calibration to compare against (default: shipped).",
)
def calibrate(
    clips: tuple[str, ...],
    labels: str | None,
    output: str,
    weights: str | None,
    calibration: str | None,
) -> None:
    """Fit a calibration for your own material from CLIPS (files or folders).

    Each clip is shifted by the tool itself (-12..12 frames). With --labels the CSV gives each
    clip's true offset; without, each clip's own offset is estimated from its shifted copies,
    so the fit learns how far the evidence can be trusted on this material."""
    import csv  # noqa: PLC0415

    from .batch import expand_inputs  # noqa: PLC0415
    from .dataset import tracks_from_extracted  # noqa: PLC0415
    from .errors import FcnsyncError  # noqa: PLC0415
    from .evaluate import calibrate_clips  # noqa: PLC0415
    from .pipeline import extract  # noqa: PLC0415
    from .trials import CONTEXT_PAD  # noqa: PLC0415

    model, cal = _load(weights, calibration)
    truth: dict[str, float] = {}
    if labels:
        with open(labels, newline="") as fh:
            for row in csv.DictReader(fh):
                try:
                    truth[os.path.basename(row["path"])] = float(row["offset_frames"])
                except (KeyError, ValueError):
                    _fail(f"{labels}: needs columns path,offset_frames with numbers", EXIT_USAGE)
    tracks = []
    for path in expand_inputs(clips):
        try:
            ex = extract(path)
        except FcnsyncError as exc:
            click.echo(f"Error: {path}: {exc}", err=True)
            continue
        for tr in tracks_from_extracted(ex, pad=15 + CONTEXT_PAD + 12):
            if labels:
                if tr.name not in truth:
                    click.echo(f"Error: {path}: not in {labels}", err=True)
                    continue
                tr.truth_frames = truth[tr.name]
            tracks.append(tr)
    if len(tracks) < 2:
        _fail("need at least 2 clips with a face and speech to calibrate")
    try:
        new, figures = calibrate_clips(tracks, model, cal, labelled=bool(labels))
    except FcnsyncError as exc:
        _fail(str(exc))
        return
    new.save(output)
    click.echo(
        f"{len(tracks)} clips, {int(figures['trials'])} trials, accuracy "
        f"{100 * figures['accuracy']:.1f}%: ECE before {figures['ece_before']:.3f}, after "
        f"{figures['ece_after']:.3f} (cross-validated {figures['ece_after_cross_validated']:.3f})"
    )
    click.echo(f"wrote {output}; use it with: fcnsync detect --calibration {output}", err=True)


@main.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    "out_dir",
    default="runs/train",
    show_default=True,
    help="Run folder: checkpoints, log.jsonl, state for resuming.",
)
@click.option("--cache", "cache_dir", default=".fcnsync-cache", show_default=True)
@click.option("--steps", type=click.IntRange(1), default=None, help="Training steps.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True)
@click.option(
    "--members",
    type=click.IntRange(1),
    default=None,
    help="Networks trained with seeds SEED, SEED+1, ... and joined into one ensemble "
    "(--out/ensemble.pt); 1 trains a single network. Default: as many as the shipped weights.",
)
@click.option(
    "--screen-readings",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="JSON of each training clip's offset (frames, audio leads positive) read by another "
    "model; screens the labels instead of a first model trained for the purpose.",
)
@click.option(
    "--realign-beyond",
    type=click.FloatRange(0),
    default=None,
    help="Clips read further off than this many frames (and within 4) are trained with their "
    "audio moved by the reading; 0 realigns every clip. Default: 1.5.",
)
def train(
    data_dir: str,
    out_dir: str,
    cache_dir: str,
    steps: int | None,
    seed: int,
    threads: int,
    members: int | None,
    screen_readings: str | None,
    realign_beyond: float | None,
) -> None:
    """Train the network on DATA_DIR (a folder of in-sync talking clips, with or without a
    manifest.tsv). Resumes where an interrupted run in --out stopped."""
    from .dataset import prepare_tracks  # noqa: PLC0415
    from .errors import FcnsyncError  # noqa: PLC0415
    from .faces import silence_native_stderr  # noqa: PLC0415
    from .train import TrainConfig, train_ensemble  # noqa: PLC0415

    silence_native_stderr()
    cfg = TrainConfig(seed=seed, threads=threads)
    if members:
        cfg.members = members
    if steps:
        cfg.steps = steps
    if screen_readings:
        cfg.screen_readings = screen_readings
    if realign_beyond is not None:
        cfg.screen_max_offset = realign_beyond
    cache = os.path.join(cache_dir, os.path.basename(os.path.abspath(data_dir)))
    tracks = prepare_tracks(data_dir, cache, pad=40)
    if not tracks:
        _fail(f"no usable clips (a face and speech) in {data_dir}")
    click.echo(f"{len(tracks)} clips of {len({t.person for t in tracks})} people", err=True)
    try:
        last = train_ensemble(tracks, out_dir, cfg)
    except FcnsyncError as exc:
        _fail(str(exc))
    click.echo(f"wrote {last}", err=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
