"""The command line: parse, call the library, choose a writer, map errors to exit codes."""

from __future__ import annotations

import os
import sys
from typing import IO

import click

from . import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _fail(message: str, code: int = EXIT_FAILED) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fcnsync")
def main() -> None:
    """Measure how far the audio of talking-face video is out of sync with the lips."""


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["auto", "table", "json", "jsonl", "csv"]),
              default="auto", show_default=True,
              help="Output format; auto: table on a terminal, jsonl otherwise.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write records to this file instead of stdout.")
@click.option("--max-lag", type=click.IntRange(1, 100), default=15, show_default=True,
              help="Search offsets up to this many frames each way.")
@click.option("--calibration", type=click.Path(dir_okay=False),
              help="A calibration file from 'fcnsync calibrate' (default: the shipped one).")
@click.option("--weights", type=click.Path(dir_okay=False),
              help="A checkpoint to use instead of the shipped weights.")
@click.option("--device", default=None, help="torch device (default: cuda if present, else cpu).")
@click.option("--batch-size", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="Chunks scored per forward pass (results do not depend on it).")
@click.option("--glob", "glob_", default=None, help="Only files whose name matches, in folders.")
@click.option("-0", "--null", "null_sep", is_flag=True,
              help="Paths on stdin are NUL-separated (find -print0).")
@click.option("--evidence", is_flag=True,
              help="Add each track's lag curve and per-second series to json/jsonl records.")
@click.option("-q", "--quiet", is_flag=True, help="No per-file error lines on stderr.")
def detect(
    inputs: tuple[str, ...], fmt: str, output: str | None, max_lag: int,
    calibration: str | None, weights: str | None, device: str | None, batch_size: int,
    glob_: str | None, null_sep: bool, evidence: bool, quiet: bool,
) -> None:
    """Measure the lip-sync offset of INPUTS: files, folders, or - for paths on stdin.

    Positive offsets mean the audio leads the video. Exit code 0 when every file was
    measured (ok or undetermined), 1 when any file failed, 2 for a usage error."""
    from .batch import expand_inputs  # noqa: PLC0415 - keep --help fast
    from .calibration import load_calibration  # noqa: PLC0415
    from .errors import FcnsyncError  # noqa: PLC0415
    from .model import load_model  # noqa: PLC0415
    from .pipeline import detect as detect_one  # noqa: PLC0415
    from .pipeline import error_result  # noqa: PLC0415
    from .writers import get_writer  # noqa: PLC0415

    from .faces import silence_native_stderr  # noqa: PLC0415

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
    stream: IO[str]
    if output:
        try:
            stream = open(output, "w", encoding="utf-8", newline="")
        except OSError as exc:
            _fail(f"cannot write {output}: {exc.strerror}", EXIT_USAGE)
            return
    else:
        stream = sys.stdout
    if fmt == "auto":
        fmt = "table" if stream.isatty() else "jsonl"
    writer = get_writer(fmt, stream, evidence=evidence)
    failed = 0
    try:
        for path in expand_inputs(inputs, glob_, null_sep):
            try:
                result = detect_one(path, model=model, calibration=cal, max_lag=max_lag,
                                    batch_size=batch_size)
            except Exception as exc:  # one bad file never stops a batch
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                result = error_result(path, f"internal error: {first}")
            if result.status == "error":
                failed += 1
                if not quiet:
                    click.echo(f"Error: {path}: {result.error}", err=True)
            writer.write(result)
    except KeyboardInterrupt:
        writer.finish()
        click.echo("Interrupted: finished records were written.", err=True)
        sys.exit(130)
    writer.finish()
    if output:
        stream.close()
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
