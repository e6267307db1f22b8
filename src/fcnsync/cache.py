"""Extract and cache the model's raw inputs (lip landmarks, log-mel) of a folder of clips once,
so training and evaluation never decode or track a clip twice."""

from __future__ import annotations

import csv
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .batch import expand_inputs
from .errors import FcnsyncError
from .pipeline import extract, save_extracted

CACHE_FORMAT = 3  # 2: tracks carry the mouth's appearance; 3: and its patch


@dataclass(frozen=True)
class Clip:
    """One clip of a data folder, with what its manifest says (empty strings where unknown)."""

    path: Path
    split: str = ""
    group: str = ""
    person: str = ""
    kind: str = "real"
    inherent_offset_frames: str = ""


def read_clips(root: str | os.PathLike[str]) -> list[Clip]:
    """Clips under ``root``: from its ``manifest.tsv`` when there is one (columns file, split,
    group, person, kind, inherent_offset_frames), else every media file below it, each its own
    person."""
    root = Path(root)
    manifest = root / "manifest.tsv"
    if not manifest.exists() and (root.parent / "manifest.tsv").exists():
        manifest = root.parent / "manifest.tsv"
    clips: list[Clip] = []
    if manifest.exists():
        base = manifest.parent
        with open(manifest, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                path = base / row["file"]
                if root.resolve() not in path.resolve().parents:
                    continue
                clips.append(
                    Clip(
                        path=path,
                        split=row.get("split", ""),
                        group=row.get("group", ""),
                        person=row.get("person", "") or path.stem,
                        kind=row.get("kind", "real") or "real",
                        inherent_offset_frames=row.get("inherent_offset_frames", "") or "",
                    )
                )
        return clips
    for name in expand_inputs([str(root)]):
        path = Path(name)
        clips.append(Clip(path=path, person=path.stem))
    return clips


def cache_path(cache_dir: Path, clip_path: Path) -> Path:
    """Where a clip's extraction is cached; a cache made by another ``CACHE_FORMAT`` is not
    found, so it is made again."""
    key = hashlib.sha1(f"{clip_path.resolve()}|{CACHE_FORMAT}".encode()).hexdigest()[:10]
    return cache_dir / f"{clip_path.stem}.{key}.npz"


def build_cache(
    clips: list[Clip], cache_dir: str | os.PathLike[str], shard: tuple[int, int] = (0, 1)
) -> None:
    """Extract every clip not cached yet (resumable). ``shard`` (i, n) takes every n-th clip."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for i, clip in enumerate(clips):
        if i % shard[1] != shard[0]:
            continue
        out = cache_path(cache_dir, clip.path)
        if out.exists():
            continue
        try:
            ex = extract(clip.path)
        except FcnsyncError as exc:
            print(f"skip {clip.path}: {exc}", file=sys.stderr)
            continue
        tmp = out.with_suffix(".tmp.npz")
        save_extracted(ex, tmp)
        os.replace(tmp, out)
        print(
            f"cached {clip.path} ({ex.video_frames} frames, {len(ex.tracks)} tracks, "
            f"{ex.timings_s['extract']:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
