"""How often the monitor's alarm fires on streams whose offset does not change, and how soon it
fires on streams whose offset is wrong.

Every real clip of ../shared/avdata/dev of at least ``--min-seconds`` is monitored as a stream
(4 s windows, 1 s hop, so the alarm judges the last 2 s of each window). A clip's offset does
not change within it, but it need not be zero (the data has clips with their own offset), so
each clip's alarm judges its recent offsets minus the median of its whole-window offsets: any
alarm is a false one. Then a copy of each clip with its audio moved ``--shift-ms`` (earlier and
later, clip by clip; container timestamps moved) is monitored and judged against the same
centre: an alarm there is a true one, and the windows before it are the delay. The alarm is
replayed on the same records with one, two and three confident windows in a row
(``--alarm-windows``) and with a higher confidence asked of the windows it counts.

    python benchmarks/monitor_alarms.py [--min-seconds 6] [--shift-ms 200] [--records FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import fcnsync
from fcnsync.cache import read_clips
from fcnsync.faces import silence_native_stderr
from fcnsync.media import probe
from fcnsync.monitor import ALARM_AGREE_MS, ALARM_MIN_CONFIDENCE, AlarmState, alarm_reading, monitor
from fcnsync.remux import shift_audio

DEV = Path(__file__).resolve().parents[2] / "shared" / "avdata" / "dev"
# (confident windows in a row, the least confidence a window needs to count, how close the
# windows of a run must read: None for any); the monitor's default is the last
# (2, ALARM_MIN_CONFIDENCE, ALARM_AGREE_MS)
RULES = [
    (1, 0.0, None),
    (2, 0.0, None),
    (3, 0.0, None),
    (2, 0.8, None),
    (2, 0.0, ALARM_AGREE_MS),
    (3, 0.0, ALARM_AGREE_MS),
    (2, ALARM_MIN_CONFIDENCE, ALARM_AGREE_MS),
]


def rule_name(windows: int, confidence: float, agree_ms: float | None) -> str:
    extra = f", confidence >= {confidence:.1f}" if confidence else ""
    extra += f", agreeing within {agree_ms:.0f} ms" if agree_ms is not None else ""
    return f"{windows} window{'s' if windows > 1 else ''} in a row{extra}"


def alarm_windows(
    recs: list[dict[str, Any]], centre: float, windows: int, conf: float, agree_ms: float | None
) -> list[int]:
    """The indices of the windows that raise the alarm."""
    alarm = AlarmState(windows=windows, agree_ms=agree_ms)
    raised = []
    for i, r in enumerate(recs):
        reading = alarm_reading(r, conf)
        _, event = alarm.update(None if reading is None else reading - centre)
        if event == "out_of_sync":
            raised.append(i)
    return raised


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--min-seconds", type=float, default=6.0)
    ap.add_argument("--shift-ms", type=float, default=200.0)
    ap.add_argument("--records", help="also write every window record here (JSON lines)")
    args = ap.parse_args()
    saved = open(args.records, "w") if args.records else None  # noqa: SIM115
    silence_native_stderr()
    model, cal = fcnsync.load_model(device="cpu"), fcnsync.load_calibration()
    clips = [c for c in read_clips(DEV) if c.kind == "real"]
    clips = [c for c in clips if probe(c.path).duration_s >= args.min_seconds]
    false_alarms = dict.fromkeys(RULES, 0)
    caught: dict[tuple[int, float, float | None], list[int]] = {r: [] for r in RULES}
    total_windows = shifted = 0
    tmp = Path(tempfile.mkdtemp(prefix="fcnsync-alarms-"))
    try:
        for i, clip in enumerate(clips):
            recs = [
                r for r in monitor(str(clip.path), model, cal, 4.0, 1.0) if r["event"] == "window"
            ]
            whole = [r["offset_ms"] for r in recs if r["status"] == "ok"]
            if not whole:
                continue
            centre = float(np.median(whole))
            total_windows += len(recs)
            lead_ms = args.shift_ms if i % 2 == 0 else -args.shift_ms
            ext = ".mkv" if clip.path.suffix in (".webm", ".avi", ".mpg") else clip.path.suffix
            moved = tmp / f"{clip.path.stem}{ext}"
            shift_audio(clip.path, moved, lead_ms / 1000.0)
            moved_recs = [
                r for r in monitor(str(moved), model, cal, 4.0, 1.0) if r["event"] == "window"
            ]
            moved.unlink()
            shifted += 1
            if saved:
                for shift, rs in ((0.0, recs), (lead_ms, moved_recs)):
                    for r in rs:
                        saved.write(json.dumps({"clip": clip.path.name, "shift_ms": shift, **r}))
                        saved.write("\n")
                saved.flush()
            line = []
            for rule in RULES:
                false_alarms[rule] += len(alarm_windows(recs, centre, *rule))
                first = alarm_windows(moved_recs, centre, *rule)
                if first:
                    caught[rule].append(first[0])
                line.append(f"{false_alarms[rule]}/{len(caught[rule])}")
            print(
                f"{clip.path.name[:40]:40s} {len(recs):4d} windows  "
                f"false alarms / shifted copies caught so far: {'  '.join(line)}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    hours = total_windows / 3600  # one window per second of stream
    print(
        f"\n{len(clips)} clips, {total_windows} windows (1 s apart); "
        f"{shifted} copies with the audio moved {args.shift_ms:.0f} ms"
    )
    for rule in RULES:
        n, got = false_alarms[rule], caught[rule]
        delay = (
            f", alarm at window {np.median(got):.0f} (median), {np.percentile(got, 90):.0f} (90th)"
        )
        print(
            f"{rule_name(*rule):52s} false alarms: {n:3d} ({n / hours:3.0f} per hour of stream); "
            f"shifted copies caught: {len(got)} of {shifted}{delay if got else ''}"
        )


if __name__ == "__main__":
    main()
