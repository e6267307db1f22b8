"""Speed and memory per file and per stage: decoding alone (the floor), face tracking, the
model, the total, times real time, and peak memory. Prints a table; run it, don't time tests.
``alone``: the model's half (scoring, the file's record and profile) run again on the same
file decoded and tracked beforehand, median of 5, with nothing else running; ``share`` that
over the total.

    python benchmarks/speed.py [CLIP ...]        # default: a spread of ../shared/avdata/dev
    python benchmarks/speed.py --long-minutes 30  # memory as videos get longer (one process each)

Each file is measured in a fresh process, so peak RSS is that file's own, after a short warm-up
clip (start-up costs that a batch pays once are not any file's time). ``cpu/fr`` is the CPU
time per video frame of the whole run (every thread: decoder, face mesh, model), ``dec/fr``
the same for decoding alone, ``cores`` the run's CPU time over its wall time: together they
show how much of the machine a file used and what a frame costs, whatever the core count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

DEV = Path(__file__).resolve().parents[2] / "shared" / "avdata" / "dev"
WARMUP_CLIP = "grid_s23_priazn.mpg"  # 3 s, not one of the measured clips
DEFAULT_CLIPS = [
    "lrs2_unknown6_1.mp4",  # 160x160
    "R-V-Abhishek__Syncnet_FCN__data_example.avi",  # 224x224
    "grid_s22_lbbc2a.mpg",  # 360x288
    "hdtf_wdaedmarkey_1.mp4",  # 512x512
    "visualvoice_restaurant_1.mp4",  # 1280x720
    "wav2lipgfpgan_1.mp4",  # 1920x1080
    "latentsync_1.mp4",  # 1080x1920
]


def _cpu_s() -> float:
    """CPU time of this process so far, every thread (decoder and mesh threads too)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure_one(path: str) -> dict[str, float]:
    """Run in a child process: decode alone, then the full pipeline, on one file."""

    from fcnsync.calibration import load_calibration  # noqa: PLC0415
    from fcnsync.faces import (
        FaceTracker,  # noqa: PLC0415
        silence_native_stderr,  # noqa: PLC0415
    )
    from fcnsync.media import MediaReader, VideoFrame  # noqa: PLC0415
    from fcnsync.model import load_model  # noqa: PLC0415
    from fcnsync.pipeline import (  # noqa: PLC0415
        analyse,
        decode_stretches,
        measure_stretches,
        summarise_tracks,
        track_results,
    )

    silence_native_stderr()
    model, cal = load_model(device="cpu"), load_calibration()
    # one-off start-up is not a file's time: imports, the first graphs, the first forward pass
    # (in a batch they are paid once); a short other clip runs first, untimed
    analyse(str(DEV / WARMUP_CLIP), FaceTracker(), model, cal, 15)
    tracker = FaceTracker()
    c0, t0 = _cpu_s(), time.perf_counter()
    frames = 0
    for item in MediaReader(path):
        frames += isinstance(item, VideoFrame)  # counted, not converted
    decode_only, decode_cpu = time.perf_counter() - t0, _cpu_s() - c0
    c0, t0 = _cpu_s(), time.perf_counter()
    ex, evidence = analyse(path, tracker, model, cal, 15)  # what detect() runs
    tracks, _ = track_results(evidence, ex.info.fps, cal, model.logit_scale)
    t2, total_cpu = time.perf_counter(), _cpu_s() - c0
    res = summarise_tracks(path, ex, tracks, 15, t2 - t0)
    # the model half alone, on the same file decoded and tracked beforehand, with nothing else
    # running (in the pipeline it shares the cores with the decoder and the face mesh)
    stretches = list(decode_stretches(path, FaceTracker(), 15))
    alone = []
    for _ in range(5):
        t3 = time.perf_counter()
        measure_stretches(path, stretches, model, cal, 15)
        alone.append(time.perf_counter() - t3)
    return {
        "frames": frames,
        "duration_s": res.duration_s or 0.0,
        "width": ex.info.width,
        "height": ex.info.height,
        "decode_only_s": decode_only,
        "decode_s": ex.timings_s["decode"],
        "track_s": ex.timings_s["track"],
        "audio_s": ex.timings_s["audio"],
        "model_s": ex.timings_s["model"],
        "model_alone_s": sorted(alone)[2],
        "total_s": t2 - t0,
        "decode_cpu_s": decode_cpu,
        "total_cpu_s": total_cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "status": res.status,
        "offset_frames": res.offset_frames if res.offset_frames is not None else float("nan"),
    }


def make_long_clip(src: Path, minutes: float, out: Path) -> Path:
    """A long talking clip made by looping a real clip's frames and audio (re-encoded)."""
    import av  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    with av.open(str(src)) as c:
        fps = int(round(float(c.streams.video[0].average_rate)))
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(src)) as c:
        res = av.AudioResampler(format="s16", layout="mono", rate=16000)
        audio = np.concatenate(
            [r.to_ndarray().reshape(-1) for f in c.decode(audio=0) for r in res.resample(f)]
        )
    n_total = int(minutes * 60 * fps)
    h, w = frames[0].shape[:2]
    with av.open(str(out), "w") as o:
        vs = o.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "ultrafast"}
        a_s = o.add_stream("aac", rate=16000)
        a_s.layout = "mono"
        per_frame = 16000 // fps
        loop_len = len(frames)
        for i in range(n_total):
            vf = av.VideoFrame.from_ndarray(frames[i % loop_len], format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for p in vs.encode(vf):
                o.mux(p)
        for p in vs.encode():
            o.mux(p)
        loop_audio = audio[: loop_len * per_frame]
        total = np.resize(loop_audio, n_total * per_frame).astype(np.int16)
        for s0 in range(0, total.size, 1024):
            af = av.AudioFrame.from_ndarray(
                total[None, s0 : s0 + 1024], format="s16", layout="mono"
            )
            af.sample_rate, af.pts, af.time_base = 16000, s0, Fraction(1, 16000)
            for p in a_s.encode(af):
                o.mux(p)
        for p in a_s.encode():
            o.mux(p)
    return out


def run_child(path: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", path], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("clips", nargs="*")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument(
        "--long-minutes",
        type=float,
        nargs="*",
        default=None,
        help="also measure looped clips of these lengths (minutes)",
    )
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure_one(args.child)))
        return
    clips = args.clips or [str(DEV / c) for c in DEFAULT_CLIPS if (DEV / c).exists()]
    rows = [(Path(c).name, run_child(c)) for c in clips]
    if args.long_minutes:
        src = DEV / "R-V-Abhishek__Syncnet_FCN__data_example.avi"
        tmp = Path(os.environ.get("TMPDIR", "/tmp"))
        for minutes in args.long_minutes:
            clip = make_long_clip(src, minutes, tmp / f"fcnsync-long-{minutes:g}min.mp4")
            rows.append((f"looped {minutes:g} min (224x224)", run_child(str(clip))))
            clip.unlink()
    head = (
        f"{'file':44s} {'size':>10s} {'dur s':>6s} {'decode':>7s} {'track':>7s} "
        f"{'model':>6s} {'alone':>6s} {'share':>6s} {'total':>7s} {'x real':>7s} "
        f"{'/decode':>7s} {'cpu/fr':>7s} "
        f"{'dec/fr':>7s} {'cores':>5s} {'RSS MB':>7s}  status"
    )
    print(head)
    sum_dur = sum_total = sum_dec = 0.0
    for name, r in rows:
        x_real = r["duration_s"] / r["total_s"]
        print(
            f"{name[:44]:44s} {r['width']:>4.0f}x{r['height']:<5.0f} {r['duration_s']:6.1f} "
            f"{r['decode_only_s']:7.2f} {r['track_s']:7.2f} {r['model_s']:6.2f} "
            f"{r['model_alone_s']:6.3f} {100 * r['model_alone_s'] / r['total_s']:5.1f}% "
            f"{r['total_s']:7.2f} {x_real:7.1f} {r['total_s'] / r['decode_only_s']:7.1f} "
            f"{1000 * r['total_cpu_s'] / r['frames']:7.2f} "
            f"{1000 * r['decode_cpu_s'] / r['frames']:7.2f} {r['total_cpu_s'] / r['total_s']:5.2f} "
            f"{r['peak_rss_mb']:7.0f}  {r['status']} {r['offset_frames']:+.1f}"
        )
        sum_dur += r["duration_s"]
        sum_total += r["total_s"]
        sum_dec += r["decode_only_s"]
    print(
        f"all files: {sum_dur:.1f} s of media in {sum_total:.1f} s = {sum_dur / sum_total:.1f}x "
        f"real time; {sum_total / sum_dec:.1f}x the time of decoding alone"
    )


if __name__ == "__main__":
    main()
