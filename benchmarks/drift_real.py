"""A 4 % speed-up measured by ``detect`` itself on real media: programmes made as
``benchmarks/drift_fix.py`` makes them (the dev clips' pictures and sound, each clip's sound put
in sync by its own measured offset, clips joined at a scene cut, H.264 + AAC mp4 at 25 fps),
their sound then moved by a drift of one frame per second, either sign (4 % at 25 fps: past the
+-15-frame search range within 15 s), or left unchanged as a control, or (kind "beyond", when
asked for) moved by a constant offset past the search range (20 to 70 frames, either sign: 0.8
to 2.8 s at 25 fps), which the search finds where it looks in the neighbouring ranges after 20 s
of talking faces that show no offset in its own. ``benchmarks/drift.py``
measures the same on cached features scored as one face track; here every shot is its own face
track, scored stretch by stretch as ``detect`` scores a file, so a drift must be followed
across shots, across the stretches of a long file and through shots without a talking face.

Prints, per kind, how many programmes were read with the right profile: the speed-up as a
drift at its rate (within 20 %), the unchanged ones and those beyond the range as constant at
the offset their sound was moved by (within 1 frame; "constant at it"), how many were answered
otherwise, and how many undetermined.

    python benchmarks/drift_real.py [--per-kind 8 --minutes 3] [--kinds speed-up,unchanged,beyond]

Each programme's decoded pictures are held in memory (about 3 GB for 3 minutes): run it alone.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from drift_fix import FPS, confident_clips, make_programme, moved, save, write

import fcnsync
from fcnsync.faces import silence_native_stderr
from fcnsync.pipeline import detect

RATE_FRAMES_PER_S = 1.0  # 4 % at 25 fps: 2400 ms per minute
BEYOND_FRAMES = (20.0, 70.0)  # a constant offset past the +-15-frame search, either sign
KINDS = "speed-up (4 %), unchanged, beyond (a constant offset past the search range)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-kind", type=int, default=8, help="programmes per kind")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kinds", default="speed-up,unchanged", help="taken in turn: " + KINDS)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--name", default="drift_real", help="results file name (no suffix)")
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    silence_native_stderr()
    model, cal = fcnsync.load_model(device="cpu"), fcnsync.load_calibration()
    clips = confident_clips(model, cal)  # with their own offset
    rng = np.random.default_rng(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="fcnsync-drift-real-"))
    cache: dict = {}
    recs = []
    for i in range(args.per_kind * len(kinds)):
        kind = kinds[i % len(kinds)]
        rate = RATE_FRAMES_PER_S * (1 if rng.random() < 0.5 else -1) if kind == "speed-up" else 0.0
        base = float(rng.uniform(-3, 3))
        if kind == "beyond":
            base = float(rng.uniform(*BEYOND_FRAMES)) * (1 if rng.random() < 0.5 else -1)
        frames, sound, _, _ = make_programme(
            clips, rng.permutation(len(clips)), args.minutes, cache
        )
        prog = tmp / f"prog{i}.mp4"
        write(prog, frames, moved(sound, lambda p, rate=rate, base=base: base + rate * p))
        t0 = time.perf_counter()
        res = detect(prog, model=model, calibration=cal)
        truth = rate / FPS * 60_000
        rec = {
            "kind": kind,
            "truth_ms_per_min": truth,
            "base_frames": round(base, 2),
            "status": res.status,
            "offset_frames": res.offset_frames,
            "confidence": res.confidence,
            "profile": res.sync_profile,
            "drift_ms_per_min": res.drift_ms_per_min,
            "verdict": res.verdict,
            "detect_s": round(time.perf_counter() - t0, 1),
        }
        if kind == "speed-up":
            found = res.drift_ms_per_min is not None and res.sync_profile == "drift"
            rec["right"] = found and abs(res.drift_ms_per_min - truth) <= 0.2 * abs(truth)
        else:  # constant, at the offset the sound was moved by (unchanged, beyond)
            off = res.offset_frames
            rec["right"] = (
                res.sync_profile == "constant" and off is not None and abs(off - base) <= 1
            )

        recs.append(rec)
        print(json.dumps(rec), flush=True)
        prog.unlink(missing_ok=True)
    lines = []
    for kind in kinds:
        want = "a drift at its rate (within 20 %)" if kind == "speed-up" else "constant at it"
        rs = [r for r in recs if r["kind"] == kind]
        k = sum(r["right"] for r in rs)
        wrong = sum(r["status"] == "ok" and not r["right"] for r in rs)
        unsure = sum(r["status"] == "undetermined" for r in rs)
        failed = len(rs) - k - wrong - unsure  # status "error": detect could not read it
        lines.append(
            f"{kind}: {len(rs)} programmes of {args.minutes:g} min; read as {want}: {k} of "
            f"{len(rs)}; answered otherwise {wrong}, undetermined {unsure}"
            + (f", failed {failed}" if failed else "")
        )
    save(Path(args.out), args.name, "\n".join(lines), recs)


if __name__ == "__main__":
    main()
