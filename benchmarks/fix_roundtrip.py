"""Round trip of `fcnsync fix` on the dev clips: each real clip is copied with its audio moved
6 frames earlier (in its container timestamps; AVI clips in their samples), into mp4, mov, mkv
or avi in turn, then fixed (measured, corrected) and measured again. Prints how many come out
within +-1 frame of zero and whether the video packets are byte-identical.

    python benchmarks/fix_roundtrip.py
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

import av

import fcnsync
from fcnsync.errors import FcnsyncError
from fcnsync.faces import silence_native_stderr
from fcnsync.fix import fix_file
from fcnsync.remux import shift_audio

DATA = Path(__file__).resolve().parents[2] / "shared" / "avdata"


def video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def main() -> None:
    silence_native_stderr()
    model, cal = fcnsync.load_model(device="cpu"), fcnsync.load_calibration()
    rows = [
        r
        for r in csv.DictReader(open(DATA / "manifest.tsv"), delimiter="\t")
        if r["split"] == "dev" and r["kind"] == "real"
    ]
    tmp = Path(tempfile.mkdtemp(prefix="fcnsync-fix-"))
    out = []
    cycle = [".mp4", ".mov", ".mkv"]
    for i, r in enumerate(rows):
        src = DATA / r["file"]
        ext = (
            ".avi" if src.suffix == ".avi" else (".mkv" if src.suffix == ".webm" else cycle[i % 3])
        )
        fps = float(r["fps"])
        shifted = tmp / f"{src.stem}.shifted{ext}"
        mode = "samples" if ext == ".avi" else "timestamps"
        try:
            shift_audio(src, shifted, 6 / fps, mode=mode)
            res = fix_file(shifted, tmp / f"{src.stem}.fixed{ext}", model, cal)
            same = video_packets(shifted) == video_packets(tmp / f"{src.stem}.fixed{ext}")
            out.append(
                {
                    "clip": r["file"],
                    "container": ext,
                    "status": "fixed",
                    "residual_frames": res.residual_frames,
                    "verified": res.verified,
                    "video_identical": same,
                }
            )
        except FcnsyncError as exc:
            out.append(
                {"clip": r["file"], "container": ext, "status": "refused", "reason": str(exc)}
            )
    fixed = [o for o in out if o["status"] == "fixed"]
    for ext in (".mp4", ".mov", ".mkv", ".avi"):
        sub = [o for o in fixed if o["container"] == ext]
        n_all = sum(o["container"] == ext for o in out)
        print(
            f"{ext}: {len(sub)} of {n_all} fixed, {sum(o['verified'] for o in sub)} within "
            f"+-1 frame after, video identical in {sum(o['video_identical'] for o in sub)}"
        )
    print(
        f"all: {len(fixed)} of {len(out)} fixed (the rest refused: undetermined or below "
        f"0.9 confidence); {sum(o['verified'] for o in fixed)} of the fixed within +-1 frame"
    )
    res_dir = Path(__file__).parent / "results"
    (res_dir / "fix_roundtrip.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
