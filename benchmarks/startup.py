"""One clip, one command, timed as a user times it: the whole process, start to exit.

    python benchmarks/startup.py [--rounds 5] [--clip CLIP]

Each round runs, one after the other (interleaved, so that a change in the machine's load
touches all of them alike):
  floor        python -c "import torch, av, mediapipe"  (what any torch + mediapipe tool pays)
  detect       fcnsync detect CLIP --format json         (its record gives the file's elapsed_s)
  help         fcnsync --help
  detect-help  fcnsync detect --help
and prints the median wall time of each, and what fcnsync adds on top of the floor and the
file's own work: detect - floor - elapsed_s, per round, then the median. The load average
before and after is printed too: the figures mean little on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEV = Path(__file__).resolve().parents[2] / "shared" / "avdata" / "dev"
DEFAULT_CLIP = DEV / "R-V-Abhishek__Syncnet_FCN__data_example.avi"  # 12.7 s, 224x224
TARGET_OVERHEAD_S = 0.5  # detect within floor + the file's own work + this
TARGET_HELP_S = 0.5


def _fcnsync() -> list[str]:
    """The installed ``fcnsync`` script beside this Python, as a user runs it."""
    script = Path(sys.executable).parent / "fcnsync"
    found = str(script) if script.exists() else shutil.which("fcnsync")
    return [found] if found else [sys.executable, "-m", "fcnsync.cli"]


def _timed(cmd: list[str]) -> tuple[float, str]:
    """Wall seconds of ``cmd`` as a fresh process, and its stdout; fails loudly on exit != 0."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return wall, r.stdout


def _row(name: str, values: list[float]) -> None:
    print(f"{name:<28} {statistics.median(values):6.2f} s  ({min(values):.2f}-{max(values):.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    args = ap.parse_args()
    if not args.clip.exists():
        sys.exit(f"no clip at {args.clip} (needs ../shared/avdata, or give --clip)")
    fcn = _fcnsync()
    commands = {
        "floor": [sys.executable, "-c", "import torch, av, mediapipe"],
        "detect": [*fcn, "detect", str(args.clip), "--format", "json"],
        "help": [*fcn, "--help"],
        "detect-help": [*fcn, "detect", "--help"],
    }
    load_before = os.getloadavg()
    _timed(commands["detect"])  # warm the file cache and the .pyc files; not counted
    walls: dict[str, list[float]] = {name: [] for name in commands}
    elapsed: list[float] = []
    for _ in range(args.rounds):
        for name, cmd in commands.items():
            wall, out = _timed(cmd)
            walls[name].append(wall)
            if name == "detect":
                elapsed.append(float(json.loads(out)[0]["elapsed_s"]))
    load_after = os.getloadavg()
    extra = [d - f - e for d, f, e in zip(walls["detect"], walls["floor"], elapsed, strict=True)]

    med = {name: statistics.median(v) for name, v in walls.items()}
    print(f"clip: {args.clip.name}; {args.rounds} rounds, interleaved; median (min-max) wall s")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, nice {os.nice(0)}")
    print(
        "load average (1, 5, 15 min) before: "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after: "
        + ", ".join(f"{x:.2f}" for x in load_after)
    )
    print()
    for name, v in walls.items():
        _row(name, v)
    _row("elapsed_s (file own work)", elapsed)
    _row("detect - floor - elapsed_s", extra)
    med_x = statistics.median(extra)
    print()
    checks = [
        (
            f"detect within floor + own work + {TARGET_OVERHEAD_S} s",
            med_x <= TARGET_OVERHEAD_S,
            f"{med_x:+.2f} s",
        ),
        (f"fcnsync --help under {TARGET_HELP_S} s", med["help"] < TARGET_HELP_S, ""),
        (f"fcnsync detect --help under {TARGET_HELP_S} s", med["detect-help"] < TARGET_HELP_S, ""),
    ]
    for text, ok, note in checks:
        print(f"{'met ' if ok else 'MISSED'} {text} {note}".rstrip())


if __name__ == "__main__":
    main()
