"""The data of training and evaluation: a folder's clips, extracted once (``cache.py``) and
loaded as face tracks on their frame grid with padded audio (``CachedTrack``). Training,
evaluation and calibration all read their clips through here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import build_cache, cache_path, read_clips
from .faces import Track
from .features import (
    LogMel,
    audio_on_grid,
    lip_features,
    mouth_opening,
    normalise_mel,
    speech_activity,
    track_on_grid,
)
from .inference import Sequence
from .pipeline import Extracted

MIN_TRACK_FRAMES = 20
MIN_FOUND_FRACTION = 0.5


@dataclass
class CachedTrack:
    """One face track of a cached clip on its frame grid, with padded audio: a ``Sequence``
    plus where it came from."""

    name: str
    person: str
    fps: float
    seq: Sequence
    level_db: np.ndarray  # (T,) audio level per video frame
    opening: np.ndarray  # (T,) mouth opening per frame (the classical cue)
    mel: LogMel  # the clip's normalised log-mel (to build shifted audio)
    grid_start_s: float
    found_fraction: float
    track_index: int
    group: str = ""
    truth_frames: float = 0.0  # the clip's own offset where known (positive: audio leads)


def tracks_from_raw(
    name: str,
    fps: float,
    mel: LogMel,
    raw: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    pad: int,
    all_tracks: bool = False,
) -> list[CachedTrack]:
    """Model inputs of one clip from its raw face tracks ``(times (N,), points (N, P, 3),
    appearance (N, APPEARANCE_DIMS))`` and its (not yet normalised) log-mel: the longest usable
    track, or all with ``all_tracks``."""
    mel = normalise_mel(mel)
    out = []
    for i, (times, points, appearance) in enumerate(raw):
        if len(times) < MIN_TRACK_FRAMES:
            continue
        found = float(np.isfinite(points[:, 0, 0]).mean())
        if found < MIN_FOUND_FRACTION:
            continue
        start, lips, valid = track_on_grid(times, lip_features(points, appearance), fps)
        n = len(lips)
        out.append(
            CachedTrack(
                name=name,
                person=name,
                fps=fps,
                seq=Sequence(
                    lips, valid, audio_on_grid(mel, start - pad / fps, fps, n + 2 * pad), pad
                ),
                level_db=speech_activity(mel, start, fps, n),
                opening=track_on_grid(times, mouth_opening(points)[:, None], fps)[1][:, 0],
                mel=mel,
                grid_start_s=start,
                found_fraction=found,
                track_index=i,
            )
        )
    if not all_tracks and out:
        out = [max(out, key=lambda c: int(c.seq.valid.sum()))]
    return out


def load_cached(
    path: str | os.PathLike[str], pad: int, all_tracks: bool = False
) -> list[CachedTrack]:
    """``tracks_from_raw`` of a clip cached by ``pipeline.save_extracted``."""
    z = np.load(path)
    raw = [
        (z[f"t{i}_times"], z[f"t{i}_points"], z[f"t{i}_appearance"])
        for i in range(int(z["n_tracks"]))
    ]
    mel = LogMel(float(z["mel_start_s"]), z["mel"], z["energy"])
    return tracks_from_raw(
        Path(path).name.split(".")[0], float(z["fps"]), mel, raw, pad, all_tracks
    )


def tracks_from_extracted(ex: Extracted, pad: int, all_tracks: bool = False) -> list[CachedTrack]:
    """``tracks_from_raw`` of a freshly decoded file."""
    raw = [
        (times, points, appearance) for times, points, _, appearance in map(Track.arrays, ex.tracks)
    ]
    return tracks_from_raw(Path(ex.info.path).name, ex.info.fps, ex.mel, raw, pad, all_tracks)


def prepare_tracks(
    data_dir: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    pad: int,
    kinds: tuple[str, ...] = ("real",),
    all_tracks: bool = False,
) -> list[CachedTrack]:
    """Cache (once) and load the clips of ``data_dir`` whose manifest kind is in ``kinds``."""
    clips = [c for c in read_clips(data_dir) if c.kind in kinds]
    build_cache(clips, cache_dir)
    tracks: list[CachedTrack] = []
    for clip in clips:
        cp = cache_path(Path(cache_dir), clip.path)
        if not cp.exists():
            continue
        for tr in load_cached(cp, pad, all_tracks=all_tracks):
            tr.person = clip.person
            tr.name = clip.path.name
            tr.group = clip.group
            tr.truth_frames = float(clip.inherent_offset_frames or 0.0)
            tracks.append(tr)
    return tracks
