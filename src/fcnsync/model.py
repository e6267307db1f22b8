"""The FCN-SyncNet network: two fully convolutional encoders (lips, audio) that emit one
embedding per video frame, and a correlation layer that scores every frame against the audio at
every candidate lag in one pass. Also ``load_model``, which checks the checkpoint's SHA-256."""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ModelError
from .faces import PATCH_H, PATCH_W
from .features import AUDIO_PER_FRAME, LIP_DIMS, N_MELS, PATCH_DIMS, PATCH_FREE_DIMS, mirror_lips

DEFAULT_WEIGHTS = "fcnsync-v10.pt"
# SHA-256 of the checkpoints shipped in weights/; load_model refuses any other content.
SHIPPED_SHA256: dict[str, str] = {
    "fcnsync-v10.pt": "7ffe2dfbec12116b310332110d98d66338e6cf70e957c5f8d9e6268bad3dac9d",
}


@dataclass
class ModelConfig:
    """Everything needed to rebuild the network; stored in the checkpoint beside the weights."""

    lip_dims: int = LIP_DIMS
    audio_dims: int = N_MELS + 1  # log-mel plus an "audio present" flag
    audio_per_frame: int = AUDIO_PER_FRAME
    channels: int = 128
    embed_dim: int = 64
    visual_kernel: int = 5
    visual_layers: int = 3
    dropout: float = 0.1
    members: int = 1  # networks trained apart (seeds) whose lag scores are averaged
    mirror: bool = False  # also score the lips' mirror image (features.mirror_lips): the mean
    # the last patch_dims of the lip_dims read are the mouth patch's pixels, projected to
    # patch_channels before the convolutions; 0: a network without them reads the first
    # lip_dims (features.PATCH_FREE_DIMS) of the features
    patch_dims: int = PATCH_DIMS
    patch_channels: int = 16
    # 0: the patch's pixels are projected linearly; > 0: a small 2-D convolutional network
    # with this many channels reads each frame's patch first (``PatchEncoder``)
    patch_conv: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _block(c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1) -> nn.Module:
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
    )


class PatchEncoder(nn.Module):
    """(B, PATCH_H * PATCH_W, T) mouth pixels -> (B, out, T): two strided 3x3 convolutions over
    each frame's patch, then a linear map."""

    def __init__(self, channels: int, out: int):
        super().__init__()
        c = channels
        self.body = nn.Sequential(
            nn.Conv2d(1, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * c),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(2 * c * ((PATCH_H + 3) // 4) * ((PATCH_W + 3) // 4), out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape
        img = x.permute(0, 2, 1).reshape(b * t, 1, PATCH_H, PATCH_W)
        return self.head(self.body(img).flatten(1)).view(b, t, -1).permute(0, 2, 1)


class VisualEncoder(nn.Module):
    """(B, D, T) lip features (the first ``lip_dims`` of D are read) and (B, T) a face-valid
    flag -> (B, embed_dim, T)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.channels
        self.lip_dims = cfg.lip_dims
        self.base_dims = cfg.lip_dims - cfg.patch_dims
        self.patch: nn.Module | None = None
        if cfg.patch_dims and cfg.patch_conv:
            self.patch = PatchEncoder(cfg.patch_conv, cfg.patch_channels)
        elif cfg.patch_dims:
            self.patch = nn.Conv1d(cfg.patch_dims, cfg.patch_channels, 1, bias=False)
        dims = self.base_dims + (cfg.patch_channels if cfg.patch_dims else 0)
        in_ch = 2 * dims + 1  # positions, their frame-to-frame change, valid flag
        layers: list[nn.Module] = [_block(in_ch, c, cfg.visual_kernel)]
        for i in range(cfg.visual_layers - 1):
            layers.append(_block(c, c, 3, dilation=2 ** min(i, 2)))
        self.body = nn.Sequential(*layers, nn.Dropout(cfg.dropout))
        self.head = nn.Conv1d(c, cfg.embed_dim, 1)

    def forward(self, lips: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        lips = lips[:, : self.lip_dims]
        if self.patch is not None:
            base = self.base_dims
            lips = torch.cat([lips[:, :base], self.patch(lips[:, base:])], dim=1)
        delta = torch.diff(lips, dim=2, prepend=lips[:, :, :1])
        v = valid.unsqueeze(1)
        x = torch.cat([lips * v, delta * v * F.pad(v[:, :, :-1], (1, 0)), v], dim=1)
        return self.head(self.body(x))


class AudioEncoder(nn.Module):
    """(B, audio_dims, AUDIO_PER_FRAME * T) -> (B, embed_dim, T)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.channels
        if cfg.audio_per_frame != 4:
            raise ModelError("the audio encoder is built for 4 audio samples per video frame")
        self.body = nn.Sequential(
            _block(cfg.audio_dims, c, 5),
            _block(c, c, 5, stride=2),
            _block(c, c, 5, stride=2),
            _block(c, c, 3, dilation=2),
            nn.Dropout(cfg.dropout),
        )
        self.head = nn.Conv1d(c, cfg.embed_dim, 1)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(audio))


class FCNSyncNet(nn.Module):
    """Scores lags between lip motion and audio for every video frame in one pass.

    With ``cfg.members`` > 1 it is an ensemble: the first member's encoders are this module's
    own, the others are in ``self.others``, and the lag scores are the members' mean (the
    cosine of the members' unit embeddings laid end to end, scaled by 1 / members)."""

    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        self.cfg = cfg or ModelConfig()
        self.visual = VisualEncoder(self.cfg)
        self.audio = AudioEncoder(self.cfg)
        self.log_scale = nn.Parameter(torch.tensor(2.3))  # logit scale for cosine scores
        single = replace(self.cfg, members=1)
        self.others = nn.ModuleList([FCNSyncNet(single) for _ in range(self.cfg.members - 1)])

    @property
    def device(self) -> torch.device:
        return self.log_scale.device

    @property
    def logit_scale(self) -> float:
        """What turns a lag curve of cosine scores into logits: the members' mean scale."""
        scales = [self.log_scale] + [m.log_scale for m in self._others()]
        return float(torch.stack([s.detach() for s in scales]).exp().mean())

    def _others(self) -> list[FCNSyncNet]:
        return cast(list[FCNSyncNet], list(self.others))

    def lag_scores(
        self, lips: torch.Tensor, valid: torch.Tensor, audio: torch.Tensor, max_lag: int
    ) -> torch.Tensor:
        """Cosine similarity of every video frame with the audio at every lag.

        ``lips`` (B, lip_dims, T), ``valid`` (B, T) float 0/1, ``audio`` (B, audio_dims,
        4 * (T + 2 * max_lag)) covering video frames -max_lag .. T + max_lag.
        Returns (B, 2 * max_lag + 1, T): entry [b, max_lag + l, t] compares video frame t with
        the audio of frame t + l, so a peak at lag l means the audio is l frames late. With
        ``cfg.mirror`` the mean over the lips and their mirror image (``features.mirror_lips``).
        """
        views = [lips, mirror_lips(lips, dim=1)] if self.cfg.mirror else [lips]
        scores = self._view_scores(views, valid, audio)
        for member in self._others():
            scores = scores + member._view_scores(views, valid, audio)
        return scores / ((1 + len(self.others)) * len(views))

    def lip_embeddings(self, lips: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """This network's unit lip embeddings, (B, D, T)."""
        return F.normalize(self.visual(lips, valid), dim=1)

    def audio_windows(self, audio: torch.Tensor, frames: int) -> torch.Tensor:
        """This network's unit audio embeddings at every lag, (B, D, 2 * max_lag + 1, frames):
        entry [b, :, max_lag + l, t] is the audio of video frame t + l."""
        return F.normalize(self.audio(audio), dim=1).unfold(2, frames, 1)

    def _view_scores(
        self, views: list[torch.Tensor], valid: torch.Tensor, audio: torch.Tensor
    ) -> torch.Tensor:
        """This network's own lag scores, summed over the ``views`` of the same lips: the views
        go through the network as one batch, and since the scores are linear in the lip
        embeddings, their embeddings are summed before they meet the audio."""
        windows = self.audio_windows(audio, views[0].shape[2])
        b = valid.shape[0]
        emb = self.lip_embeddings(torch.cat(views), valid.repeat(len(views), 1))
        return correlate(emb.view(len(views), b, *emb.shape[1:]).sum(0), windows)

    def forward(
        self, lips: torch.Tensor, valid: torch.Tensor, audio: torch.Tensor, max_lag: int
    ) -> torch.Tensor:
        return self.lag_scores(lips, valid, audio, max_lag)


def correlate(lips: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """Cosine scores (B, 2 * max_lag + 1, T) of unit lip embeddings (B, D, T) against unit audio
    embeddings at every lag (B, D, 2 * max_lag + 1, T). Scoring (no gradient) goes lag by
    lag: on the overlapping view that ``audio_windows`` unfolds, an einsum copies it or
    batches over frames, 2-4 times slower for one sequence. Training keeps the einsum, which
    is faster there with its backward pass (and keeps earlier runs' numbers bit for bit)."""
    if torch.is_grad_enabled():
        return torch.einsum("bdt,bdlt->blt", lips, windows)
    return torch.stack(
        [(lips * windows[:, :, lag]).sum(dim=1) for lag in range(windows.shape[2])], dim=1
    )


def ensemble(models: list[FCNSyncNet], mirror: bool = False) -> FCNSyncNet:
    """One network whose lag scores are the mean of ``models``' (same config, one member
    each), e.g. the same training run with several seeds; with ``mirror`` the mean over the
    lips and their mirror image too."""
    if not models or any(m.cfg.members != 1 for m in models):
        raise ModelError("an ensemble is built from single networks")
    cfg = replace(models[0].cfg, members=len(models), mirror=mirror)
    out = FCNSyncNet(cfg)
    state = dict(models[0].state_dict())
    for i, m in enumerate(models[1:]):
        if replace(m.cfg, extra={}) != replace(models[0].cfg, extra={}):
            raise ModelError("the members of an ensemble must share one architecture")
        state.update({f"others.{i}.{k}": v for k, v in m.state_dict().items()})
    out.load_state_dict(state)
    return out


def checkpoint_dict(model: FCNSyncNet, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a checkpoint file holds: the config that rebuilds the model, weights and metadata."""
    return {"config": asdict(model.cfg), "state_dict": model.state_dict(), "meta": meta or {}}


def sha256_of(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shipped_weights_path(name: str = DEFAULT_WEIGHTS) -> Path:
    """Where the package's own checkpoint is installed."""
    return Path(str(resources.files("fcnsync.weights").joinpath(name)))


def load_model(
    path: str | os.PathLike[str] | None = None, device: str | torch.device | None = None
) -> FCNSyncNet:
    """Load a checkpoint (default: the shipped weights, checked against their SHA-256) and
    return the network in eval mode on ``device`` (default: CUDA when present, else CPU)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if path is None:
        ckpt_path = shipped_weights_path()
        if not ckpt_path.exists():
            raise ModelError(
                f"the shipped weights {DEFAULT_WEIGHTS} are not installed: reinstall fcnsync"
            )
        expected = SHIPPED_SHA256.get(ckpt_path.name)
        if expected is not None and sha256_of(ckpt_path) != expected:
            raise ModelError(
                f"{ckpt_path} does not match its SHA-256: the file is damaged, reinstall fcnsync"
            )
    else:
        ckpt_path = Path(path)
        if not ckpt_path.is_file():
            raise ModelError(f"no checkpoint at {ckpt_path}")
    if not zipfile.is_zipfile(ckpt_path):  # torch.save writes a zip archive
        raise ModelError(f"{ckpt_path} is not a valid fcnsync checkpoint (not a PyTorch file)")
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        # checkpoints from before the mouth's patch (fcnsync-v8) say nothing of it
        model = FCNSyncNet(ModelConfig(**{"patch_dims": 0, **ckpt["config"]}))
        model.load_state_dict(ckpt["state_dict"])
    except Exception as exc:  # torch.load raises many kinds for a damaged file
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{ckpt_path} is not a valid fcnsync checkpoint ({first})") from None
    if model.cfg.lip_dims not in (LIP_DIMS, PATCH_FREE_DIMS) or (
        model.cfg.patch_dims != model.cfg.lip_dims - PATCH_FREE_DIMS
    ):
        raise ModelError(
            f"{ckpt_path} was trained on {model.cfg.lip_dims} lip features, this version makes "
            f"{LIP_DIMS}: retrain it with this version (fcnsync train)"
        )
    model.meta = ckpt.get("meta", {})  # type: ignore[assignment]
    return model.to(device).eval()
