"""The network and its application to long sequences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fcnsync.errors import ModelError
from fcnsync.features import AUDIO_PER_FRAME, LIP_DIMS, N_MELS
from fcnsync.inference import CHUNK_FRAMES, Sequence, audio_pad_frames, score_sequences
from fcnsync.model import correlate, load_model


def _sequence(n: int, max_lag: int, seed: int = 0) -> Sequence:
    rng = np.random.default_rng(seed)
    pad = audio_pad_frames(max_lag)
    audio = rng.normal(0, 1, ((n + 2 * pad) * AUDIO_PER_FRAME, N_MELS + 1)).astype(np.float32)
    audio[:, -1] = 1.0
    return Sequence(
        lips=rng.normal(0, 1, (n, LIP_DIMS)).astype(np.float32),
        valid=rng.random(n) > 0.1,
        audio=audio,
        pad=pad,
    )


def test_scores_do_not_depend_on_batch_size_or_chunking(tiny_model):
    seqs = [_sequence(CHUNK_FRAMES * 2 + 37, 15, s) for s in range(3)] + [_sequence(40, 15, 9)]
    a = score_sequences(tiny_model, seqs, 15, batch_size=1)
    b = score_sequences(tiny_model, seqs, 15, batch_size=7)
    for x, y in zip(a, b, strict=True):
        assert x.shape[0] == 31
        assert np.allclose(x, y, atol=1e-5)
    # one pass over the whole sequence, no chunks, gives the same scores (but at its first and
    # last frames, where the single pass sees zero padding instead of the audio around it)
    s = seqs[0]
    with torch.no_grad():
        whole = tiny_model.lag_scores(
            torch.from_numpy(s.lips).T[None],
            torch.from_numpy(s.valid.astype(np.float32))[None],
            torch.from_numpy(s.audio[(s.pad - 15) * 4 : (s.pad + len(s.lips) + 15) * 4]).T[None],
            15,
        )[0].numpy()
    assert np.allclose(a[0][:, 8:-8], whole[:, 8:-8], atol=1e-4)


def test_moving_the_audio_by_k_frames_moves_the_scores_by_k_lags(tiny_model):
    s = _sequence(120, 15)
    k = 3
    moved_audio = np.roll(s.audio, -k * AUDIO_PER_FRAME, axis=0)  # position j: audio of j + k
    moved = Sequence(s.lips, s.valid, moved_audio, s.pad)
    a, b = score_sequences(tiny_model, [s, moved], 15)
    # lag l of the moved audio is lag l + k of the original
    assert np.allclose(b[: 31 - k], a[k:], atol=1e-4)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="no checkpoint"):
        load_model(tmp_path / "nothing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a valid fcnsync checkpoint"):
        load_model(bad)


def test_checkpoint_rebuilds_its_own_model(tiny_checkpoint, tiny_model):
    model = load_model(tiny_checkpoint, device="cpu")
    assert model.cfg.channels == 16
    for p, q in zip(model.parameters(), tiny_model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_shipped_weights_load_and_a_damaged_copy_is_refused(tmp_path, monkeypatch):
    import fcnsync.model as model_module

    model = load_model(device="cpu")  # the checkpoint installed with the package
    assert model.cfg.embed_dim > 0
    damaged = tmp_path / model_module.DEFAULT_WEIGHTS
    data = bytearray(model_module.shipped_weights_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(model_module, "shipped_weights_path", lambda name=None: damaged)
    with pytest.raises(ModelError, match="SHA-256"):
        load_model(device="cpu")


def test_an_ensemble_scores_the_mean_of_its_members_and_survives_a_checkpoint(tmp_path):
    from fcnsync.model import FCNSyncNet, ModelConfig, checkpoint_dict, ensemble

    members = []
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        members.append(FCNSyncNet(ModelConfig(channels=16, embed_dim=8, dropout=0.0)).eval())
    both = ensemble(members).eval()
    s = _sequence(60, 15)
    (got,) = score_sequences(both, [s], 15)
    each = [score_sequences(m, [s], 15)[0] for m in members]
    assert np.allclose(got, np.mean(each, axis=0), atol=1e-5)
    assert not np.allclose(each[0], each[1], atol=1e-3)  # the members do differ
    scales = [float(m.log_scale.detach().exp()) for m in members]
    assert both.logit_scale == pytest.approx(np.mean(scales))

    path = tmp_path / "ensemble.pt"
    torch.save(checkpoint_dict(both), path)
    loaded = load_model(path, device="cpu")
    assert loaded.cfg.members == 3
    assert np.allclose(score_sequences(loaded, [s], 15)[0], got, atol=1e-6)


def test_a_mirrored_ensemble_scores_a_face_and_its_mirror_image_alike(tmp_path):
    from fcnsync.features import mirror_lips
    from fcnsync.model import FCNSyncNet, ModelConfig, checkpoint_dict, ensemble

    members = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        members.append(FCNSyncNet(ModelConfig(channels=16, embed_dim=8, dropout=0.0)).eval())
    plain, mirrored = ensemble(members).eval(), ensemble(members, mirror=True).eval()
    s = _sequence(60, 15)
    flipped = Sequence(mirror_lips(torch.from_numpy(s.lips)).numpy(), s.valid, s.audio, s.pad)
    (got,) = score_sequences(mirrored, [s], 15)
    (as_plain, of_mirror) = score_sequences(plain, [s, flipped], 15)
    assert not np.allclose(as_plain, of_mirror, atol=1e-3)  # a plain network tells them apart
    assert np.allclose(got, (as_plain + of_mirror) / 2, atol=1e-5)  # the mean of both views
    assert np.allclose(score_sequences(mirrored, [flipped], 15)[0], got, atol=1e-5)
    path = tmp_path / "mirrored.pt"
    torch.save(checkpoint_dict(mirrored), path)
    assert load_model(path, device="cpu").cfg.mirror  # the checkpoint keeps the setting


def test_an_ensemble_refuses_members_of_different_shapes():
    from fcnsync.model import FCNSyncNet, ModelConfig, ensemble

    small = FCNSyncNet(ModelConfig(channels=16, embed_dim=8))
    with pytest.raises(ModelError, match="one architecture"):
        ensemble([small, FCNSyncNet(ModelConfig(channels=32, embed_dim=8))])


def test_a_checkpoint_made_for_other_lip_features_is_refused_with_what_to_do(tmp_path):
    from fcnsync.features import LIP_DIMS
    from fcnsync.model import FCNSyncNet, ModelConfig, checkpoint_dict, load_model

    older = FCNSyncNet(ModelConfig(channels=8, embed_dim=4, lip_dims=LIP_DIMS - 3))
    path = tmp_path / "older.pt"
    torch.save(checkpoint_dict(older), path)
    with pytest.raises(ModelError, match=f"trained on {LIP_DIMS - 3} lip features.*retrain"):
        load_model(path, device="cpu")


def test_a_network_without_the_mouth_patch_reads_the_features_before_it(tmp_path):
    from fcnsync.features import LIP_DIMS, PATCH_FREE_DIMS
    from fcnsync.model import FCNSyncNet, ModelConfig, checkpoint_dict, load_model

    torch.manual_seed(0)
    plain = FCNSyncNet(ModelConfig(channels=8, embed_dim=4, lip_dims=PATCH_FREE_DIMS, patch_dims=0))
    state = checkpoint_dict(plain)
    del state["config"]["patch_dims"]  # as written before the patch existed (fcnsync-v8)
    path = tmp_path / "plain.pt"
    torch.save(state, path)
    loaded = load_model(path, device="cpu")
    assert loaded.cfg.patch_dims == 0 and loaded.cfg.lip_dims == PATCH_FREE_DIMS
    rng = np.random.default_rng(0)
    n = 40
    seq = Sequence(
        lips=rng.normal(0, 1, (n, LIP_DIMS)).astype(np.float32),
        valid=np.ones(n, bool),
        audio=rng.normal(0, 1, (AUDIO_PER_FRAME * (n + 2 * 40), N_MELS + 1)).astype(np.float32),
        pad=40,
    )
    other_patch = Sequence(seq.lips.copy(), seq.valid, seq.audio, seq.pad)
    other_patch.lips[:, PATCH_FREE_DIMS:] = rng.normal(0, 1, (n, LIP_DIMS - PATCH_FREE_DIMS))
    a, b = score_sequences(loaded, [seq, other_patch], 15)
    assert np.allclose(a, b)  # the patch is not read
    with_patch = FCNSyncNet(ModelConfig(channels=8, embed_dim=4)).eval()
    a, b = score_sequences(with_patch, [seq, other_patch], 15)
    assert not np.allclose(a, b, atol=1e-4)  # the default network reads it


def test_a_convolutional_patch_reader_sees_each_frame_alone_and_survives_a_checkpoint(tmp_path):
    from fcnsync.features import LIP_DIMS, PATCH_FREE_DIMS
    from fcnsync.model import FCNSyncNet, ModelConfig, checkpoint_dict, load_model

    torch.manual_seed(0)
    net = FCNSyncNet(ModelConfig(channels=8, embed_dim=4, patch_conv=4)).eval()
    path = tmp_path / "conv.pt"
    torch.save(checkpoint_dict(net), path)
    loaded = load_model(path, device="cpu")
    assert loaded.cfg.patch_conv == 4
    rng = np.random.default_rng(1)
    seq = _sequence(60, 15)
    seq.valid[:] = True
    changed = Sequence(seq.lips.copy(), seq.valid, seq.audio, seq.pad)
    changed.lips[30, PATCH_FREE_DIMS:] = rng.normal(0, 1, LIP_DIMS - PATCH_FREE_DIMS)
    a, b = score_sequences(loaded, [seq, changed], 15)
    assert np.allclose(a, score_sequences(net, [seq], 15)[0], atol=1e-6)
    differs = np.flatnonzero(np.abs(a - b).max(axis=0) > 1e-6)
    # one frame's patch reaches only the frames the visual convolutions span around it
    assert len(differs) and differs.min() >= 30 - 12 and differs.max() <= 30 + 12


def test_correlate_gives_the_same_scores_with_and_without_a_gradient():
    gen = torch.Generator().manual_seed(0)
    lips = torch.randn(3, 8, 40, generator=gen)
    audio = torch.randn(3, 8, 40 + 2 * 5, generator=gen)
    windows = audio.unfold(2, 40, 1)  # (B, D, 2 * 5 + 1, T), as audio_windows lays them out
    with torch.no_grad():
        scored = correlate(lips, windows)  # lag by lag
    trained = correlate(lips.requires_grad_(), windows)  # the einsum
    assert scored.shape == (3, 11, 40)
    assert torch.allclose(scored, trained.detach(), atol=1e-5)
    # entry [b, l, t] is lips frame t against the audio of frame t + l - 5
    assert torch.isclose(scored[1, 7, 12], (lips[1, :, 12] * audio[1, :, 12 + 7]).sum(), atol=1e-5)
