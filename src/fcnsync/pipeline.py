"""detect(): media -> faces -> features -> model -> sync -> calibration -> Result."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from .faces import FaceTracker, Track
from .features import LogMel, MelStream
from .media import MediaInfo, MediaReader, VideoFrame


@dataclass
class Extracted:
    """Everything the model needs from one file: tracks of lip landmarks and the log-mel audio,
    on the same clock. Kept small (no pixels), so it can be cached for training."""

    info: MediaInfo
    tracks: list[Track]
    mel: LogMel
    video_start_s: float
    video_end_s: float
    video_frames: int
    scene_cuts_s: list[float] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)


def extract(path: str | os.PathLike[str], tracker: FaceTracker | None = None) -> Extracted:
    """Decode ``path`` once, streaming: every frame goes to the face tracker, every audio chunk
    to the log-mel stream. Raises ``MediaError`` for unreadable input."""
    tracker = tracker or FaceTracker()
    mel_stream = MelStream()
    t_decode = t_track = t_audio = 0.0
    reader = MediaReader(path)
    t0 = time.perf_counter()
    items = iter(reader)
    while True:
        t1 = time.perf_counter()
        item = next(items, None)
        t2 = time.perf_counter()
        t_decode += t2 - t1
        if item is None:
            break
        if isinstance(item, VideoFrame):
            tracker.update(item.time_s, item.rgb)
            t_track += time.perf_counter() - t2
        else:
            mel_stream.push(item.time_s, item.samples)
            t_audio += time.perf_counter() - t2
    tracks = tracker.finish()
    mel = mel_stream.finish()
    stats = reader.stats
    return Extracted(
        info=reader.info,
        tracks=tracks,
        mel=mel,
        video_start_s=float(stats.first_video_time_s or 0.0),
        video_end_s=float(stats.last_video_time_s or 0.0),
        video_frames=stats.video_frames,
        scene_cuts_s=list(tracker.scene_cuts),
        timings_s={
            "decode": t_decode,
            "track": t_track,
            "audio": t_audio,
            "extract": time.perf_counter() - t0,
        },
    )


def save_extracted(ex: Extracted, path: str | os.PathLike[str]) -> None:
    """Cache an ``Extracted`` as .npz (used by training and evaluation)."""
    arrays: dict[str, np.ndarray] = {
        "fps": np.array(ex.info.fps),
        "mel_start_s": np.array(ex.mel.start_s),
        "mel": ex.mel.values,
        "energy": ex.mel.energy,
        "video_span": np.array([ex.video_start_s, ex.video_end_s, ex.video_frames]),
        "n_tracks": np.array(len(ex.tracks)),
    }
    for i, tr in enumerate(ex.tracks):
        times, points, boxes = tr.arrays()
        arrays[f"t{i}_times"] = times
        arrays[f"t{i}_points"] = points
        arrays[f"t{i}_boxes"] = boxes
    np.savez_compressed(path, **arrays)
