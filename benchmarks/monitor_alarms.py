"""How often the monitor's alarm would fire on streams whose offset does not change.

Every real clip of ../shared/avdata/dev of at least ``--min-seconds`` is monitored as a stream
(4 s windows, 1 s hop, so the alarm judges the last 2 s of each window). A clip's offset does
not change within it, but it need not be zero (the data has clips with their own offset), so
each clip's alarm judges its recent offsets minus the median of its whole-window offsets: any
alarm is a false one. The alarm is replayed on the same records with one, two and three
confident windows in a row (``--alarm-windows``).

    python benchmarks/monitor_alarms.py [--min-seconds 6]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import fcnsync
from fcnsync.cache import read_clips
from fcnsync.faces import silence_native_stderr
from fcnsync.media import probe
from fcnsync.monitor import AlarmState, monitor

DEV = Path(__file__).resolve().parents[2] / "shared" / "avdata" / "dev"
RULES = {f"--alarm-windows {n}": n for n in (1, 2, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--min-seconds", type=float, default=6.0)
    args = ap.parse_args()
    silence_native_stderr()
    model, cal = fcnsync.load_model(device="cpu"), fcnsync.load_calibration()
    clips = [c for c in read_clips(DEV) if c.kind == "real"]
    clips = [c for c in clips if probe(c.path).duration_s >= args.min_seconds]
    false_alarms = dict.fromkeys(RULES, 0)
    total_windows = votes = 0
    for clip in clips:
        recs = [r for r in monitor(str(clip.path), model, cal, 4.0, 1.0) if r["event"] == "window"]
        whole = [r["offset_ms"] for r in recs if r["status"] == "ok"]
        if not whole:
            continue
        centre = float(np.median(whole))
        total_windows += len(recs)
        line = []
        votes += sum(r["recent_status"] == "ok" for r in recs)
        for name, n in RULES.items():
            alarm = AlarmState(windows=n)
            for r in recs:
                ok = r["recent_status"] == "ok"
                _, event = alarm.update(r["recent_offset_ms"] - centre if ok else None)
                false_alarms[name] += event == "out_of_sync"
            line.append(str(false_alarms[name]))
        print(
            f"{clip.path.name[:40]:40s} {len(recs):4d} windows  alarms so far: {' / '.join(line)}"
        )
    hours = total_windows / 3600  # one window per second of stream
    print(
        f"\n{len(clips)} clips, {total_windows} windows (1 s apart), {votes} confident recent spans"
    )
    for name, n in false_alarms.items():
        print(f"{name:40s} false alarms: {n:3d}  ({n / hours:.0f} per hour of stream)")


if __name__ == "__main__":
    main()
