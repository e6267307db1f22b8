"""Many files: expanding inputs (files, folders, paths on stdin), worker processes that each load
the model once, per-file isolation (a crash or a hang in one file is that file's error record),
ordering, resuming from an earlier output file, and progress."""

from __future__ import annotations

import csv
import fnmatch
import json
import multiprocessing as mp
import multiprocessing.connection
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .errors import FcnsyncError

# what a folder is searched for, the commonest first (error messages list them in this order)
MEDIA_SUFFIX_ORDER = (
    ".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".flv", ".ts", ".mts",
    ".m2ts", ".3gp", ".wmv", ".ogv", ".mxf", ".dv",
)  # fmt: skip
MEDIA_SUFFIXES = frozenset(MEDIA_SUFFIX_ORDER)
LISTING_SUFFIX = ".txt"  # an input file with this suffix lists paths, one a line
T = TypeVar("T")
FILE_TIMEOUT_S = 1800.0  # a file that takes longer than this is stopped and reported


def _listed_paths(data: bytes, null_separated: bool) -> Iterator[str]:
    parts = data.split(b"\0") if null_separated else data.splitlines()
    for raw in parts:
        raw = raw if null_separated else raw.strip()
        if raw:
            yield os.fsdecode(raw)


def _expand_one(item: str, glob: str | None, null_separated: bool) -> Iterator[tuple[str, bool]]:
    """The paths one input stands for, each with whether it is to be measured: False for a
    file in a folder passed over because its suffix is not a media one."""
    if item == "-":
        for path in _listed_paths(sys.stdin.buffer.read(), null_separated):
            yield path, True
        return
    p = Path(item)
    if p.suffix.lower() == LISTING_SUFFIX and p.is_file():
        for path in _listed_paths(p.read_bytes(), null_separated):
            yield path, True
        return
    if not p.is_dir():
        yield item, True
        return
    for root, dirs, files in os.walk(p):
        dirs.sort()
        for name in sorted(files):
            if Path(name).suffix.lower() not in MEDIA_SUFFIXES:
                yield os.path.join(root, name), False
            elif not glob or fnmatch.fnmatch(name, glob):
                yield os.path.join(root, name), True


def expand_inputs(
    inputs: Iterable[str], glob: str | None = None, null_separated: bool = False
) -> Iterator[str]:
    """Files as given; folders walked recursively for media files (by suffix), sorted;
    ``-`` reads paths from stdin and a ``.txt`` file is read as a listing (one path per line,
    or NUL-separated). ``glob`` narrows what folders yield (matched against the file name)."""
    for item in inputs:
        yield from (path for path, measured in _expand_one(item, glob, null_separated) if measured)


@dataclass
class InputScan:
    """What ``scan_inputs`` found: the paths to measure, in order; how many files in folders
    were passed over for not having a media suffix; and the inputs (folders, listings, ``-``)
    that gave no path at all, each with a one-line reason."""

    paths: list[str] = field(default_factory=list)
    non_media: int = 0
    empty: list[tuple[str, str]] = field(default_factory=list)


def scan_inputs(
    inputs: Iterable[str], glob: str | None = None, null_separated: bool = False
) -> InputScan:
    """``expand_inputs``, all at once, keeping count of what was passed over, so that a scan
    that found nothing can say so instead of looking like one that found everything fine."""
    scan = InputScan()
    for item in inputs:
        before = len(scan.paths)
        for path, measured in _expand_one(item, glob, null_separated):
            if measured:
                scan.paths.append(path)
            else:
                scan.non_media += 1
        if len(scan.paths) == before:
            scan.empty.append((item, _nothing_found(item, glob)))
    return scan


def _nothing_found(item: str, glob: str | None) -> str:
    if item == "-":
        return "no paths on stdin"
    if not Path(item).is_dir():
        return "lists no paths"
    looked_for = ", ".join(MEDIA_SUFFIX_ORDER)
    matching = f" matching {glob}" if glob else ""
    return f"no media files{matching} (looked for {looked_for})"


def read_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Records of a detect output file: jsonl, a json array, csv, or a folder of Parquet parts
    (``--format parquet``; needs pyarrow)."""
    if Path(path).is_dir():
        try:
            import pyarrow.parquet as pq  # noqa: PLC0415 - only with the ray extra
        except ImportError as exc:
            raise FcnsyncError(
                f"{path} is a folder: reading Parquet needs pip install 'fcnsync[ray]'"
            ) from exc
        for part in sorted(Path(path).glob("part-*.parquet")):
            yield from pq.read_table(part).to_pylist()
        return
    text = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
    if text.startswith("path,"):
        yield from csv.DictReader(text.splitlines())
        return
    if text.lstrip().startswith("["):
        try:
            yield from json.loads(text)
            return
        except ValueError:
            pass
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            yield rec


def detect_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """``read_records``, all at once, for a command that needs detect's records (``select``,
    ``report``). Raises ``FcnsyncError`` when the file holds none though it is not empty (a
    video given by mistake) or a record has no ``path`` (another program's JSON)."""
    records = list(read_records(path))
    empty = Path(path).is_file() and Path(path).stat().st_size == 0
    if (not records and not empty) or any("path" not in rec for rec in records):
        raise FcnsyncError(f"{path}: not detect's output (jsonl, json, csv or Parquet)")
    return records


def check_csv_columns(path: str | os.PathLike[str], columns: Iterable[str]) -> None:
    """Before appending to the CSV ``path`` (``--resume``): its header must be ``columns``, or
    the new rows would sit under the wrong headings. Raises ``FcnsyncError``."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        header = next(csv.reader(fh), [])
    if header != list(columns):
        raise FcnsyncError(
            f"cannot resume {path}: its columns are not this version's detect CSV; "
            "write to a new file"
        )


def done_paths(output: str | os.PathLike[str]) -> set[str]:
    """Paths already recorded in an earlier output (jsonl, json lines, csv or a Parquet
    folder), for ``--resume``. A last line cut short by a killed run is removed from the file
    first."""
    p = Path(output)
    if p.is_dir():  # Parquet parts: only whole ones have their final name
        return {str(rec["path"]) for rec in read_records(p) if rec.get("path")}
    if not p.exists() or p.stat().st_size == 0:
        return set()
    data = p.read_bytes()
    if not data.endswith(b"\n"):  # a half-written last line: drop it, it will be redone
        data = data[: data.rfind(b"\n") + 1]
        with open(p, "r+b") as fh:
            fh.truncate(len(data))
    return {str(rec["path"]) for rec in read_records(p) if rec.get("path")}


@dataclass
class WorkerSettings:
    """What each worker needs to build its own model and run ``detect``."""

    weights: str | None
    calibration: str | None
    device: str | None
    max_lag: int
    batch_size: int


def guarded(path: str, work: Callable[[], T]) -> T | Any:
    """``work()`` for the file ``path``, or that file's error ``Result`` if it raises: a
    one-line message for an ``FcnsyncError``, "internal error: ..." for anything else."""
    from .pipeline import error_result  # noqa: PLC0415

    t0 = time.perf_counter()
    try:
        return work()
    except FcnsyncError as exc:
        return error_result(path, str(exc), round(time.perf_counter() - t0, 3))
    except Exception as exc:  # one bad file never stops a batch
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return error_result(path, f"internal error: {first}")


def measure_file(
    path: str, model: Any, calibration: Any, max_lag: int, batch_size: int, tracker: Any = None
) -> Any:
    """``detect`` on one file of a batch: whatever goes wrong becomes that file's error record,
    never an exception that would stop the batch. ``tracker``: as for ``detect``."""
    from .pipeline import detect  # noqa: PLC0415

    return guarded(
        path,
        lambda: detect(
            path,
            model=model,
            calibration=calibration,
            max_lag=max_lag,
            batch_size=batch_size,
            tracker=tracker,
        ),
    )


def _worker(settings: WorkerSettings, inbox: Any, results: Any) -> None:
    """A worker process: load the model once, then measure the files it is given."""
    import torch  # noqa: PLC0415

    from .calibration import load_calibration  # noqa: PLC0415
    from .faces import silence_native_stderr  # noqa: PLC0415
    from .model import load_model  # noqa: PLC0415

    silence_native_stderr()
    torch.set_num_threads(1)
    model = load_model(settings.weights, device=settings.device)
    cal = load_calibration(settings.calibration)
    results.put(("ready", -1, os.getpid()))
    while True:
        task = inbox.get()
        if task is None:
            return
        index, path = task
        rec = measure_file(path, model, cal, settings.max_lag, settings.batch_size)
        results.put(("done", index, rec))


class _Outbox:
    """A worker's own channel back to the parent (one end of a pipe). Workers don't share one
    queue: a worker killed while it held that queue's lock would block all the others."""

    def __init__(self, conn: Any):
        self._conn = conn

    def put(self, item: Any) -> None:
        self._conn.send(item)


class _Worker:
    def __init__(self, ctx: Any, settings: WorkerSettings, target: Any):
        self.inbox = ctx.Queue()
        self.conn, child_end = ctx.Pipe(duplex=False)
        outbox = _Outbox(child_end)
        self.proc = ctx.Process(target=target, args=(settings, self.inbox, outbox), daemon=True)
        self.proc.start()
        child_end.close()  # the child holds its own copy; reads end with EOF when it dies
        self.task: int | None = None  # the index it is working on
        self.since = 0.0
        self.ready = False  # its model is loaded: the per-file clock starts only then

    def give(self, index: int, path: str) -> None:
        self.task, self.since = index, time.monotonic()
        self.inbox.put((index, path))

    def close(self) -> None:
        self.conn.close()


def run_parallel(
    paths: list[str],
    settings: WorkerSettings,
    jobs: int,
    on_result: Callable[[int, Any], None],
    timeout_s: float = FILE_TIMEOUT_S,
    worker: Callable[[WorkerSettings, Any, Any], None] = _worker,
) -> None:
    """Measure ``paths`` in ``jobs`` worker processes, each given one file at a time;
    ``on_result(index, Result)`` is called in completion order. A worker that dies (a native
    crash) or exceeds ``timeout_s`` on a file yields an error record for that file and is
    replaced; the other files go on."""
    from .pipeline import error_result  # noqa: PLC0415

    ctx = mp.get_context("spawn")
    workers = [_Worker(ctx, settings, worker) for _ in range(min(jobs, len(paths)))]
    deaths_idle = 0
    todo = list(range(len(paths)))[::-1]
    remaining = len(paths)
    while remaining:
        for w in workers:
            if w.ready and w.task is None and todo and w.proc.is_alive():
                i = todo.pop()
                w.give(i, paths[i])
        for conn in mp.connection.wait([w.conn for w in workers], timeout=0.5):
            w = next(w for w in workers if w.conn is conn)
            try:
                kind, index, payload = w.conn.recv()
            except (EOFError, OSError):
                continue  # it died: dealt with below
            if kind == "ready":
                w.ready = True
            elif kind == "done":
                w.task = None
                on_result(index, payload)
                remaining -= 1
        now = time.monotonic()
        for k, w in enumerate(workers):
            dead = not w.proc.is_alive()
            too_long = not dead and w.task is not None and now - w.since > timeout_s
            if not dead and not too_long:
                continue
            if too_long:
                w.proc.kill()
            w.proc.join(timeout=5)
            if w.task is not None:
                why = (
                    f"timed out after {timeout_s:.0f} s"
                    if too_long
                    else f"the decoder crashed (exit code {w.proc.exitcode})"
                )
                on_result(w.task, error_result(paths[w.task], why))
                remaining -= 1
            else:
                deaths_idle += 1
                if deaths_idle > 3:
                    raise FcnsyncError("worker processes die before their first file")
            w.close()
            workers[k] = _Worker(ctx, settings, worker)
    for w in workers:
        w.inbox.put(None)
    for w in workers:
        w.proc.join(timeout=10)
        if w.proc.is_alive():
            w.proc.kill()
        w.close()


class Reorder:
    """Hands results on in input order (``--ordered``), holding the ones that come early."""

    def __init__(self, emit: Callable[[Any], None]):
        self.emit = emit
        self.next = 0
        self.waiting: dict[int, Any] = {}

    def __call__(self, index: int, result: Any) -> None:
        self.waiting[index] = result
        while self.next in self.waiting:
            self.emit(self.waiting.pop(self.next))
            self.next += 1


def summary_text(results: list[Any], non_media: int = 0) -> str:
    """Counts per status and the spread of the offsets found, for stderr at the end; how many
    files' offsets change within them (drift or steps), and how many files in the folders
    were passed over as not media (``non_media``), when any."""
    from collections import Counter  # noqa: PLC0415

    counts = Counter(r.status for r in results)
    parts = [f"{counts.get(s, 0)} {s}" for s in ("ok", "undetermined", "error")]
    line = f"{len(results)} files: " + ", ".join(parts)
    offs = sorted(abs(r.offset_frames) for r in results if r.offset_frames is not None)
    if offs:
        mid = len(offs) // 2
        median = offs[mid] if len(offs) % 2 else (offs[mid - 1] + offs[mid]) / 2
        within1 = sum(o <= 1 for o in offs)
        line += (
            f"; |offset| <= 1 frame: {within1}, 1-3: {sum(1 < o <= 3 for o in offs)}, "
            f"> 3: {sum(o > 3 for o in offs)} (median {median:.1f} frames)"
        )
    from .profile import VARYING  # noqa: PLC0415

    varying = sum(getattr(r, "sync_profile", None) in VARYING for r in results)
    if varying:
        line += f"; offset changes within {varying} (drift or steps: see their verdicts)"
    if non_media:
        line += f"; {non_media} non-media {'file' if non_media == 1 else 'files'} skipped"
    return line
