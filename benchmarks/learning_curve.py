"""How dev accuracy grows with the number of training people: a learning curve.

Single networks (the shipped configuration, ``TrainConfig()``) are trained on a random 80, 160,
240 and all of the people of ../shared/avdata/train (the same draw for every seed; the clips the
shipped network of that seed set aside, ``weights/train_excluded.json``, left out, and those it
realigned, ``weights/train_realigned.json``, realigned the same way) and scored on the real clips of
../shared/avdata/dev (relative truth, 5 and 15 frames and whole clips, each face and its
mirror image). Each run is resumable; each result is kept as ``OUT/<people>_s<seed>.json``, and
the table printed at the end holds every result found in ``OUT``, so that seeds can run side by
side (one core each):

    python benchmarks/learning_curve.py --seed 0 & python benchmarks/learning_curve.py --seed 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from fcnsync.dataset import prepare_tracks
from fcnsync.faces import silence_native_stderr
from fcnsync.model import load_model
from fcnsync.train import TrainConfig, realign, train
from fcnsync.trials import FIGURES_HEADER, dev_figures, format_figures

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "avdata"
PERSON_DRAW_SEED = 123


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--people", type=int, nargs="+", default=[80, 160, 240, 0], help="0: all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "runs" / "learning-curve"))
    ap.add_argument("--cache", default=str(ROOT / ".fcnsync-cache"))
    args = ap.parse_args()
    excluded = json.loads((ROOT / "weights" / "train_excluded.json").read_text())
    realigned_path = ROOT / "weights" / "train_realigned.json"
    realigned = json.loads(realigned_path.read_text()) if realigned_path.exists() else {}
    if f"seed {args.seed}" not in excluded:
        ap.error(f"--seed: the shipped networks' seeds are {', '.join(k[5:] for k in excluded)}")
    silence_native_stderr()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tracks = prepare_tracks(DATA / "train", Path(args.cache) / "train", pad=40)
    set_aside = set(excluded[f"seed {args.seed}"])
    moved = realigned.get(f"seed {args.seed}", {})
    tracks = [realign(t, -moved[t.name]) if t.name in moved else t for t in tracks]
    persons = sorted({t.person for t in tracks})
    draw = [str(p) for p in np.random.default_rng(PERSON_DRAW_SEED).permutation(persons)]
    dev = prepare_tracks(DATA / "dev", Path(args.cache) / "dev", pad=46)
    for people in args.people:
        people = people or len(persons)
        result_path = out / f"{people}_s{args.seed}.json"
        if result_path.exists():
            continue
        chosen = set(draw[:people])
        kept = [t for t in tracks if t.person in chosen and t.name not in set_aside]
        cfg = TrainConfig(seed=args.seed, threads=1, members=1)
        last = train(kept, out / f"{people}_s{args.seed}", cfg)
        model = load_model(last, device="cpu")
        model.cfg.mirror = cfg.mirror > 0  # trained on mirror images: score both views
        record = {
            "share": len(chosen) / len(persons),
            "seed": args.seed,
            "people": len(chosen),
            "people_trained": len({t.person for t in kept}),
            "clips": len(kept),
            "minutes": sum(len(t.seq.lips) / t.fps for t in kept) / 60,
            **dev_figures(model, dev),
        }
        result_path.write_text(json.dumps(record) + "\n")
    print_table(out)


def print_table(out: Path) -> None:
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*_s*.json"))]
    records.sort(key=lambda r: (r["share"], r["seed"]))
    print(f"people  clips  minutes  seed   {FIGURES_HEADER}")
    for r in records:
        print(
            f"{r['people']:6d} {r['clips']:6d} {r['minutes']:8.1f} {r['seed']:5d}   "
            + format_figures(r)
        )


if __name__ == "__main__":
    main()
