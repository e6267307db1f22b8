"""How well the sync score tells in-sync real video from broken lip-sync, on dev's real clips:
each clip as is, with another person's audio, with its audio 5 frames late, and with its mouth
frozen; plus dev's real/generated pairs.

    python benchmarks/score.py [--weights W.pt] [--reference weights/sync_reference.json]

Works on the cached lip tracks and log-mel of each clip (see ``sync_reference.py``; a clip
without a cache entry is decoded and tracked), through the same scoring as ``fcnsync score``
(``score.score_extracted``). The degradations, made on those features:
- other audio: the log-mel of a clip of another person (seeded draw, at least as long where
  one is) put in place of the clip's own, from the same start time;
- audio shifted: the log-mel moved 5 frames later (the offset should read -5, the score hold);
- mouth frozen: every frame of each face track given the lips (landmarks and appearance) of
  its first tracked frame, as repeating one video frame would.
Prints the sync score's distribution per case, the ROC AUC of in-sync real clips against each
degradation (on the sync strength; the score is a monotone map of it), and writes
benchmarks/results/score.json and the printout to benchmarks/results/score.txt.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from sync_reference import CACHE, DATA, extracted_of

from fcnsync.cache import read_clips
from fcnsync.calibration import load_calibration
from fcnsync.faces import Track
from fcnsync.model import load_model
from fcnsync.pipeline import Extracted
from fcnsync.score import load_reference, score_extracted

SHIFT_FRAMES = 5
PAIRS = (("wav2lipgfpgan_1", "wav2lipgfpgan_gen_1"), ("ale701_1", "ale701_gen_1"))
RESULTS = Path(__file__).resolve().parent / "results"


def frozen(ex: Extracted) -> Extracted:
    """Every track holds the lips of its first tracked frame."""
    tracks = []
    for tr in ex.tracks:
        times, points, boxes, appearance = tr.arrays()
        i = int(np.argmax(np.isfinite(points[:, 0, 0])))
        n = len(times)
        tracks.append(
            Track(tr.track_id, list(times), [points[i]] * n, list(boxes), [appearance[i]] * n)
        )
    return replace(ex, tracks=tracks)


def with_audio_of(ex: Extracted, other: Extracted) -> Extracted:
    return replace(ex, mel=replace(other.mel, start_s=ex.mel.start_s))


def shifted(ex: Extracted, frames: int) -> Extracted:
    """The audio ``frames`` frames later (the offset reads -frames)."""
    return replace(ex, mel=replace(ex.mel, start_s=ex.mel.start_s + frames / ex.info.fps))


def auc(pos: list[float], neg: list[float]) -> float:
    """P(a positive scores above a negative), ties counted half."""
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--reference", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--shard",
        type=int,
        nargs=2,
        default=(0, 1),
        metavar=("I", "N"),
        help="score every N-th clip from the I-th (run N at once), then --merge N",
    )
    ap.add_argument("--merge", type=int, default=0, metavar="N", help="report N shards' results")
    args = ap.parse_args()
    if args.merge:
        parts = [
            json.loads((RESULTS / f"score.shard{i}.json").read_text()) for i in range(args.merge)
        ]
        rows = sorted((r for p in parts for r in p["clips"]), key=lambda r: r["clip"])
        write(rows, [q for p in parts for q in p["pairs"]], parts[0]["n_real"])
        return
    model, cal = load_model(args.weights), load_calibration()
    ref = load_reference(args.reference)
    clips = read_clips(args.data / "dev")
    real = [c for c in clips if c.kind == "real"]
    ex = {c.path.stem: extracted_of(c.path, args.cache) for c in real}
    person = {c.path.stem: c.person for c in real}
    length = {k: e.mel.end_s - e.mel.start_s for k, e in ex.items()}
    rng = np.random.default_rng(args.seed)
    rows = []
    i_shard, n_shards = args.shard
    for k, (name, e) in enumerate(ex.items()):
        others = [k for k in ex if person[k] != person[name]]
        longer = [k for k in others if length[k] >= length[name]] or others
        other = longer[int(rng.integers(len(longer)))]  # drawn for every clip: shards agree
        if k % n_shards != i_shard:
            continue
        row: dict[str, object] = {"clip": name, "other_audio_of": other}
        for case, variant in (
            ("as_is", e),
            ("other_audio", with_audio_of(e, ex[other])),
            ("shifted", shifted(e, SHIFT_FRAMES)),
            ("frozen", frozen(e)),
        ):
            s = score_extracted(variant, model, cal, ref)
            row[case] = {
                "strength": s.sync_strength,
                "score": s.sync_score,
                "offset_frames": s.offset_frames,
                "status": s.status,
            }
        rows.append(row)
        print(name, *(f"{row[c]['score']}" for c in ("as_is", "other_audio", "shifted", "frozen")))
    pairs = []
    for real_name, gen_name in PAIRS if i_shard == 0 else ():
        found = {c.path.stem: c.path for c in clips if c.path.stem in (real_name, gen_name)}
        if len(found) < 2:
            continue
        got = {
            k: score_extracted(extracted_of(p, args.cache), model, cal, ref)
            for k, p in found.items()
        }
        pairs.append(
            {k: {"score": s.sync_score, "offset_frames": s.offset_frames} for k, s in got.items()}
        )
    if n_shards > 1:
        shard = {"clips": rows, "pairs": pairs, "n_real": len(real)}
        (RESULTS / f"score.shard{i_shard}.json").write_text(json.dumps(shard, indent=1) + "\n")
        return
    write(rows, pairs, len(real))


def write(rows: list[dict], pairs: list[dict], n_real: int) -> None:
    lines = report(rows, pairs, n_real)
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "score.txt").write_text("\n".join(lines) + "\n")
    (RESULTS / "score.json").write_text(
        json.dumps({"clips": rows, "pairs": pairs}, indent=1) + "\n"
    )


def report(rows: list[dict], pairs: list[dict], n_real: int) -> list[str]:
    def values(case: str, key: str) -> list[float]:
        return [r[case][key] for r in rows if r[case][key] is not None]

    lines = [f"dev real clips: {n_real}, with a face scored: {len(values('as_is', 'strength'))}"]
    lines.append("sync score (percentile of real footage) at percentiles 5/25/50/75/95:")
    for case in ("as_is", "other_audio", "shifted", "frozen"):
        q = np.percentile(values(case, "score"), [5, 25, 50, 75, 95])
        lines.append(f"  {case:12s} " + " / ".join(f"{v:5.1f}" for v in q))
    base = values("as_is", "strength")
    lines.append(
        "ROC AUC, in-sync real clips against (sync strength; a file without a score counts lowest):"
    )
    for case in ("other_audio", "shifted", "frozen"):
        neg = [r[case]["strength"] if r[case]["strength"] is not None else -1.0 for r in rows]
        lines.append(f"  {case:12s} {auc(base, neg):.3f}")
    moved = [
        r["shifted"]["offset_frames"] - r["as_is"]["offset_frames"]
        for r in rows
        if r["shifted"]["offset_frames"] is not None and r["as_is"]["offset_frames"] is not None
    ]
    held = [
        r["shifted"]["score"] - r["as_is"]["score"]
        for r in rows
        if r["shifted"]["score"] is not None and r["as_is"]["score"] is not None
    ]
    within = np.mean(np.abs(np.array(moved) + SHIFT_FRAMES) <= 1)
    lines.append(
        f"audio {SHIFT_FRAMES} frames late: offset moved by {np.median(moved):+.2f} frames"
        f" (median of {len(moved)} clips with an offset both ways; {within:.0%} within 1 frame"
        f" of -{SHIFT_FRAMES}); score changed by {np.median(held):+.1f} (median),"
        f" |change| median {np.median(np.abs(held)):.1f}"
    )
    for p in pairs:
        lines.append(
            "pair: "
            + ", ".join(f"{k} score {v['score']} offset {v['offset_frames']}" for k, v in p.items())
        )
    return lines


if __name__ == "__main__":
    main()
