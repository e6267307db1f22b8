"""Make the sync score's scale: the sync strength of every real, in-sync dev clip, measured
with the given weights, written as the reference file that maps a strength to its percentile of
real footage (``weights/sync_reference.json`` ships in the package).

    python benchmarks/sync_reference.py [--weights W.pt] [-o weights/sync_reference.json]

Run it again whenever the weights or the lag curve's weighting change (the file records the
weights' SHA-256; ``fcnsync score`` with other weights needs its own reference). Clips: dev/
rows of avdata's manifest with kind "real"; each clip's lip tracks and log-mel are read from
the feature cache where it has them (``--cache``, searched with its subfolders), else decoded
and tracked from the file. Prints the distribution.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from fcnsync.cache import cache_path, read_clips
from fcnsync.calibration import load_calibration
from fcnsync.model import load_model, sha256_of, shipped_weights_path
from fcnsync.pipeline import Extracted, extract, load_extracted
from fcnsync.score import REFERENCE_FILE, fit_reference, score_extracted

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "avdata"
CACHE = ROOT / ".fcnsync-cache"


def dev_real_clips(data: Path) -> list[Path]:
    """The real, in-sync dev clips of the manifest (no negatives, generated or shifted clips)."""
    return [c.path for c in read_clips(data / "dev") if c.kind == "real"]


def extracted_of(clip: Path, cache: Path) -> Extracted:
    """The clip's cached extraction (made by this version, in ``cache`` or a subfolder), else
    a fresh one."""
    found = sorted(cache.rglob(cache_path(cache, clip).name)) if cache.is_dir() else []
    if found:
        ex = load_extracted(found[0])
        return replace(ex, info=replace(ex.info, path=str(clip)))
    return extract(clip)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--weights", default=None, help="checkpoint (default: the shipped one)")
    ap.add_argument("--calibration", default=None)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "weights" / REFERENCE_FILE)
    args = ap.parse_args()
    clips = dev_real_clips(args.data)
    if not clips:
        sys.exit(f"no real dev clips under {args.data}")
    model = load_model(args.weights)
    cal = load_calibration(args.calibration)
    strengths = []
    for clip in clips:
        s = score_extracted(extracted_of(clip, args.cache), model, cal, None)
        if s.sync_strength is None:
            print(f"  {clip.name}: no face, left out", file=sys.stderr)
            continue
        strengths.append(s.sync_strength)
    weights = Path(args.weights) if args.weights else shipped_weights_path()
    command = "python benchmarks/sync_reference.py" + (
        f" --weights {args.weights}" if args.weights else ""
    )
    q = np.percentile(strengths, [5, 25, 50, 75, 95])
    ref = fit_reference(
        strengths,
        weights_sha256=sha256_of(weights),
        source=f"avdata dev/, kind real: {len(strengths)} of {len(clips)} clips (a face found)",
        made_by=command,
        figures={f"p{p}": round(float(v), 4) for p, v in zip((5, 25, 50, 75, 95), q, strict=True)},
    )
    ref.save(args.output)
    print(f"{len(strengths)} real dev clips, weights {weights.name} ({ref.weights_sha256[:12]})")
    print("sync strength at percentiles 5/25/50/75/95: " + " / ".join(f"{v:.3f}" for v in q))
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
