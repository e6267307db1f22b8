"""Round trip of `fcnsync fix` on offsets that change within a file: programmes made as real
media files from the dev clips (each clip's picture and sound decoded, its sound first put in
sync by the clip's own measured offset, clips joined at a scene cut), their sound then moved
with a known profile (a drift of +-40 or +-80 ms per minute, or a step of +-4 or +-8 frames at a
random join or mid-clip with at least 10 s on each side), encoded as H.264 + AAC mp4 at 25 fps.
Each is given to ``fix_file`` (which measures it, undoes a drift or steps, and measures its
output again). Prints how many were measured with the right kind of profile, how many fix
accepted, and how many of those came out constant within +-1 frame.

    python benchmarks/drift_fix.py [--per-kind 8 --minutes 3] [--out DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

import fcnsync
from fcnsync.errors import FcnsyncError
from fcnsync.faces import silence_native_stderr
from fcnsync.fix import fix_file
from fcnsync.pipeline import detect

DATA = Path(__file__).resolve().parents[2] / "shared" / "avdata"
FPS = 25
RATE = 16000
SIZE = (640, 360)
MIN_SIDE_S = 10.0


def clip_media(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """The clip's frames on a 25 fps grid (letterboxed to SIZE, nearest frame in time) and its
    sound (mono, RATE), both from the first video frame's time."""
    frames, times = [], []
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        for f in c.decode(v):
            if f.time is None:
                continue
            scale = min(SIZE[0] / f.width, SIZE[1] / f.height)
            w, h = int(f.width * scale) // 2 * 2, int(f.height * scale) // 2 * 2
            img = f.to_ndarray(width=w, height=h, format="rgb24")
            canvas = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
            y0, x0 = (SIZE[1] - h) // 2, (SIZE[0] - w) // 2
            canvas[y0 : y0 + h, x0 : x0 + w] = img
            frames.append(canvas)
            times.append(float(f.time))
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        res = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        chunks, a0 = [], None
        for f in c.decode(a):
            if a0 is None and f.time is not None:
                a0 = float(f.time)
            chunks += [r.to_ndarray()[0] for r in res.resample(f)]
    sound = np.concatenate(chunks)
    t_v = np.array(times) - times[0]
    n = int(t_v[-1] * FPS) + 1
    pick = np.searchsorted(t_v, np.arange(n) / FPS - 0.5 / FPS)
    grid = [frames[min(i, len(frames) - 1)] for i in pick]
    # sound from the first video frame's time
    lead = int(round(((a0 or 0.0) - times[0]) * RATE))
    sound = np.pad(sound, (lead, 0)) if lead > 0 else sound[-lead:]
    return grid, sound


def make_programme(
    clips: list[tuple[Path, float]], order: np.ndarray, minutes: float, cache: dict
) -> tuple[list[np.ndarray], np.ndarray, list[float], list[float]]:
    """Frames and in-sync sound of clips in ``order`` up to ``minutes``; joins and middles."""
    frames: list[np.ndarray] = []
    sound: list[np.ndarray] = []
    joins, mids = [], []
    k = 0
    while len(frames) < minutes * 60 * FPS:
        path, own_s = clips[order[k % len(order)]]
        k += 1
        if path not in cache:
            cache[path] = clip_media(path)
        f, s = cache[path]
        t0 = len(frames) / FPS
        if frames:
            joins.append(t0)
        mids.append(t0 + len(f) / FPS / 2)
        # put the clip's sound in sync: it leads by own_s, so delay it by that much
        shift = int(round(own_s * RATE))
        s = np.pad(s, (shift, 0)) if shift > 0 else s[-shift:]
        want = int(round(len(f) / FPS * RATE))
        s = np.pad(s[:want], (0, max(0, want - len(s))))
        frames += f
        sound.append(s)
    return frames, np.concatenate(sound), joins, mids


def write(path: Path, frames: list[np.ndarray], audio: np.ndarray) -> None:
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=FPS, options={"crf": "23", "preset": "veryfast"})
        v.width, v.height, v.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        a = out.add_stream("aac", rate=RATE)
        a.layout = "mono"
        for i, img in enumerate(frames):
            fr = av.VideoFrame.from_ndarray(img, format="rgb24")
            fr.pts, fr.time_base = i, Fraction(1, FPS)
            for p in v.encode(fr):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        for s0 in range(0, len(audio), 1024):
            block = np.ascontiguousarray(audio[None, s0 : s0 + 1024], np.float32)
            fr = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
            fr.sample_rate, fr.pts, fr.time_base = RATE, s0, Fraction(1, RATE)
            for p in a.encode(fr):
                out.mux(p)
        for p in a.encode():
            out.mux(p)


def moved(sound: np.ndarray, lead_frames) -> np.ndarray:  # noqa: ANN001
    """The sound heard when it leads its picture by ``lead_frames(p)`` at picture time p: at
    time tau the sound of the picture p with p - lead(p) = tau (solved by iteration)."""
    tau = np.arange(len(sound)) / RATE
    p = tau.copy()
    for _ in range(4):
        p = tau + lead_frames(p) / FPS
    return np.interp(p * RATE, np.arange(len(sound)), sound, left=0.0, right=0.0).astype(np.float32)


def confident_clips(
    model: fcnsync.FCNSyncNet, cal: fcnsync.Calibration
) -> list[tuple[Path, float]]:
    """The dev clips of 3 s or more that the model reads with confidence as constant, with
    their own offset in seconds (as ``benchmarks/drift.py`` keeps them)."""
    rows = [
        r
        for r in csv.DictReader(open(DATA / "manifest.tsv"), delimiter="\t")
        if r["split"] == "dev" and r["kind"] == "real" and float(r["duration_s"]) >= 3
    ]
    clips = []
    for r in rows:
        res = detect(DATA / r["file"], model=model, calibration=cal)
        if res.status == "ok" and res.offset_ms is not None and res.sync_profile == "constant":
            clips.append((DATA / r["file"], res.offset_ms / 1000.0))
    print(f"{len(clips)} dev clips read with confidence", flush=True)
    return clips


def save(out: Path, name: str, text: str, recs: list) -> None:
    """Print the summary and write it (``name``.txt) and the records (``name``.json) to ``out``."""
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.txt").write_text(text + "\n")
    (out / f"{name}.json").write_text(json.dumps(recs, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-kind", type=int, default=8, help="programmes per kind (drift, steps)")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--keep", help="keep the programmes and their fixed copies in this folder")
    args = ap.parse_args()
    silence_native_stderr()
    model, cal = fcnsync.load_model(device="cpu"), fcnsync.load_calibration()
    clips = confident_clips(model, cal)
    rng = np.random.default_rng(args.seed)
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="fcnsync-drift-fix-"))
    tmp.mkdir(parents=True, exist_ok=True)
    cache: dict = {}
    recs = []
    plan = [("drift", s * d) for d in (40, 80) for s in (1, -1)] + [
        ("steps", s * d) for d in (4, 8) for s in (1, -1)
    ]
    for i in range(args.per_kind * 2):
        kind, size = plan[(i // 2) % 4 + 4 * (i % 2)]
        base = float(rng.uniform(-3, 3))
        frames, sound, joins, mids = make_programme(
            clips, rng.permutation(len(clips)), args.minutes, cache
        )
        total = len(frames) / FPS
        if kind == "drift":
            rate = size / 1000 * FPS / 60  # frames per second

            def lead(p, rate=rate, base=base):  # noqa: ANN001, ANN202
                return base + rate * p

            truth = {"rate_ms_per_min": size}
        else:
            where = "cut" if rng.random() < 0.5 else "mid"
            places = [t for t in (joins if where == "cut" else mids) if MIN_SIDE_S <= t]
            places = [t for t in places if t <= total - MIN_SIDE_S]
            t_c = float(rng.choice(places))

            def lead(p, t_c=t_c, size=size, base=base):  # noqa: ANN001, ANN202
                return base + size * (p >= t_c)

            truth = {"step_frames": size, "change_s": t_c, "where": where}
        prog = tmp / f"prog{i}-{kind}.mp4"
        write(prog, frames, moved(sound, lead))
        rec = {"kind": kind, "base_frames": base, "seconds": total, **truth}
        t0 = time.perf_counter()
        try:
            res = fix_file(prog, tmp / f"prog{i}-{kind}.fixed.mp4", model, cal)
            rec.update(
                accepted=True,
                profile_before=res.profile_before,
                segments=res.applied_segments,
                residual_frames=res.residual_frames,
                residual_profile=res.residual_profile,
                verified=res.verified,
                method=res.method,
            )
        except FcnsyncError as exc:
            rec.update(accepted=False, refused=str(exc))
        rec["fix_s"] = round(time.perf_counter() - t0, 1)
        recs.append(rec)
        print(json.dumps(rec), flush=True)
        if not args.keep:
            for f in (prog, tmp / f"prog{i}-{kind}.fixed.mp4"):
                f.unlink(missing_ok=True)
    lines = []
    for kind in ("drift", "steps"):
        rs = [r for r in recs if r["kind"] == kind]
        if not rs:
            continue
        acc = [r for r in rs if r["accepted"]]
        right = [r for r in acc if r["profile_before"] == kind]
        ok = [r for r in acc if r["verified"]]
        lines.append(
            f"{kind}: {len(rs)} programmes of {args.minutes:g} min; fix accepted {len(acc)} "
            f"(measured as {kind}: {len(right)}); constant within +-1 frame afterwards: "
            f"{len(ok)} of {len(acc)}"
        )
    save(Path(args.out), "drift_fix", "\n".join(lines), recs)


if __name__ == "__main__":
    main()
