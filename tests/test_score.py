"""Scoring generators: the sync score's order, the array API, folder tables and pairs."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
import torch
from runner import run_cli
from synth import BarTracker, make_clip

from fcnsync.features import AUDIO_PER_FRAME, LIP_POINT_DIMS
from fcnsync.model import FCNSyncNet, ModelConfig, load_model
from fcnsync.pipeline import detect
from fcnsync.score import (
    Score,
    folder_table,
    load_reference,
    pair_up,
    score_arrays,
    score_result,
    summarise_folder,
    summarise_pairs,
    sync_strength,
)

FPS = 25


class OpeningNet(FCNSyncNet):
    """Lag scores of the classical cue, in the network's layout: the z-scored spread of the
    lip points per frame times the z-scored loudness of the audio at each lag. The shipped
    network was trained on real lips and does not read the synthetic bar mouth; this one does,
    so the synthetic cases test the scoring around any network that follows the lips."""

    def __init__(self) -> None:
        super().__init__(ModelConfig(channels=8, embed_dim=4, dropout=0.0))

    def lag_scores(self, lips, valid, audio, max_lag):
        def z(x, w):
            mean = (x * w).sum(-1, keepdim=True) / w.sum(-1, keepdim=True).clamp(min=1)
            sd = (((x - mean) * w) ** 2).sum(-1, keepdim=True) / w.sum(-1, keepdim=True).clamp(
                min=1
            )
            return (x - mean) * w / (sd.sqrt() + 1e-3)

        frames = lips.shape[2]
        opening = z(lips[:, :LIP_POINT_DIMS].std(dim=1), valid)  # (B, T)
        level = audio[:, :-1].mean(dim=1).unflatten(-1, (-1, AUDIO_PER_FRAME)).mean(-1)
        level = z(level, audio[:, -1].unflatten(-1, (-1, AUDIO_PER_FRAME)).amin(-1))
        windows = level.unfold(1, frames, 1)  # (B, 2L + 1, T)
        return torch.tanh(opening[:, None] * windows / 2)


def decoded(path):
    """A file's frames (T, H, W, 3) uint8 and its audio (N,) float32 at its rate."""
    frames, audio, rate = [], [], 0
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
    with av.open(str(path)) as c:
        for f in c.decode(audio=0):
            rate = f.sample_rate
            a = f.to_ndarray()
            audio.append(a.astype(np.float32) / 32768 if a.dtype == np.int16 else a)
    return np.stack(frames), np.concatenate(audio, axis=1).mean(axis=0), rate


@pytest.fixture(scope="module")
def shipped():
    return load_model(), load_reference()


@pytest.fixture(scope="module")
def talk(tmp_path_factory):
    root = tmp_path_factory.mktemp("talk")
    a = make_clip(root / "a.mkv", seconds=5.0, seed=1, acodec="pcm_s16le")
    b = make_clip(root / "b.mkv", seconds=5.0, seed=7, acodec="pcm_s16le")
    return decoded(a), decoded(b), a


def test_matching_audio_beats_another_clips_audio_beats_silence_and_a_frozen_mouth(talk, shipped):
    (frames, audio, rate), (_, other, _), _ = talk
    model, ref = OpeningNet().eval(), shipped[1]

    def score(f, a):
        return score_arrays(f, FPS, a, rate, model=model, reference=ref, tracker=BarTracker())

    hiss = np.random.default_rng(0).normal(0, 1e-3, len(audio)).astype(np.float32)
    matching = score(frames, audio)
    swapped = score(frames, other)
    silent = score(frames, hiss)
    frozen = score(np.repeat(frames[:1], len(frames), axis=0), audio)
    assert matching.sync_strength > swapped.sync_strength > silent.sync_strength
    assert matching.sync_score > swapped.sync_score >= silent.sync_score
    assert frozen.sync_strength is not None and frozen.sync_strength < swapped.sync_strength
    assert silent.sync_score == 0.0 and silent.reason == "no speech"


def test_arrays_give_what_the_file_gives(talk, shipped):
    (frames, audio, rate), _, path = talk
    model, ref = shipped
    from_file = score_result(detect(path, model=model, tracker=BarTracker()), ref)
    in_memory = score_arrays(
        frames, FPS, audio, rate, model=model, reference=ref, tracker=BarTracker()
    )
    a, b = from_file.to_dict(), in_memory.to_dict()
    a.pop("path"), b.pop("path")
    assert a == b
    assert a["sync_strength"] is not None


def test_flat_lag_curve_has_no_strength_and_a_peak_has():
    flat = np.full(31, 0.2)
    peaked = flat.copy()
    peaked[15] = 0.6
    assert sync_strength(flat) == pytest.approx(0.2)  # peak 0.2, no margin
    assert sync_strength(peaked) == pytest.approx(1.0)  # 0.6 + a 0.4 margin
    ref = load_reference()
    assert ref.percentile(sync_strength(peaked)) > 50 > ref.percentile(0.0) == 0.0


def _score(path, score, offset=0.0, status="ok"):
    return Score(path=path, status=status, offset_frames=offset, sync_score=score)


def test_folder_summary_counts_and_interval():
    scores = [_score(f"g/{i}.mp4", 40.0 + i, offset=0.5 * i) for i in range(6)]
    scores.append(Score(path="g/x.mp4", status="error", error="bad"))
    scores.append(Score(path="g/u.mp4", status="undetermined", sync_score=2.0))
    s = summarise_folder("g", scores)
    assert (s.files, s.errors, s.undetermined, s.scored) == (8, 1, 1, 7)
    assert s.in_sync == pytest.approx(3 / 7, abs=1e-3)  # |offset| 0, 0.5, 1 of 7 measured
    assert s.median_abs_offset_frames == pytest.approx(1.25)
    assert s.sync_score == pytest.approx((sum(40.0 + i for i in range(6)) + 2.0) / 7, abs=1e-3)
    assert s.ci_low < s.sync_score < s.ci_high
    columns, rows = folder_table([s])
    assert rows[0][columns.index("in sync ±1 frame (%)")] == pytest.approx(42.9)


def test_pairs_match_names_and_give_a_paired_interval():
    ours = [
        _score(f"ours/{n}.mp4", v) for n, v in (("a", 30.0), ("b", 50.0), ("c", 20.0), ("z", 9.0))
    ]
    real = [_score(f"real/{n}.avi", v) for n, v in (("a", 60.0), ("b", 70.0), ("c", 55.0))]
    pairs, unpaired = pair_up(ours, "ours", real, "real")
    assert [p.name for p in pairs] == ["a", "b", "c"] and unpaired == 1
    assert [p.difference for p in pairs] == [-30.0, -20.0, -35.0]
    s = summarise_pairs("ours", "real", pairs, unpaired)
    assert s.pairs == 3 and s.difference == pytest.approx(-28.333, abs=1e-3)
    assert s.ci_low <= s.difference <= s.ci_high < 0 and s.higher == 0.0


def test_cli_three_folders_one_table_and_pairs(tmp_path, tiny_checkpoint):
    for folder in ("real", "gen1", "gen2"):
        (tmp_path / folder).mkdir()
        make_clip(tmp_path / folder / "one.mp4", seconds=2.0)
    folders = [str(tmp_path / f) for f in ("real", "gen1", "gen2")]
    out = tmp_path / "scores.jsonl"
    r = run_cli(
        ["score", *folders, "--format", "markdown", "--weights", str(tiny_checkpoint), "-j", "1"]
        + ["-o", str(out)]
    )
    assert r.returncode == 0, r.stderr
    table = [line for line in r.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| folder | files | undetermined | errors |")
    assert [row.split(" | ")[0][2:] for row in table[1:]] == folders
    assert all(row.split(" | ")[1:3] == ["1", "1"] for row in table[1:])  # a bar is no face
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3 and all(rec["sync_score"] is None for rec in records)
    r = run_cli(
        ["score", folders[1], "--pairs", folders[0], "--format", "csv"]
        + ["--weights", str(tiny_checkpoint), "-j", "1"]
    )
    assert r.returncode == 0, r.stderr
    assert "file,sync score,against's score,difference" in r.stdout
    assert f"{folders[1]},{folders[0]},0,1," in r.stdout  # no face: no pair with two scores


def test_cli_score_empty_folder_is_a_usage_error(tmp_path):
    r = run_cli(["score", str(tmp_path)])
    assert r.returncode == 2 and r.stderr.strip().startswith("Error:")
    assert "Traceback" not in r.stderr


def test_arrays_that_are_not_video_raise_one_clear_error(tiny_model):
    from fcnsync.errors import MediaError

    wav = np.zeros(16000, np.float32)
    with pytest.raises(MediaError, match="uint8 RGB"):
        score_arrays(np.zeros((10, 8, 8), np.float32), FPS, wav, 16000, model=tiny_model)
    with pytest.raises(MediaError, match="frame rate"):
        score_arrays(np.zeros((10, 8, 8, 3), np.uint8), 0.5, wav, 16000, model=tiny_model)


def test_shipped_reference_was_made_with_the_shipped_weights():
    """New weights need a new reference: python benchmarks/sync_reference.py."""
    from fcnsync.model import sha256_of, shipped_weights_path

    ref = load_reference()
    assert ref.weights_sha256 == sha256_of(shipped_weights_path())
    assert ref.clips == len(ref.strengths) >= 10 and ref.strengths == sorted(ref.strengths)
