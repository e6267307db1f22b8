"""Applying the network to sequences of any length: chunking with overlap, batching, devices.

The network never knows how long a file is. A sequence is cut into chunks whose overlap covers
the encoders' receptive field, the chunks of all sequences go through the network in batches,
and the per-frame lag scores are stitched back. The result does not depend on the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .features import AUDIO_PER_FRAME
from .model import FCNSyncNet

CHUNK_FRAMES = 256  # video frames scored per chunk
CONTEXT_FRAMES = 16  # extra frames each side of a chunk: more than the receptive field


@dataclass
class Sequence:
    """One face track's model inputs on its frame grid.

    ``lips`` (T, LIP_DIMS) float32, ``valid`` (T,) bool; ``audio`` (AUDIO_PER_FRAME * (T + 2 *
    pad), N_MELS + 1) float32 covering frames -pad .. T + pad, ``pad`` >= max_lag + CONTEXT_FRAMES.
    """

    lips: np.ndarray
    valid: np.ndarray
    audio: np.ndarray
    pad: int


def audio_pad_frames(max_lag: int) -> int:
    """How many frames of audio a ``Sequence`` needs beyond each end of the video."""
    return max_lag + CONTEXT_FRAMES


@torch.no_grad()
def score_sequences(
    model: FCNSyncNet, sequences: list[Sequence], max_lag: int, batch_size: int = 16
) -> list[np.ndarray]:
    """Lag scores for every frame of every sequence: a list of (2 * max_lag + 1, T) float32,
    entry [max_lag + l, t] the cosine score of video frame t against the audio of frame t + l."""
    jobs: list[tuple[int, int, int, int]] = []  # sequence, chunk start, chunk end, context
    for si, seq in enumerate(sequences):
        if seq.pad < max_lag + CONTEXT_FRAMES:
            raise ValueError("sequence audio padding is smaller than max_lag + CONTEXT_FRAMES")
        t = len(seq.lips)
        for c0 in range(0, t, CHUNK_FRAMES):
            jobs.append((si, c0, min(t, c0 + CHUNK_FRAMES), CONTEXT_FRAMES))
    out = [np.zeros((2 * max_lag + 1, len(s.lips)), dtype=np.float32) for s in sequences]
    device = model.device
    for b0 in range(0, len(jobs), batch_size):
        batch = jobs[b0 : b0 + batch_size]
        span = max(min(c1, len(sequences[si].lips)) - c0 for si, c0, c1, _ in batch)
        width = span + 2 * CONTEXT_FRAMES
        lips = np.zeros((len(batch), width, sequences[0].lips.shape[1]), dtype=np.float32)
        valid = np.zeros((len(batch), width), dtype=np.float32)
        audio = np.zeros(
            (len(batch), AUDIO_PER_FRAME * (width + 2 * max_lag), sequences[0].audio.shape[1]),
            dtype=np.float32,
        )
        audio[:, :, -1] = 0.0
        for k, (si, c0, c1, ctx) in enumerate(batch):
            seq = sequences[si]
            t = len(seq.lips)
            v0, v1 = max(0, c0 - ctx), min(t, c1 + ctx)
            lips[k, v0 - (c0 - ctx) : v1 - (c0 - ctx)] = seq.lips[v0:v1]
            valid[k, v0 - (c0 - ctx) : v1 - (c0 - ctx)] = seq.valid[v0:v1]
            # audio frames c0 - ctx - max_lag .. c0 - ctx + width + max_lag, from the padded array
            a0 = c0 - ctx - max_lag + seq.pad
            a1 = a0 + width + 2 * max_lag
            s0, s1 = max(0, a0), min(len(seq.audio) // AUDIO_PER_FRAME, a1)
            audio[k, (s0 - a0) * AUDIO_PER_FRAME : (s1 - a0) * AUDIO_PER_FRAME] = seq.audio[
                s0 * AUDIO_PER_FRAME : s1 * AUDIO_PER_FRAME
            ]
            if s0 > a0 or s1 < a1:  # beyond the padded audio: the "no audio" floor
                floor = seq.audio[:, :-1].min() if len(seq.audio) else 0.0
                audio[k, : (s0 - a0) * AUDIO_PER_FRAME, :-1] = floor
                audio[k, (s1 - a0) * AUDIO_PER_FRAME :, :-1] = floor
        scores = (
            model.lag_scores(
                torch.from_numpy(lips).transpose(1, 2).to(device),
                torch.from_numpy(valid).to(device),
                torch.from_numpy(audio).transpose(1, 2).to(device),
                max_lag,
            )
            .cpu()
            .numpy()
        )
        for k, (si, c0, c1, ctx) in enumerate(batch):
            out[si][:, c0:c1] = scores[k, :, ctx : ctx + (c1 - c0)]
    return out
