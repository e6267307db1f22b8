"""Training the FCN-SyncNet from a folder of talking-face clips assumed to be in sync.

Self-supervised: each example is a window of lip features and the audio around it, moved by a
random lag in [-max_lag, max_lag]; the network must pick that lag out of all 2 * max_lag + 1
(the same clip at other lags are the negatives); and, at the true lag, each frame's lips must
pick their own audio out of the batch's at that frame (other clips are the negatives).
Augmentation aims at speakers and recordings the training set lacks: lip jitter, scale and
rotation, mirror images, audio gain, noise and masked bands.
Seeded and resumable: a checkpoint is written every ``save_every`` steps.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .dataset import CachedTrack
from .errors import FcnsyncError
from .features import (
    AUDIO_PER_FRAME,
    LIP_POINT_DIMS,
    LOG_FLOOR,
    mirror_lips,
    speech_activity,
)
from .inference import Sequence
from .model import FCNSyncNet, ModelConfig, checkpoint_dict, correlate
from .sync import speech_weight
from .trials import shifted_audio, trials_for

APPEARANCE_NOISE = 0.2  # s.d. of the noise on the mouth's appearance (track-normalised units)


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (stored in the checkpoint's metadata)."""

    steps: int = 3000
    batch_size: int = 48
    window_frames: tuple[int, ...] = (5, 9, 15, 25, 50)
    max_lag: int = 15
    lr: float = 2e-3
    weight_decay: float = 5e-2
    frame_loss_weight: float = 0.3
    person_balance: float = 0.35  # sample a person with probability ~ clips ** this
    speed_jitter: float = 0.2  # replay clips at exp(U(-x, x)) times their speed
    vtlp: float = 0.12  # warp the mel axis by up to this factor (vocal tract length)
    lip_anisotropy: float = 0.25  # scale lip x and y independently by exp(U(-x, x))
    mirror: float = 0.5  # show a window's lips mirrored (left-right) with this probability
    clip_loss_weight: float = 0.5  # weight of telling the batch's clips apart, frame by frame
    seed: int = 0
    save_every: int = 250
    threads: int = 2
    model: dict = field(default_factory=lambda: {"channels": 64, "embed_dim": 32, "dropout": 0.3})
    screen_steps: int = 500  # a first model, trained this long, screens the labels
    screen_max_offset: float = 1.5  # clips it finds further off than this (frames) are "off"
    # what happens to a clip found off: "set_aside" (left out), "realign" (its audio moved by
    # the offset found, when within screen_realign_max frames; set aside beyond) or "keep"
    screen_rule: str = "realign"
    screen_realign_max: float = 4.0
    # read offsets against the first model's own median reading of the GRID (studio) clips,
    # which are known to be in sync, instead of against zero
    screen_centre: bool = True
    # a JSON file of every clip's offset (frames, audio leads positive) read by another model;
    # when given, it replaces the first model's readings (no first model is trained)
    screen_readings: str = ""
    members: int = 5  # networks trained apart (seeds seed, seed + 1, ...), shipped as one ensemble
    # the share of a window's frames whose own audio must be audible (as the evaluation's
    # windows are chosen: ``trials``); 0 draws windows anywhere there is a face
    speech_share: float = 0.0
    # the lag targets spread over neighbouring lags (a Gaussian of this many frames), since
    # the labels are only good to about a frame; 0: the true lag alone
    lag_smoothing: float = 0.0


def _augment_lips(
    lips: torch.Tensor, gen: torch.Generator, anisotropy: float, mirror: float
) -> torch.Tensor:
    """(B, W, LIP_DIMS): random scale (x and y apart), rotation and per-point jitter of the lip
    points; noise on the mouth's appearance; the mirror image of the face with probability
    ``mirror``."""
    appearance = lips[..., LIP_POINT_DIMS:]
    appearance = appearance + APPEARANCE_NOISE * torch.randn(appearance.shape, generator=gen)
    lips = lips[..., :LIP_POINT_DIMS].contiguous()
    b, w, d = lips.shape
    pts = lips.view(b, w, d // 2, 2)
    scale = torch.exp(torch.empty(b, 1, 1, 1).uniform_(-0.3, 0.3, generator=gen))
    scale = scale * torch.exp(
        torch.empty(b, 1, 1, 2).uniform_(-anisotropy, anisotropy, generator=gen)
    )
    ang = torch.empty(b).uniform_(-0.2, 0.2, generator=gen)
    rot = torch.stack(
        [torch.stack([ang.cos(), -ang.sin()], -1), torch.stack([ang.sin(), ang.cos()], -1)], -2
    )  # (B, 2, 2)
    pts = torch.einsum("bwpi,bji->bwpj", pts * scale, rot)
    sigma = torch.empty(b, 1, 1, 1).uniform_(0.0, 0.25, generator=gen)
    pts = pts + sigma * torch.randn(pts.shape, generator=gen)
    out = torch.cat([pts.reshape(b, w, d), appearance], dim=-1)
    if mirror <= 0:
        return out
    flip = torch.rand(b, 1, 1, generator=gen) < mirror  # the same face seen in a mirror
    return torch.where(flip, mirror_lips(out), out)


def _warp_mel(mel: torch.Tensor, gen: torch.Generator, amount: float) -> torch.Tensor:
    """Vocal tract length perturbation: stretch the mel axis of each example by a random
    factor in [1 - amount, 1 + amount] (linear interpolation between bands)."""
    b, s, m = mel.shape
    alpha = 1 + torch.empty(b, 1).uniform_(-amount, amount, generator=gen)
    pos = (torch.arange(m).float()[None, :] * alpha).clamp(0, m - 1.001)  # (B, M)
    lo = pos.floor().long()
    w = (pos - lo).unsqueeze(1)
    g_lo = torch.gather(mel, 2, lo.unsqueeze(1).expand(b, s, m))
    g_hi = torch.gather(mel, 2, (lo + 1).unsqueeze(1).expand(b, s, m))
    return g_lo * (1 - w) + g_hi * w


def _augment_audio(audio: torch.Tensor, gen: torch.Generator, vtlp: float) -> torch.Tensor:
    """(B, S, N_MELS + 1) log-mel with flag: vocal tract warp, gain, additive noise at random
    SNR, band masks."""
    b, s, d = audio.shape
    mel = _warp_mel(audio[:, :, :-1], gen, vtlp)
    flag = audio[:, :, -1:]
    gain = torch.empty(b, 1, 1).uniform_(-2.3, 2.3, generator=gen)  # about +-10 dB in power
    mel = mel + gain * flag
    # noise: a random spectral tilt at a level relative to the window's mean power
    level = mel.logsumexp(dim=(1, 2), keepdim=True) - math.log(s * (d - 1))
    snr = torch.empty(b, 1, 1).uniform_(0.0, 35.0, generator=gen) * math.log(10) / 10
    tilt = torch.linspace(0, 1, d - 1).view(1, 1, -1) * torch.empty(b, 1, 1).uniform_(
        -2.0, 2.0, generator=gen
    )
    noise = level - snr + tilt + 0.5 * torch.randn((b, s, d - 1), generator=gen)
    use_noise = (torch.rand(b, 1, 1, generator=gen) < 0.6).float()
    mel = torch.where(use_noise > 0, torch.logaddexp(mel, noise), mel)
    mel = mel.clamp(min=math.log(LOG_FLOOR))
    for _ in range(2):  # frequency masks
        width = int(torch.randint(0, 7, (1,), generator=gen))
        start = int(torch.randint(0, d - 1 - width + 1, (1,), generator=gen))
        if width:
            mel[:, :, start : start + width] = mel.mean(dim=(1, 2), keepdim=True)
    return torch.cat([mel, flag], dim=-1)


class Sampler:
    """Draws training windows: a person (balanced), a clip of theirs, a window, a lag."""

    def __init__(self, tracks: list[CachedTrack], cfg: TrainConfig):
        self.tracks = tracks
        self.cfg = cfg
        by_person: dict[str, list[int]] = {}
        for i, tr in enumerate(tracks):
            by_person.setdefault(tr.person, []).append(i)
        self.persons = sorted(by_person)
        self.by_person = by_person
        w = np.array([len(by_person[p]) ** cfg.person_balance for p in self.persons])
        self.person_p = w / w.sum()
        self.rng = np.random.default_rng(cfg.seed)

    def batch(self, window: int) -> tuple[torch.Tensor, ...]:
        """``batch_size`` windows of ``window`` frames; each clip is replayed at a random speed
        (speaking rate) and moved by a random lag, which is the target."""
        cfg = self.cfg
        big_l = cfg.max_lag
        b = cfg.batch_size
        dims = self.tracks[0].seq.lips.shape[1]
        n_audio = AUDIO_PER_FRAME * (window + 2 * big_l)
        lips = np.zeros((b, window, dims), np.float32)
        valid = np.zeros((b, window), np.float32)
        audio = np.zeros((b, n_audio, self.tracks[0].seq.audio.shape[1]), np.float32)
        target = np.zeros(b, np.int64)
        for k in range(b):
            rate = float(np.exp(self.rng.uniform(-cfg.speed_jitter, cfg.speed_jitter)))
            span = (window - 1) * rate + 1  # source frames the window covers
            for _ in range(20):
                person = self.persons[self.rng.choice(len(self.persons), p=self.person_p)]
                tr = self.tracks[self.rng.choice(self.by_person[person])]
                n = len(tr.seq.lips)
                if n < span + 1:
                    continue
                t0 = float(self.rng.uniform(0, n - span))
                src = t0 + np.arange(window) * rate
                at = np.round(src).astype(int)
                if tr.seq.valid[at].mean() < 0.7:
                    continue
                # audible as ``sync.audible`` counts it: any speech weight at all
                heard = cfg.speech_share <= 0 or (
                    (speech_weight(tr.level_db[at]) > 0).mean() >= cfg.speech_share
                )
                if heard:
                    break
            lag = int(self.rng.integers(-big_l, big_l + 1))
            near = np.clip(np.round(src).astype(int), 0, n - 1)
            lo = np.clip(np.floor(src).astype(int), 0, n - 2)
            w = (src - lo)[:, None]
            lips[k] = tr.seq.lips[lo] * (1 - w) + tr.seq.lips[lo + 1] * w
            valid[k] = tr.seq.valid[near] & tr.seq.valid[np.minimum(near + 1, n - 1)]
            # the network must find lag "lag": position j holds the audio of frame j - lag,
            # in output frames, i.e. (j - lag) * rate source frames from t0
            j = (np.arange(n_audio) + 0.5) / AUDIO_PER_FRAME - 0.5 - big_l - lag
            a_pos = (t0 + j * rate + tr.seq.pad) * AUDIO_PER_FRAME + 0.5 * (AUDIO_PER_FRAME - 1)
            a_pos = np.clip(a_pos, 0, len(tr.seq.audio) - 1.001)
            a_lo = np.floor(a_pos).astype(int)
            aw = (a_pos - a_lo)[:, None]
            audio[k] = tr.seq.audio[a_lo] * (1 - aw) + tr.seq.audio[a_lo + 1] * aw
            target[k] = lag + big_l
        return (
            torch.from_numpy(lips),
            torch.from_numpy(valid),
            torch.from_numpy(audio),
            torch.from_numpy(target),
        )


def lag_targets(target: torch.Tensor, n_lags: int, smoothing: float) -> torch.Tensor:
    """The training targets over lags: the true lag's index (B,) where ``smoothing`` is 0, else
    (B, n_lags) probabilities, a Gaussian of ``smoothing`` frames around it."""
    if smoothing <= 0:
        return target
    lags = torch.arange(n_lags, dtype=torch.float32)[None, :]
    logits = -0.5 * ((lags - target[:, None].float()) / smoothing) ** 2
    return torch.softmax(logits, dim=1)


def loss_fn(
    model: FCNSyncNet,
    lips: torch.Tensor,
    valid: torch.Tensor,
    audio: torch.Tensor,
    target: torch.Tensor,
    max_lag: int,
    frame_weight: float,
    clip_weight: float = 0.0,
    smoothing: float = 0.0,
) -> tuple[torch.Tensor, float]:
    """Cross-entropy over lags of the window's mean score, plus of each frame's score; with
    ``clip_weight``, plus telling apart the batch's windows frame by frame: each frame's lips
    against the same frame of every window's audio at that window's true lag (both ways; a
    frame without a face is not scored, though it stays among the others' candidates).
    ``model`` is one network, one view; ``smoothing``: ``lag_targets``."""
    v = model.lip_embeddings(lips.transpose(1, 2), valid)  # (B, D, T)
    windows = model.audio_windows(audio.transpose(1, 2), v.shape[2])  # (B, D, 2L+1, T)
    scores = correlate(v, windows)
    scale = model.log_scale.exp()
    w = valid / valid.sum(dim=1, keepdim=True).clamp(min=1)
    window_logits = (scores * w.unsqueeze(1)).sum(dim=2) * scale
    goal = lag_targets(target, scores.shape[1], smoothing)
    loss = F.cross_entropy(window_logits, goal)
    frame_logits = (scores * scale).permute(0, 2, 1)  # (B, T, 2L+1)
    frame_loss = F.cross_entropy(
        frame_logits.reshape(-1, frame_logits.shape[-1]),
        goal.repeat_interleave(scores.shape[2], dim=0),
        reduction="none",
    )
    frame_loss = (frame_loss * valid.reshape(-1)).sum() / valid.sum().clamp(min=1)
    acc = float((window_logits.argmax(1) - target).abs().le(1).float().mean())
    loss = loss + frame_weight * frame_loss
    if clip_weight > 0:
        b, t = valid.shape
        aligned = windows[torch.arange(b), :, target]  # (B, D, T) at the true lag
        pair = torch.einsum("idt,jdt->tij", v, aligned) * scale  # frame t: lips i, audio j
        ids = torch.arange(b).repeat(t)
        lips_to_audio = F.cross_entropy(pair.reshape(-1, b), ids, reduction="none")
        audio_to_lips = F.cross_entropy(pair.transpose(1, 2).reshape(-1, b), ids, reduction="none")
        frame_valid = valid.T.reshape(-1)  # (T * B), in the order of ``ids``
        clip_loss = 0.5 * ((lips_to_audio + audio_to_lips) * frame_valid).sum()
        loss = loss + clip_weight * clip_loss / frame_valid.sum().clamp(min=1)
    return loss, acc


def train(
    tracks: list[CachedTrack],
    out_dir: str | os.PathLike[str],
    cfg: TrainConfig,
    validate=None,  # callable(model) -> dict of figures, run at each save
) -> Path:
    """Train (or resume) in ``out_dir``; returns the path of the last checkpoint."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    model = FCNSyncNet(ModelConfig(**cfg.model))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.05
    )
    sampler = Sampler(tracks, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    step = 0
    state_path = out / "state.pt"
    log_path = out / "log.jsonl"
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        sampler.rng.bit_generator.state = state["rng"]
        step = state["step"]
        print(f"resumed at step {step}", file=sys.stderr)
    t_start = time.time()
    losses: list[float] = []
    accs: list[float] = []
    model.train()
    while step < cfg.steps:
        window = cfg.window_frames[step % len(cfg.window_frames)]
        lips, valid, audio, target = sampler.batch(window)
        lips = _augment_lips(lips, gen, cfg.lip_anisotropy, cfg.mirror)
        audio = _augment_audio(audio, gen, cfg.vtlp)
        loss, acc = loss_fn(
            model,
            lips,
            valid,
            audio,
            target,
            cfg.max_lag,
            cfg.frame_loss_weight,
            cfg.clip_loss_weight,
            cfg.lag_smoothing,
        )
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        step += 1
        losses.append(float(loss.detach()))
        accs.append(acc)
        if step % cfg.save_every == 0 or step == cfg.steps:
            record = {
                "step": step,
                "loss": float(np.mean(losses)),
                "train_acc": float(np.mean(accs)),
                "elapsed_s": time.time() - t_start,
            }
            losses, accs = [], []
            if validate is not None:
                model.eval()
                record.update(validate(model))
                model.train()
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "gen": gen.get_state(),
                    "rng": sampler.rng.bit_generator.state,
                    "step": step,
                },
                state_path.with_suffix(".tmp"),
            )
            os.replace(state_path.with_suffix(".tmp"), state_path)
            meta = {"train": _config_meta(cfg), "step": step}
            ckpt = checkpoint_dict(model, meta)
            torch.save(ckpt, out / f"step{step:06d}.pt")
            with open(log_path, "a") as fh:
                fh.write(json.dumps(record) + "\n")
            print(json.dumps(record), file=sys.stderr, flush=True)
    return out / f"step{step:06d}.pt"


def _config_meta(cfg: TrainConfig) -> dict[str, object]:
    """The run's hyper-parameters as a checkpoint stores them."""
    meta: dict[str, object] = dict(cfg.__dict__)
    meta["window_frames"] = list(cfg.window_frames)
    return meta


def clip_offsets(model: FCNSyncNet, tracks: list[CachedTrack], max_lag: int = 15) -> list[float]:
    """The model's whole-clip offset (frames) of each track as it is, no shift injected."""
    out = []
    for tr in tracks:
        (trial,) = trials_for(model, [tr], offsets=(0,), contexts=(0,), max_lag=max_lag)
        out.append(float(trial.predictions[0]) if trial.predictions.size else 0.0)
    return out


def train_screened(
    tracks: list[CachedTrack], out_dir: str | os.PathLike[str], cfg: TrainConfig, validate=None
) -> Path:
    """Training labels assume every clip is in sync. Check it: train a first model for
    ``cfg.screen_steps`` steps, measure every training clip with it (``screen_offsets.json``),
    and treat the clips it finds more than ``cfg.screen_max_offset`` frames off by
    ``cfg.screen_rule``: set aside (listed in ``excluded.json``), realigned (their audio moved
    by the offset found, listed in ``realigned.json``) or kept as they are. Then train the final
    model. Both stages resume."""
    from dataclasses import replace  # noqa: PLC0415

    from .model import load_model  # noqa: PLC0415

    out = Path(out_dir)
    offsets_path = out / "screen_offsets.json"
    excluded_path = out / "excluded.json"
    if offsets_path.exists():
        found = json.loads(offsets_path.read_text())
    elif cfg.screen_readings:
        found = _read_readings(cfg.screen_readings, tracks)
        out.mkdir(parents=True, exist_ok=True)
        offsets_path.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    else:
        screen_cfg = replace(cfg, steps=cfg.screen_steps, save_every=cfg.screen_steps)
        first = train(tracks, out / "screen", screen_cfg)
        offsets = clip_offsets(load_model(first, device="cpu"), tracks, cfg.max_lag)
        found = {tr.name: round(off, 2) for tr, off in zip(tracks, offsets, strict=True)}
        offsets_path.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    grid = [found[tr.name] for tr in tracks if tr.group == "grid" and tr.name in found]
    bias = float(np.median(grid)) if cfg.screen_centre and grid else 0.0
    excluded, realigned = screen(found, cfg, bias)
    if not excluded_path.exists():
        excluded_path.write_text(json.dumps(excluded, indent=1, sort_keys=True) + "\n")
        if cfg.screen_rule == "realign":
            (out / "realigned.json").write_text(
                json.dumps(realigned, indent=1, sort_keys=True) + "\n"
            )
    excluded = json.loads(excluded_path.read_text())
    kept = [
        realign(tr, -realigned[tr.name]) if tr.name in realigned else tr
        for tr in tracks
        if tr.name not in excluded
    ]
    print(
        f"screening set aside {len(excluded)} and realigned {len(realigned)} of "
        f"{len(tracks)} clips",
        file=sys.stderr,
    )
    if not kept:
        raise FcnsyncError(
            f"a first model found all {len(tracks)} clips more than {cfg.screen_max_offset} "
            "frames off sync: nothing is left to train on (are the clips in sync?)"
        )
    return train(kept, out, cfg, validate=validate)


def _read_readings(path: str, tracks: list[CachedTrack]) -> dict[str, float]:
    """The training clips' offsets as another model read them: a JSON object of clip name ->
    frames. Every clip must have one."""
    try:
        readings = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise FcnsyncError(f"cannot read screening readings {path}: {exc}") from None
    if not isinstance(readings, dict):
        raise FcnsyncError(f"screening readings {path}: expected an object of clip -> frames")
    missing = [tr.name for tr in tracks if tr.name not in readings]
    if missing:
        raise FcnsyncError(
            f"screening readings {path} lack {len(missing)} of {len(tracks)} clips "
            f"(first: {missing[0]})"
        )
    return {tr.name: round(float(readings[tr.name]), 2) for tr in tracks}


def screen(
    found: dict[str, float], cfg: TrainConfig, bias: float = 0.0
) -> tuple[dict[str, float], dict[str, float]]:
    """Which clips a screening sets aside and which it realigns, from the offsets (frames,
    positive: audio leads) a first model found, less its own ``bias`` (its reading of clips
    known to be in sync): ``(excluded, realigned)``, each name -> offset less the bias."""
    if cfg.screen_rule not in ("set_aside", "realign", "keep"):
        raise ValueError(f"unknown screen_rule {cfg.screen_rule!r}")
    centred = {k: round(v - bias, 2) for k, v in found.items()}
    off = {k: v for k, v in centred.items() if abs(v) > cfg.screen_max_offset}
    if cfg.screen_rule == "keep":
        return {}, {}
    if cfg.screen_rule == "set_aside":
        return off, {}
    realigned = {k: v for k, v in off.items() if abs(v) <= cfg.screen_realign_max}
    return {k: v for k, v in off.items() if k not in realigned}, realigned


def realign(tr: CachedTrack, shift_frames: float) -> CachedTrack:
    """The track with its audio, and the audio's level per frame, moved so that it leads by
    ``shift_frames`` more (a clip found to lead by x frames is brought into sync with ``-x``)."""
    from dataclasses import replace  # noqa: PLC0415

    seq = tr.seq
    audio = shifted_audio(tr, shift_frames, seq.pad)
    start = tr.grid_start_s + shift_frames / tr.fps
    level = speech_activity(tr.mel, start, tr.fps, len(seq.lips))
    return replace(tr, seq=Sequence(seq.lips, seq.valid, audio, seq.pad), level_db=level)


def train_ensemble(
    tracks: list[CachedTrack], out_dir: str | os.PathLike[str], cfg: TrainConfig, validate=None
) -> Path:
    """``cfg.members`` networks, each trained as ``train_screened`` does in ``member<i>/``
    with seed ``cfg.seed + i``, joined into ``ensemble.pt``: one checkpoint whose lag scores are
    the members' mean. Members differ only in their seed (initialisation, windows drawn,
    augmentation); averaging them removes much of what each learned of its training speakers
    alone. With one member this is ``train_screened``. Resumes member by member."""
    from dataclasses import replace  # noqa: PLC0415

    from .model import ensemble, load_model  # noqa: PLC0415

    if cfg.members == 1:
        return train_screened(tracks, out_dir, cfg, validate=validate)
    out = Path(out_dir)
    paths = []
    for i in range(cfg.members):
        member_cfg = replace(cfg, seed=cfg.seed + i, members=1)
        print(f"member {i + 1} of {cfg.members} (seed {member_cfg.seed})", file=sys.stderr)
        paths.append(train_screened(tracks, out / f"member{i}", member_cfg, validate=validate))
    # networks trained on mirrored faces also score both views of each face (model.py)
    joined = ensemble([load_model(p, device="cpu") for p in paths], mirror=cfg.mirror > 0)
    meta = {"train": _config_meta(cfg), "members": [str(p.relative_to(out)) for p in paths]}
    path = out / "ensemble.pt"
    torch.save(checkpoint_dict(joined, meta), path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)
    return path
