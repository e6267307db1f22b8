"""End to end through the command line: copies of real dev clips whose audio is moved by a known
number of frames, (a) in its samples (decoded, padded or trimmed, re-encoded) and (b) in its
container timestamps (packets copied, audio pts moved), measured by ``fcnsync detect`` and
compared with the measurement of the untouched clip and with the manifest's stated offset.

    python benchmarks/e2e_offsets.py [--per-group 4] [--jobs 2]

Prints a table and writes benchmarks/results/e2e_offsets.json. Positive shift: audio earlier.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import av
import numpy as np

from fcnsync.remux import shift_audio

DATA = Path(__file__).resolve().parents[2] / "shared" / "avdata"
SHIFTS = (-9, -3, 3, 9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--per-group", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    rows = [
        r
        for r in csv.DictReader(open(DATA / "manifest.tsv"), delimiter="\t")
        if r["split"] == "dev" and r["kind"] == "real"
    ]
    chosen: list[dict[str, str]] = []
    for group in ("grid", "curated", "wild"):
        chosen += [r for r in rows if r["group"] == group][: args.per_group]
    tmp = Path(tempfile.mkdtemp(prefix="fcnsync-e2e-"))
    plan = []  # (file, clip, mode, shift)
    for r in chosen:
        src = DATA / r["file"]
        with av.open(str(src)) as c:
            fps = float(c.streams.video[0].average_rate)
        plan.append((src, r, "original", 0))
        for k in SHIFTS:
            for mode in ("samples", "timestamps"):
                dst = tmp / f"{src.stem}.{mode}{k:+d}.mkv"
                shift_audio(src, dst, k / fps, mode=mode, fmt="matroska")
                plan.append((dst, r, mode, k))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fcnsync.cli",
            "detect",
            "-",
            "--format",
            "jsonl",
            "-j",
            str(args.jobs),
            "--quiet",
        ],
        input="\n".join(str(p[0]) for p in plan),
        capture_output=True,
        text=True,
    )
    recs = {json.loads(line)["path"]: json.loads(line) for line in out.stdout.splitlines()}
    base = {
        str(p[1]["file"]): recs.get(str(p[0]), {}).get("offset_frames")
        for p in plan
        if p[2] == "original"
    }
    acc: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    details = []
    for path, r, mode, k in plan:
        rec = recs.get(str(path), {})
        got = rec.get("offset_frames")
        stated = float(r["inherent_offset_frames"] or 0) + k
        ref = base[r["file"]]
        relative = None if ref is None else ref + k
        details.append(
            {
                "clip": r["file"],
                "group": r["group"],
                "mode": mode,
                "shift": k,
                "status": rec.get("status"),
                "offset_frames": got,
                "confidence": rec.get("confidence"),
            }
        )
        if mode == "original":
            continue
        for truth_name, truth in (("stated", stated), ("relative", relative)):
            ok = got is not None and truth is not None and abs(got - truth) <= 1.0
            for g in (r["group"], "all"):
                acc[(truth_name, mode, g)].append(float(ok))
    print(
        f"{len(chosen)} clips x {len(SHIFTS)} shifts x 2 ways = "
        f"{sum(1 for p in plan if p[2] != 'original')} shifted files; correct within +-1 "
        "frame, an undetermined answer counts as wrong"
    )
    print(
        f"{'truth':9s} {'moved in':11s} "
        + " ".join(f"{g:>8s}" for g in ("grid", "curated", "wild", "all"))
    )
    for truth_name in ("relative", "stated"):
        for mode in ("samples", "timestamps"):
            cells = [acc.get((truth_name, mode, g), []) for g in ("grid", "curated", "wild", "all")]
            print(
                f"{truth_name:9s} {mode:11s} "
                + " ".join(f"{100 * np.mean(c):7.1f}%" if c else f"{'-':>8s}" for c in cells)
            )
    res_dir = Path(__file__).parent / "results"
    res_dir.mkdir(exist_ok=True)
    (res_dir / "e2e_offsets.json").write_text(json.dumps(details, indent=1) + "\n")


if __name__ == "__main__":
    main()
