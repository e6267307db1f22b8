"""Many files: expanding inputs (files, folders, paths on stdin) and running them in turn."""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

MEDIA_SUFFIXES = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".mpg",
        ".mpeg",
        ".flv",
        ".ts",
        ".mts",
        ".m2ts",
        ".3gp",
        ".wmv",
        ".ogv",
        ".mxf",
        ".dv",
    }
)


def _stdin_paths(null_separated: bool) -> Iterator[str]:
    data = sys.stdin.buffer.read()
    parts = data.split(b"\0") if null_separated else data.splitlines()
    for raw in parts:
        raw = raw if null_separated else raw.strip()
        if raw:
            yield os.fsdecode(raw)


def expand_inputs(
    inputs: Iterable[str], glob: str | None = None, null_separated: bool = False
) -> Iterator[str]:
    """Files as given; folders walked recursively for media files (by suffix), sorted;
    ``-`` reads paths from stdin (one per line, or NUL-separated). ``glob`` narrows what
    folders yield (matched against the file name)."""
    for item in inputs:
        if item == "-":
            yield from _stdin_paths(null_separated)
            continue
        p = Path(item)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() not in MEDIA_SUFFIXES:
                        continue
                    if glob and not fnmatch.fnmatch(name, glob):
                        continue
                    yield os.path.join(root, name)
        else:
            yield item
