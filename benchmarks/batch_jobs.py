"""Throughput of a batch with 1 and with 2 worker processes, in one run, on the same clips.

    python benchmarks/batch_jobs.py [FOLDER]      # default: ../shared/avdata/dev

Prints wall-clock time, files/s and media-seconds/s for each, and the gain.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEV = Path(__file__).resolve().parents[2] / "shared" / "avdata" / "dev"


def run(folder: Path, jobs: int, extra: tuple[str, ...] = ()) -> tuple[float, list[dict]]:
    """``fcnsync detect FOLDER -j JOBS EXTRA``: wall-clock seconds and the records."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.jsonl"
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "fcnsync.cli",
                "detect",
                str(folder),
                "-j",
                str(jobs),
                "-o",
                str(out),
                "--quiet",
                *extra,
            ],
            check=False,
        )
        wall = time.perf_counter() - t0
        return wall, [json.loads(line) for line in out.read_text().splitlines()]


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEV
    rows = {}
    for jobs in (1, 2):
        wall, recs = run(folder, jobs)
        media = sum(r.get("duration_s") or 0 for r in recs)
        rows[jobs] = wall
        print(
            f"--jobs {jobs}: {len(recs)} files, {media:.0f} s of media in {wall:.1f} s wall "
            f"({len(recs) / wall:.2f} files/s, {media / wall:.1f}x real time)"
        )
    print(f"gain of 2 jobs over 1: {rows[1] / rows[2]:.2f}x")


if __name__ == "__main__":
    main()
