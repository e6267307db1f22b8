"""Training variants scored on dev: single networks trained on ../shared/avdata/train with one
setting changed (screening rule, steps, width, ...), each scored on the real clips of
../shared/avdata/dev (relative truth, 5 and 15 frames and whole clips, each face and its mirror
image). Resumable; each result is kept as ``OUT/<name>_s<seed>.json`` and the table printed at
the end holds every result in ``OUT``, so that runs can go side by side (one core each):

    python benchmarks/train_variants.py base --seed 0 &
    python benchmarks/train_variants.py keep --seed 0 --set screen_rule=keep

``--set key=value`` overrides a ``TrainConfig`` field (``model.channels=128`` a model field).
Networks of one seed share one screening (``OUT/screen_s<seed>``): the shipped configuration's
first model of that seed, trained on every clip, and its readings of them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from fcnsync.dataset import prepare_tracks
from fcnsync.faces import silence_native_stderr
from fcnsync.model import load_model
from fcnsync.train import TrainConfig, clip_offsets, train, train_screened
from fcnsync.trials import FIGURES_HEADER, dev_figures, format_figures

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "avdata"


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = json.loads(value) if value[:1] in "0123456789-[{tf" else value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", default=str(ROOT / "runs" / "variants"))
    ap.add_argument("--cache", default=str(ROOT / ".fcnsync-cache"))
    args = ap.parse_args()
    silence_native_stderr()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result_path = out / f"{args.name}_s{args.seed}.json"
    if not result_path.exists():
        cfg = TrainConfig(seed=args.seed, threads=1, members=1)
        model_over = {}
        for key, value in parse_overrides(args.overrides).items():
            if key.startswith("model."):
                model_over[key[6:]] = value
            else:
                cfg = replace(cfg, **{key: value})
        if model_over:
            cfg = replace(cfg, model={**cfg.model, **model_over})
        tracks = prepare_tracks(DATA / "train", Path(args.cache) / "train", pad=40)
        run = out / f"{args.name}_s{args.seed}"
        run.mkdir(exist_ok=True)
        shared = out / f"screen_s{args.seed}"
        if not (run / "screen_offsets.json").exists():  # one screening per seed, as shipped
            screen_cfg = TrainConfig(seed=args.seed, threads=1, steps=500, save_every=500)
            readings = shared / "screen_offsets.json"
            if not readings.exists():
                first = load_model(train(tracks, shared, screen_cfg), device="cpu")
                found = clip_offsets(first, tracks, screen_cfg.max_lag)
                names = [t.name for t in tracks]
                readings.write_text(json.dumps(dict(zip(names, found, strict=True))) + "\n")
            shutil.copy(readings, run / "screen_offsets.json")
        t0 = time.time()
        last = train_screened(tracks, run, cfg)
        minutes = (time.time() - t0) / 60
        model = load_model(last, device="cpu")
        model.cfg.mirror = cfg.mirror > 0  # trained on mirror images: score both views
        dev = prepare_tracks(DATA / "dev", Path(args.cache) / "dev", pad=46)
        excluded = json.loads((run / "excluded.json").read_text())
        record = {
            "name": args.name,
            "seed": args.seed,
            "overrides": args.overrides,
            "clips": len(tracks) - len(excluded),
            "people": len({t.person for t in tracks if t.name not in excluded}),
            "train_minutes": round(minutes, 1),
            **dev_figures(model, dev),
        }
        result_path.write_text(json.dumps(record) + "\n")
    print_table(out)


def print_table(out: Path) -> None:
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*_s*.json"))]
    print(f"name                  seed  clips people   {FIGURES_HEADER}")
    for r in records:
        row = f"{r['name']:<20} {r['seed']:5d} {r['clips']:6d} {r['people']:6d}   "
        print(row + format_figures(r))


if __name__ == "__main__":
    main()
