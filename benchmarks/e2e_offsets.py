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
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "avdata"
SHIFTS = (-9, -3, 3, 9)


def shift_timestamps(src: Path, dst: Path, frames: int, fps: float) -> None:
    """Copy every packet; the audio's timestamps move by -frames (positive: audio earlier)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="matroska") as out:
        v_in, a_in = inp.streams.video[0], inp.streams.audio[0]
        v_out = out.add_stream_from_template(v_in)
        a_out = out.add_stream_from_template(a_in)
        delta = round(-frames / fps / a_in.time_base)
        for packet in inp.demux(v_in, a_in):
            if packet.dts is None and packet.pts is None:
                continue
            if packet.stream is a_in:
                if packet.pts is not None:
                    packet.pts += delta
                if packet.dts is not None:
                    packet.dts += delta
                packet.stream = a_out
            else:
                packet.stream = v_out
            out.mux(packet)


def shift_samples(src: Path, dst: Path, frames: int, fps: float) -> None:
    """Copy the video packets; decode the audio and move its samples by ``frames`` (positive:
    audio earlier, by dropping its start; negative: later, by leading silence), re-encode."""
    with av.open(str(src)) as inp:
        a_in = inp.streams.audio[0]
        rate = a_in.codec_context.sample_rate
        res = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
        chunks = [r.to_ndarray() for f in inp.decode(a_in) for r in res.resample(f)]
    audio = np.concatenate(chunks, axis=1)
    n = round(abs(frames) / fps * rate)
    audio = audio[:, n:] if frames > 0 else np.pad(audio, ((0, 0), (n, 0)))
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="matroska") as out:
        v_in = inp.streams.video[0]
        v_out = out.add_stream_from_template(v_in)
        a_out = out.add_stream("aac", rate=rate)
        a_out.layout = "stereo"
        start = inp.streams.audio[0].start_time or 0
        t0 = float(start * inp.streams.audio[0].time_base)
        pts0 = round(t0 * rate)
        for packet in inp.demux(v_in):
            if packet.dts is None and packet.pts is None:
                continue
            packet.stream = v_out
            out.mux(packet)
        for s0 in range(0, audio.shape[1], 1024):
            f = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(audio[:, s0 : s0 + 1024]), format="fltp", layout="stereo"
            )
            f.sample_rate, f.pts, f.time_base = rate, pts0 + s0, Fraction(1, rate)
            for p in a_out.encode(f):
                out.mux(p)
        for p in a_out.encode():
            out.mux(p)


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
            for mode, fn in (("samples", shift_samples), ("timestamps", shift_timestamps)):
                dst = tmp / f"{src.stem}.{mode}{k:+d}.mkv"
                fn(src, dst, k, fps)
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
