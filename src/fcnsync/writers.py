"""Writers: small classes behind ``get_writer(format)``. Each record is written (and flushed)
as soon as its file is done, so a killed run keeps every finished result."""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Sequence
from dataclasses import fields
from typing import IO, Any, Protocol

from rich.console import Console
from rich.table import Table

from .pipeline import EVIDENCE_KEYS, Result, TrackResult
from .profile import Segment

CSV_FIELDS = (
    "path",
    "status",
    "offset_ms",
    "offset_frames",
    "fps",
    "confidence",
    "verdict",
    "reason",
    "error",
    "n_tracks",
    "duration_s",
    "elapsed_s",
    "sync_profile",
    "drift_ms_per_min",
    "segments",
)
FORMATS = ("table", "json", "jsonl", "csv", "parquet")
EVIDENCE_FIELDS = EVIDENCE_KEYS  # in a record only with ``evidence``
PARQUET_PART_ROWS = 64  # records per Parquet part file (a killed run redoes at most these)
PARQUET_PART_S = 30.0  # ... or what came in this many seconds


SCORE_CSV_FIELDS = (
    "path",
    "status",
    "offset_ms",
    "offset_frames",
    "confidence",
    "sync_strength",
    "sync_score",
    "speech_frames",
    "fps",
    "duration_s",
    "reason",
    "error",
)
TABLE_FORMATS = ("table", "markdown", "csv", "latex")  # tables of folders (``fcnsync score``)


class Record(Protocol):
    """What a record writer writes: a ``Result`` or a ``score.Score``."""

    path: str

    def to_dict(self, evidence: bool = False) -> dict[str, object]: ...


class Writer:
    """Base writer: ``write`` one result at a time, then ``finish`` once."""

    def __init__(self, stream: IO[str], evidence: bool = False, header: bool = True):
        self.stream = stream
        self.evidence = evidence

    def write(self, result: Any) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        self.stream.flush()


class JsonlWriter(Writer):
    def write(self, result: Record) -> None:
        self.stream.write(json.dumps(result.to_dict(self.evidence)) + "\n")
        self.stream.flush()


class JsonWriter(Writer):
    """One JSON array, its elements streamed as they come."""

    def __init__(self, stream: IO[str], evidence: bool = False, header: bool = True):
        super().__init__(stream, evidence)
        self._count = 0

    def write(self, result: Record) -> None:
        text = json.dumps(result.to_dict(self.evidence), indent=2)
        self.stream.write(("[\n" if self._count == 0 else ",\n") + text)
        self.stream.flush()
        self._count += 1

    def finish(self) -> None:
        self.stream.write("[]\n" if self._count == 0 else "\n]\n")
        self.stream.flush()


def csv_row(result: Result) -> dict[str, object]:
    d = result.to_dict()
    row = {k: d.get(k) for k in CSV_FIELDS if k != "n_tracks"}
    row["n_tracks"] = len(result.tracks)
    if row["segments"] is not None:  # one cell: the segments as compact JSON
        row["segments"] = json.dumps(row["segments"], separators=(",", ":"))
    return {k: ("" if v is None else v) for k, v in row.items()}


class CsvWriter(Writer):
    def __init__(self, stream: IO[str], evidence: bool = False, header: bool = True):
        super().__init__(stream, evidence)
        self._csv = csv.DictWriter(stream, fieldnames=list(CSV_FIELDS), lineterminator="\n")
        if header:  # not when appending to an earlier run's file
            self._csv.writeheader()
        stream.flush()

    def write(self, result: Result) -> None:
        self._csv.writerow(csv_row(result))
        self.stream.flush()


class ScoreCsvWriter(Writer):
    """``score.Score`` records, one CSV row each (``SCORE_CSV_FIELDS``)."""

    def __init__(self, stream: IO[str], evidence: bool = False, header: bool = True):
        super().__init__(stream, evidence)
        self._csv = csv.DictWriter(stream, fieldnames=list(SCORE_CSV_FIELDS), lineterminator="\n")
        if header:
            self._csv.writeheader()
        stream.flush()

    def write(self, result: Record) -> None:
        d = result.to_dict()
        self._csv.writerow({k: ("" if d.get(k) is None else d.get(k)) for k in SCORE_CSV_FIELDS})
        self.stream.flush()


class TableWriter(Writer):
    """A rich table for people, printed when the batch ends."""

    def __init__(self, stream: IO[str], evidence: bool = False, header: bool = True):
        super().__init__(stream, evidence)
        self._rows: list[Result] = []

    def write(self, result: Result) -> None:
        self._rows.append(result)

    def finish(self) -> None:
        table = Table(title=None, show_lines=False)
        for name, justify in (
            ("file", "left"),
            ("status", "left"),
            ("offset ms", "right"),
            ("frames", "right"),
            ("confidence", "right"),
            ("note", "left"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for r in self._rows:
            style = {"ok": "green", "undetermined": "yellow", "error": "red"}.get(r.status, "")
            table.add_row(
                os.path.basename(r.path) or r.path,
                f"[{style}]{r.status}[/]",
                "" if r.offset_ms is None else f"{r.offset_ms:+.0f}",
                "" if r.offset_frames is None else f"{r.offset_frames:+.1f}",
                "" if r.confidence is None else f"{r.confidence:.2f}",
                r.note,
            )
        Console(file=self.stream, soft_wrap=False).print(table)
        self.stream.flush()


def record_schema() -> Any:
    """The Arrow schema of a record (``Result.to_dict()`` without evidence), built from the
    ``Result`` and ``TrackResult`` fields so that the two cannot drift apart. Needs pyarrow."""
    import pyarrow as pa  # noqa: PLC0415 - only with the ray extra

    scalars = {"str": pa.string(), "float": pa.float64(), "int": pa.int64()}

    def arrow_type(hint: str) -> Any:
        hint = hint.removesuffix(" | None")
        if hint == "list[TrackResult]":
            return pa.list_(pa.struct(arrow_fields(TrackResult)))
        if hint == "list[Segment]":
            return pa.list_(pa.struct(arrow_fields(Segment)))
        if hint.startswith("list[") and hint[5:-1] in scalars:
            return pa.list_(scalars[hint[5:-1]])
        return scalars[hint]

    def arrow_fields(cls: type) -> list[Any]:
        return [
            pa.field(f.name, arrow_type(str(f.type)))
            for f in fields(cls)
            if f.name not in EVIDENCE_FIELDS
        ]

    return pa.schema(arrow_fields(Result))


class ParquetWriter:
    """Records as a folder of Parquet part files (``part-NNNNN.parquet``), each written whole
    (under a temporary name, then renamed) every ``PARQUET_PART_ROWS`` records or
    ``PARQUET_PART_S`` seconds: a killed run leaves only complete parts, and ``--resume`` adds
    new parts. Pandas, pyarrow, DuckDB and Ray read the folder as one table. Needs pyarrow."""

    def __init__(self, folder: str | os.PathLike[str], evidence: bool = False):
        import pyarrow.parquet as pq  # noqa: PLC0415 - only with the ray extra

        self._pq = pq
        self.folder = os.fspath(folder)
        os.makedirs(self.folder, exist_ok=True)
        self._schema = record_schema()
        self._rows: list[dict[str, object]] = []
        self._since = time.monotonic()
        taken = [n for n in os.listdir(self.folder) if n.startswith("part-")]
        self._next = 1 + max((int(n[5:10]) for n in taken if n[5:10].isdigit()), default=-1)

    def write(self, result: Result) -> None:
        self._rows.append(result.to_dict())
        if len(self._rows) >= PARQUET_PART_ROWS or time.monotonic() - self._since > PARQUET_PART_S:
            self._flush()

    def _flush(self) -> None:
        self._since = time.monotonic()
        if not self._rows:
            return
        import pyarrow as pa  # noqa: PLC0415

        final = os.path.join(self.folder, f"part-{self._next:05d}.parquet")
        tmp = final + ".tmp"
        self._pq.write_table(pa.Table.from_pylist(self._rows, schema=self._schema), tmp)
        os.replace(tmp, final)
        self._next += 1
        self._rows = []

    def finish(self) -> None:
        self._flush()


_WRITERS: dict[str, type[Writer]] = {
    "table": TableWriter,
    "json": JsonWriter,
    "jsonl": JsonlWriter,
    "csv": CsvWriter,
}


def get_writer(
    fmt: str, stream: IO[str], evidence: bool = False, header: bool = True, records: str = "detect"
) -> Writer:
    """The writer for ``fmt`` (one of ``FORMATS``) on ``stream``; ``header``: False when
    appending to an earlier run's output; ``records``: "detect" (``Result``) or "score"
    (``score.Score``: json, jsonl or csv)."""
    if records == "score":
        return {"csv": ScoreCsvWriter, "json": JsonWriter, "jsonl": JsonlWriter}[fmt](
            stream, evidence, header
        )
    return _WRITERS[fmt](stream, evidence, header)


Cell = str | int | float | None


def cell_text(value: Cell) -> str:
    """A table cell: empty for None, floats with at most 3 decimals (trailing zeros kept off)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


class TableOut:
    """A table of rows (folders, pairs) with named columns, written whole: ``write`` once."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
        raise NotImplementedError


class RichTableOut(TableOut):
    def write(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
        table = Table(title=title)
        for i, name in enumerate(columns):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*(cell_text(v) for v in row))
        Console(file=self.stream, soft_wrap=False).print(table)
        self.stream.flush()


class MarkdownTableOut(TableOut):
    def write(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |\n"

        self.stream.write(f"**{title}**\n\n" if title else "")
        self.stream.write(line(list(columns)))
        self.stream.write("|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|\n")
        for row in rows:
            self.stream.write(line([cell_text(v) for v in row]))
        self.stream.write("\n")
        self.stream.flush()


class CsvTableOut(TableOut):
    def write(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
        out = csv.writer(self.stream, lineterminator="\n")
        out.writerow(columns)
        out.writerows([["" if v is None else v for v in row] for row in rows])
        self.stream.flush()


LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"}


class LatexTableOut(TableOut):
    """A ``tabular`` (booktabs rules) to paste into a paper."""

    def write(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
        def esc(text: str) -> str:
            return "".join(LATEX_SPECIAL.get(c, c) for c in text).replace("±", "$\\pm$")

        def line(cells: Sequence[str]) -> str:
            return " & ".join(esc(c) for c in cells) + " \\\\\n"

        w = self.stream
        if title:
            w.write(f"% {title}\n")
        w.write("\\begin{tabular}{l" + "r" * (len(columns) - 1) + "}\n\\toprule\n")
        w.write(line(list(columns)) + "\\midrule\n")
        for row in rows:
            w.write(line([cell_text(v) for v in row]))
        w.write("\\bottomrule\n\\end{tabular}\n")
        w.flush()


_TABLES: dict[str, type[TableOut]] = {
    "table": RichTableOut,
    "markdown": MarkdownTableOut,
    "csv": CsvTableOut,
    "latex": LatexTableOut,
}


def get_table_writer(fmt: str, stream: IO[str]) -> TableOut:
    """The writer of whole tables (one row per folder) for ``fmt`` (one of ``TABLE_FORMATS``)."""
    return _TABLES[fmt](stream)
