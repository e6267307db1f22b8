"""Training: a short ensemble run on synthetic clips, joined into one checkpoint."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from synth import BarTracker, make_clip

from fcnsync.dataset import tracks_from_extracted
from fcnsync.errors import FcnsyncError
from fcnsync.features import AUDIO_PER_FRAME, mirror_lips
from fcnsync.inference import Sequence, audio_pad_frames, score_sequences
from fcnsync.model import load_model
from fcnsync.pipeline import extract
from fcnsync.train import TrainConfig, realign, screen, train_ensemble


def _tracks(tmp_path):
    tracks = []
    for seed in range(2):
        path = make_clip(tmp_path / f"c{seed}.mkv", seconds=4.0, seed=seed)
        tracks += tracks_from_extracted(extract(path, BarTracker()), pad=40)
    return tracks


def _tiny(**kw) -> TrainConfig:
    return TrainConfig(
        steps=4,
        screen_steps=2,
        save_every=2,
        batch_size=4,
        threads=1,
        model={"channels": 8, "embed_dim": 4, "dropout": 0.0},
        **kw,
    )


def test_an_ensemble_run_trains_each_seed_and_joins_them_into_one_checkpoint(tmp_path):
    tracks = _tracks(tmp_path)
    # a 2-step screening model knows nothing yet: keep every clip
    cfg = _tiny(seed=7, members=2, screen_max_offset=100.0)
    assert len(tracks) == 2
    out = tmp_path / "run"
    path = train_ensemble(tracks, out, cfg)
    assert path == out / "ensemble.pt"
    joined = load_model(path, device="cpu")
    members = [load_model(out / f"member{i}" / "step000004.pt", device="cpu") for i in (0, 1)]
    assert joined.cfg.members == 2
    assert [m.meta["train"]["seed"] for m in members] == [7, 8]  # type: ignore[index]
    assert not all(  # the seeds made two different networks
        torch.equal(p, q)
        for p, q in zip(members[0].parameters(), members[1].parameters(), strict=True)
    )
    rng = np.random.default_rng(0)
    pad, n = audio_pad_frames(15), 40
    seq = Sequence(
        lips=rng.normal(0, 1, (n, joined.cfg.lip_dims)).astype(np.float32),
        valid=np.ones(n, bool),
        audio=rng.normal(0, 1, ((n + 2 * pad) * 4, joined.cfg.audio_dims)).astype(np.float32),
        pad=pad,
    )
    # networks trained on mirrored faces are joined to score each face as seen and mirrored
    assert joined.cfg.mirror and not any(m.cfg.mirror for m in members)
    flipped = Sequence(mirror_lips(torch.from_numpy(seq.lips)).numpy(), seq.valid, seq.audio, pad)
    each = [score_sequences(m, [s], 15)[0] for m in members for s in (seq, flipped)]
    assert np.allclose(score_sequences(joined, [seq], 15)[0], np.mean(each, axis=0), atol=1e-5)

    # a second call finds every member finished: it trains nothing and writes the same file
    before = {p: p.stat().st_mtime_ns for p in out.rglob("step*.pt")}
    train_ensemble(tracks, out, cfg)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("step*.pt")} == before


def test_training_with_every_clip_set_aside_is_a_clear_error(tmp_path):
    # every clip is "off sync", and the rule sets such clips aside
    cfg = _tiny(members=1, screen_max_offset=-1.0, screen_rule="set_aside")
    with pytest.raises(FcnsyncError, match="nothing is left to train on"):
        train_ensemble(_tracks(tmp_path), tmp_path / "run", cfg)


def test_readings_from_another_model_screen_the_labels_without_a_first_model(tmp_path):
    import json

    tracks = _tracks(tmp_path)
    readings = tmp_path / "readings.json"
    a, b = (tr.name for tr in tracks)
    readings.write_text(json.dumps({a: 2.0, b: 9.0, "other.mp4": 0.0}))
    cfg = _tiny(members=1, screen_readings=str(readings), screen_max_offset=0.0)
    out = tmp_path / "run"
    train_ensemble(tracks, out, cfg)
    assert not (out / "screen").exists()  # no first model was trained
    assert json.loads((out / "screen_offsets.json").read_text()) == {a: 2.0, b: 9.0}
    assert json.loads((out / "realigned.json").read_text()) == {a: 2.0}
    assert json.loads((out / "excluded.json").read_text()) == {b: 9.0}  # beyond 4 frames

    readings.write_text(json.dumps({a: 2.0}))
    with pytest.raises(FcnsyncError, match="lack 1 of 2 clips"):
        train_ensemble(tracks, tmp_path / "run2", cfg)


def test_training_windows_are_mirrored_as_often_as_asked():
    from fcnsync.features import LIP_DIMS
    from fcnsync.train import _augment_lips

    lips = torch.randn(400, 9, LIP_DIMS, generator=torch.Generator().manual_seed(0))

    def augmented(mirror: float) -> torch.Tensor:  # the same random draws but the mirror's
        return _augment_lips(lips, torch.Generator().manual_seed(1), 0.25, mirror)

    plain, flipped = augmented(0.0), augmented(1.0)
    assert torch.allclose(flipped, mirror_lips(plain))  # every window mirrored
    half = augmented(0.5)
    mirrored = torch.isclose(half, mirror_lips(plain)).all(dim=(1, 2))
    assert torch.equal(mirrored, ~torch.isclose(half, plain).all(dim=(1, 2)))  # one or the other
    assert 0.4 < mirrored.float().mean() < 0.6


def test_the_clip_loss_pairs_each_frame_with_its_own_audio_at_the_true_lag():
    from torch import nn

    from fcnsync.model import FCNSyncNet, ModelConfig
    from fcnsync.train import loss_fn

    b, t, lag = 6, 3, 5
    codes = torch.eye(b)  # each window's own embedding, apart from every other window's
    target = torch.tensor([0, 2, 4, 7, 9, 10])  # lag index per window, of 2 * lag + 1

    # a window's lips embed as its code on every frame, but for two frames without a face, which
    # embed as nothing: they must not count
    embedded = codes[:, :, None].repeat(1, 1, t)
    embedded[0, :, 0] = embedded[1, :, 2] = 0.0
    valid = torch.ones(b, t)
    valid[0, 0] = valid[1, 2] = 0.0

    class Lips(nn.Module):
        def forward(self, lips: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
            return embedded

    class Audio(nn.Module):  # silence, except the window's code where its true lag puts it
        def forward(self, audio: torch.Tensor) -> torch.Tensor:
            out = torch.zeros((b, b, t + 2 * lag))
            for i, k in enumerate(target.tolist()):
                out[i, :, k : k + t] = codes[i, :, None]
            return out

    model = FCNSyncNet(ModelConfig(channels=8, embed_dim=b))
    model.visual, model.audio = Lips(), Audio()
    lips = torch.zeros(b, t, model.cfg.lip_dims)
    audio = torch.zeros(b, 4 * (t + 2 * lag), model.cfg.audio_dims)

    def clip_term(tgt: torch.Tensor) -> float:
        with_clip, _ = loss_fn(model, lips, valid, audio, tgt, lag, 0.0, clip_weight=1.0)
        alone, _ = loss_fn(model, lips, valid, audio, tgt, lag, 0.0, clip_weight=0.0)
        return float((with_clip - alone).detach())

    assert clip_term(target) < 0.01  # each frame's own audio stands out of the batch's
    told_wrong = (target + lag) % (2 * lag + 1)  # lags that miss every frame of the code
    assert clip_term(told_wrong) == pytest.approx(math.log(b), abs=0.01)  # no window stands out


def test_training_windows_hold_their_audio_at_the_target_lag():
    from types import SimpleNamespace

    from fcnsync.features import AUDIO_PER_FRAME, LIP_DIMS, N_MELS
    from fcnsync.train import Sampler

    # one clip whose lips and audio carry the same random signal, frame by frame
    n, pad, window = 200, 40, 15
    x = np.random.default_rng(0).standard_normal(n + 2 * pad)
    lips = np.zeros((n, LIP_DIMS), np.float32)
    lips[:, 0] = x[pad : pad + n]
    audio_t = (np.arange(AUDIO_PER_FRAME * (n + 2 * pad)) + 0.5) / AUDIO_PER_FRAME - 0.5
    audio = np.zeros((len(audio_t), N_MELS + 1), np.float32)
    audio[:, 0] = np.interp(audio_t, np.arange(n + 2 * pad), x)
    seq = Sequence(lips=lips, valid=np.ones(n, bool), audio=audio, pad=pad)
    track = SimpleNamespace(person="p", seq=seq)
    cfg = TrainConfig(batch_size=32, speed_jitter=0.0, seed=3)
    got_lips, _, got_audio, target = Sampler([track], cfg).batch(window)  # type: ignore[list-item]

    per_frame = got_audio[:, :, 0].reshape(32, -1, AUDIO_PER_FRAME).mean(dim=2)  # (B, W + 2L)
    for k in range(32):
        misfit = [
            float((got_lips[k, :, 0] - per_frame[k, lag : lag + window]).square().mean())
            for lag in range(2 * cfg.max_lag + 1)
        ]
        assert int(np.argmin(misfit)) == int(target[k])  # the target lag is where audio fits
        assert misfit[int(target[k])] < 0.3  # other lags: about 2
    lag_sign = np.sign(target.numpy() - cfg.max_lag)
    assert (lag_sign > 0).any() and (lag_sign < 0).any()


def test_training_windows_can_be_drawn_where_there_is_speech_only():
    from types import SimpleNamespace

    from fcnsync.features import AUDIO_PER_FRAME, LIP_DIMS, N_MELS
    from fcnsync.train import Sampler

    # one clip whose first half is silent; the lips carry each frame's index
    n, pad, window = 200, 40, 10
    lips = np.zeros((n, LIP_DIMS), np.float32)
    lips[:, 0] = np.arange(n)
    audio = np.zeros((AUDIO_PER_FRAME * (n + 2 * pad), N_MELS + 1), np.float32)
    seq = Sequence(lips=lips, valid=np.ones(n, bool), audio=audio, pad=pad)
    level = np.where(np.arange(n) < n // 2, -90.0, -20.0).astype(np.float32)
    track = SimpleNamespace(person="p", seq=seq, level_db=level)

    def first_frames(share: float) -> np.ndarray:
        cfg = TrainConfig(batch_size=64, speed_jitter=0.0, seed=1, speech_share=share)
        got = Sampler([track], cfg).batch(window)[0]  # type: ignore[list-item]
        return got[:, 0, 0].numpy()

    assert (first_frames(0.0) < n // 2 - window).any()  # anywhere there is a face
    # at least 6 of the 10 frames audible: no window starts more than 4 frames before speech
    assert (first_frames(0.6) >= n // 2 - 4 - 1).all()


def test_smoothed_lag_targets_spread_over_the_neighbouring_lags():
    from fcnsync.train import lag_targets

    target = torch.tensor([0, 15, 30])
    assert torch.equal(lag_targets(target, 31, 0.0), target)  # the true lag alone
    soft = lag_targets(target, 31, 0.7)
    assert soft.shape == (3, 31) and torch.allclose(soft.sum(dim=1), torch.ones(3))
    assert torch.equal(soft.argmax(dim=1), target)
    assert torch.allclose(soft[1, 14], soft[1, 16])  # symmetric about the true lag
    assert 0.1 < float(soft[1, 14]) < float(soft[1, 15])
    assert float(soft[1, 15 - 3 : 15 + 4].sum()) > 0.999  # nothing beyond 3 frames


def test_screening_rules_set_aside_realign_or_keep_clips_read_against_the_in_sync_reference():
    found = {"a": 0.7, "b": 2.9, "c": -1.0, "d": 7.5, "e": -4.0}
    # read against zero: b, d and e are more than 1.5 frames off, c is not
    excluded, realigned = screen(found, TrainConfig(screen_rule="set_aside"))
    assert set(excluded) == {"b", "d", "e"} and realigned == {}
    excluded, realigned = screen(found, TrainConfig(screen_rule="realign"))
    assert realigned == {"b": 2.9, "e": -4.0} and set(excluded) == {"d"}
    assert screen(found, TrainConfig(screen_rule="keep")) == ({}, {})
    # read against a first model that reads in-sync clips at +0.7: c is off, e is beyond 4
    excluded, realigned = screen(found, TrainConfig(screen_rule="realign"), bias=0.7)
    assert realigned == {"b": 2.2, "c": -1.7} and set(excluded) == {"d", "e"}
    with pytest.raises(ValueError, match="screen_rule"):
        screen(found, TrainConfig(screen_rule="drop"))


def test_realigning_a_clip_moves_its_audio_by_the_given_frames(tmp_path):
    (tr,) = tracks_from_extracted(
        extract(make_clip(tmp_path / "c.mkv", seconds=3.0, seed=1), BarTracker()), pad=40
    )
    moved = realign(tr, 3.0)  # the audio now leads by 3 frames more: row j holds frame j + 3's
    a, b = tr.seq.audio, moved.seq.audio
    k = 3 * AUDIO_PER_FRAME
    assert b.shape == a.shape and np.array_equal(moved.seq.lips, tr.seq.lips)
    assert np.allclose(b[: -k - 8], a[k:-8], atol=1e-4)
    assert not np.allclose(b[: -k - 8], a[: -k - 8], atol=1e-2)
    # the level per frame moves with it, so that windows drawn for speech hold speech
    la, lb = tr.level_db, moved.level_db
    assert lb.shape == la.shape and np.allclose(lb[:-3], la[3:], atol=0.5)
    assert not np.allclose(lb[:-3], la[:-3], atol=0.5)
