"""What screening the training labels keeps: for each network of a training run (``RUN/member<i>``
or a single network's folder), the offsets its first model found for every training clip
(``screen_offsets.json``), and how many clips and people each rule would keep, by gathering and
group: set aside every clip found more than 1.5 frames off, realign the clips found 1.5-4 frames
off (set aside beyond), or keep everything; each also with the readings centred on the first
model's own median reading of the GRID clips (studio recordings, in sync).

A rule that drops the people the current model finds hard would be suspect, so the first
model's readings are compared with an independent one: fcnsync-v7's readings of the same clips
(``benchmarks/results/screening-v7-readings.json``), made by networks that never saw the people
of the second gathering. Where both read a clip off by the same amount, the clip is off; where
only the first model does, its reading is suspect.

    python benchmarks/screening.py runs/final
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from fcnsync.train import TrainConfig, screen

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "avdata"
RULES = {
    "set aside > 1.5 fr": TrainConfig(screen_rule="set_aside"),
    "realign 1.5-4 fr": TrainConfig(screen_rule="realign"),
    "realign 1.5-15 fr": TrainConfig(screen_rule="realign", screen_realign_max=15.0),
    "keep all": TrainConfig(screen_rule="keep"),
    "centred, set aside": TrainConfig(screen_rule="set_aside", screen_centre=True),
    "centred, realign 4": TrainConfig(screen_rule="realign", screen_centre=True),
    "centred, realign 15": TrainConfig(
        screen_rule="realign", screen_centre=True, screen_realign_max=15.0
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("run")
    args = ap.parse_args()
    rows = {
        Path(r["file"]).name: r
        for r in csv.DictReader(open(DATA / "manifest.tsv"), delimiter="\t")
        if r["split"] == "train"
    }
    gathering = {
        k: "second" if r["notes"].rstrip().endswith("second gathering") else "first"
        for k, r in rows.items()
    }
    v7 = json.loads((ROOT / "benchmarks" / "results" / "screening-v7-readings.json").read_text())
    run = Path(args.run)
    paths = sorted(run.glob("member*/screen_offsets.json")) or [run / "screen_offsets.json"]
    for path in paths:
        found = json.loads(path.read_text())
        names = sorted(found)
        print(
            f"\n{path.parent.name}: {len(names)} clips, "
            f"{len({rows[n]['person'] for n in names})} people"
        )
        print(
            f"{'rule':<20} {'clips':>6} {'people':>7}   first: clips people   second: clips people"
        )
        grid = [v for n, v in found.items() if rows[n]["group"] == "grid"]
        print(f"  its median reading of the GRID clips (in sync): {np.median(grid):+.2f} frames")
        for rule, cfg in RULES.items():
            excluded, _ = screen(found, cfg, float(np.median(grid)) if cfg.screen_centre else 0.0)
            kept = [n for n in names if n not in excluded]
            line = f"{rule:<20} {len(kept):6d} {len({rows[n]['person'] for n in kept}):7d}"
            for g in ("first", "second"):
                k = [n for n in kept if gathering[n] == g]
                line += f"   {len(k):12d} {len({rows[n]['person'] for n in k}):6d}"
            print(line)
        for g in ("first", "second"):
            k = [n for n in names if gathering[n] == g and n in v7]
            a = np.array([found[n] for n in k])
            b = np.array([v7[n] for n in k])
            off = np.abs(a) > 1.5
            agree = off & (np.abs(b) > 1.5) & (np.abs(a - b) <= 1.0)
            print(
                f"  {g} gathering: found off {off.sum()} of {len(k)}; v7 reads {agree.sum()} of "
                f"them off by the same amount (within 1 frame); all clips: readings within 1 frame "
                f"{np.mean(np.abs(a - b) <= 1):.0%}, median {np.median(a):+.2f} "
                f"/ v7 {np.median(b):+.2f}"
            )


if __name__ == "__main__":
    main()
