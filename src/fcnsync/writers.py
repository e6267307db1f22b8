"""Writers: small classes behind ``get_writer(format)``. Each record is written (and flushed)
as soon as its file is done, so a killed run keeps every finished result."""

from __future__ import annotations

import csv
import json
import os
from typing import IO

from rich.console import Console
from rich.table import Table

from .pipeline import Result

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
)
FORMATS = ("table", "json", "jsonl", "csv")


class Writer:
    """Base writer: ``write`` one result at a time, then ``finish`` once."""

    def __init__(self, stream: IO[str], evidence: bool = False, header: bool = True):
        self.stream = stream
        self.evidence = evidence

    def write(self, result: Result) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        self.stream.flush()


class JsonlWriter(Writer):
    def write(self, result: Result) -> None:
        self.stream.write(json.dumps(result.to_dict(self.evidence)) + "\n")
        self.stream.flush()


class JsonWriter(Writer):
    """One JSON array, its elements streamed as they come."""

    def __init__(self, stream: IO[str], evidence: bool = False, header: bool = True):
        super().__init__(stream, evidence)
        self._count = 0

    def write(self, result: Result) -> None:
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
                r.error or r.reason or "",
            )
        Console(file=self.stream, soft_wrap=False).print(table)
        self.stream.flush()


_WRITERS: dict[str, type[Writer]] = {
    "table": TableWriter,
    "json": JsonWriter,
    "jsonl": JsonlWriter,
    "csv": CsvWriter,
}


def get_writer(fmt: str, stream: IO[str], evidence: bool = False, header: bool = True) -> Writer:
    """The writer for ``fmt`` (one of ``FORMATS``) on ``stream``; ``header``: False when
    appending to an earlier run's output."""
    return _WRITERS[fmt](stream, evidence, header)
