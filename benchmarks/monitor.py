"""Monitoring speed: processing time per second of stream (must stay well under 1) at 720p25
and 1080p30, and the delay from a frame's arrival to the record that covers it.

    python benchmarks/monitor.py [CLIP ...]   # default: two ../shared/avdata/dev clips

The clip is read as fast as it decodes (a live source gives it at 1x); one process.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import fcnsync
from fcnsync.faces import silence_native_stderr
from fcnsync.inference import audio_pad_frames
from fcnsync.media import probe
from fcnsync.monitor import monitor

DEV = Path(__file__).resolve().parents[2] / "shared" / "avdata" / "dev"
CLIPS = ["visualvoice_restaurant_1.mp4", "wav2lipgfpgan_1.mp4"]  # 1280x720 25 fps, 1920x1080 30


def main() -> None:
    silence_native_stderr()
    model, cal = fcnsync.load_model(device="cpu"), fcnsync.load_calibration()
    clips = sys.argv[1:] or [str(DEV / c) for c in CLIPS]
    print(
        f"{'clip':32s} {'size':>10s} {'fps':>5s} {'stream s':>8s} {'wall s':>7s} "
        f"{'proc/stream s':>13s} {'record delay s':>14s}"
    )
    for clip in clips:
        info = probe(clip)
        t0 = time.perf_counter()
        recs = list(monitor(clip, model, cal, window_s=4.0, hop_s=1.0))
        wall = time.perf_counter() - t0
        windows = [r for r in recs if r["event"] == "window"]
        span = windows[-1]["stream_end_s"] - windows[0]["stream_start_s"] if windows else 0.0
        per_s = wall / span if span else float("nan")
        # a record waits for the audio beyond its window (the searched lags and the network's
        # context) and then takes its scoring time; decoding and tracking keep pace at per_s
        margin = (audio_pad_frames(15) + 2) / info.fps + 0.5
        delay = margin * max(1.0, per_s) + float(np.median([w["processing_s"] for w in windows]))
        print(
            f"{Path(clip).name[:32]:32s} {info.width:>4d}x{info.height:<5d} {info.fps:5.1f} "
            f"{span:8.1f} {wall:7.1f} {per_s:13.2f} {delay:14.2f}"
        )


if __name__ == "__main__":
    main()
