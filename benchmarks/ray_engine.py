"""Throughput of ``--engine ray`` against the local ``--jobs 2`` path, on the same clips and the
same CPUs, and the cost Ray adds: a fixed start-up cost and a marginal cost per file.

    python benchmarks/ray_engine.py [N] [FOLDER]   # default: the first 20 clips of dev

Each engine runs twice, on 2 clips and on N clips; the difference of the two walls over
N - 2 is the marginal wall time per file, so that start-up costs cancel. Also prints the size
of what the decode stage hands to the model stage for one 8-second clip.
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from batch_jobs import DEV, run  # noqa: E402

from fcnsync.batch import expand_inputs  # noqa: E402

EIGHT_SECOND_CLIP = "hdtf_wdaedmarkey_1.mp4"


def _listing(paths: list[str], tmp: str, name: str) -> Path:
    listing = Path(tmp) / name
    listing.write_text("".join(p + "\n" for p in paths))
    return listing


def _handoff_bytes(folder: Path) -> int:
    """Pickled stretches of one 8-second clip: what crosses Ray's object store per file."""
    from fcnsync.faces import FaceTracker
    from fcnsync.pipeline import decode_stretches

    path = str(folder / EIGHT_SECOND_CLIP)
    return len(pickle.dumps(list(decode_stretches(path, FaceTracker()))))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    folder = Path(sys.argv[2]) if len(sys.argv) > 2 else DEV
    paths = list(expand_inputs([str(folder)]))[:n]
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    walls: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ("local", "ray"):
            for count in (2, len(paths)):
                listing = _listing(paths[:count], tmp, f"{engine}{count}.txt")
                wall, recs = run(listing, 2, ("--engine", engine))
                walls[engine, count] = wall
                media = sum(r.get("duration_s") or 0 for r in recs)
                files = len(recs)
                print(
                    f"--engine {engine:5s} -j 2: {files:3d} files, {media:5.0f} s of media in "
                    f"{wall:6.1f} s wall ({files / wall:.2f} files/s, "
                    f"{media / wall:.2f} media-s/s)"
                )
    k = len(paths) - 2
    marginal = {e: (walls[e, len(paths)] - walls[e, 2]) / k for e in ("local", "ray")}
    print(
        f"marginal wall per file on 2 CPUs: local {marginal['local']:.2f} s, "
        f"ray {marginal['ray']:.2f} s; Ray adds {marginal['ray'] - marginal['local']:+.2f} s "
        f"wall = {2 * (marginal['ray'] - marginal['local']):+.2f} CPU-s per file"
    )
    print(
        f"fixed start-up: local {walls['local', 2]:.1f} s and ray {walls['ray', 2]:.1f} s "
        f"for 2 files; Ray adds {walls['ray', 2] - walls['local', 2]:+.1f} s per run"
    )
    print(f"decode -> model hand-off for one 8 s clip: {_handoff_bytes(folder) / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
