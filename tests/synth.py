"""Synthetic talking media made with PyAV, and a tracker that reads the synthetic mouth.

The video shows a white bar (the "mouth") whose height follows a syllable envelope; the audio is
a voiced tone whose loudness follows the same envelope, moved by a known amount in its samples
(``lead_s``) or in its container timestamps (``audio_pts_delay_s``)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from fcnsync.faces import (
    APPEARANCE_DIMS,
    LANDMARKS,
    LIP_INNER,
    LIP_OUTER,
    RIGID,
    Track,
    appearance_of,
    drain_tracks,
)

MOUTH_CX, MOUTH_CY = 0.5, 0.6  # relative position of the bar in the frame


def envelope(t: np.ndarray, seed: int = 0, duration_s: float = 10.0) -> np.ndarray:
    """A 0..1 syllable envelope: bursts of 80-300 ms separated by 60-250 ms pauses."""
    rng = np.random.default_rng(seed)
    edges = []
    pos = 0.2
    while pos < duration_s + 1:
        on = rng.uniform(0.08, 0.3)
        edges.append((pos, pos + on, rng.uniform(0.5, 1.0)))
        pos += on + rng.uniform(0.06, 0.25)
    e = np.zeros_like(t, dtype=np.float64)
    for a, b, amp in edges:
        inside = (t >= a) & (t < b)
        phase = (t[inside] - a) / (b - a)
        e[inside] = amp * np.sin(np.pi * phase)
    return e


def make_clip(
    path: str | Path,
    seconds: float = 6.0,
    fps: int = 25,
    size: tuple[int, int] = (128, 128),
    lead_s: float = 0.0,
    audio_pts_delay_s: float = 0.0,
    sample_rate: int = 16000,
    channels: int = 1,
    vcodec: str = "libx264",
    acodec: str = "aac",
    seed: int = 0,
    with_audio: bool = True,
    with_video: bool = True,
    silent: bool = False,
    rotation: int | None = None,
) -> Path:
    """Write a synthetic talking clip. ``lead_s`` > 0: the audio leads the video (it comes
    early) in its samples; ``audio_pts_delay_s`` > 0: the audio stream's timestamps start
    later, so it plays late by that much."""
    path = Path(path)
    w, h = size
    with av.open(str(path), mode="w") as out:
        vs = None
        if with_video:
            vs = out.add_stream(vcodec, rate=fps)
            vs.width, vs.height = (h, w) if rotation in (90, 270, -90) else (w, h)
            vs.pix_fmt = "yuv420p"
            if rotation is not None:
                vs.set_display_rotation(rotation)
        a_s = None
        if with_audio:
            a_s = out.add_stream(acodec, rate=sample_rate)
            a_s.layout = {1: "mono", 2: "stereo", 8: "7.1"}[channels]
        if vs is not None:
            n = int(seconds * fps)
            t = np.arange(n) / fps
            env = envelope(t, seed, seconds)  # frame i shows the mouth at its own timestamp
            for i in range(n):
                img = np.full((h, w, 3), 40, dtype=np.uint8)
                bar_h = int(round(2 + env[i] * h * 0.25))
                cx, cy = int(w * MOUTH_CX), int(h * MOUTH_CY)
                img[cy - bar_h // 2 : cy + (bar_h + 1) // 2, cx - w // 6 : cx + w // 6] = 255
                if rotation:  # stored turned, so that it is upright once the rotation is applied
                    img = np.ascontiguousarray(np.rot90(img, k=-rotation // 90))
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = i
                frame.time_base = Fraction(1, fps)
                for p in vs.encode(frame):
                    out.mux(p)
            for p in vs.encode():
                out.mux(p)
        if a_s is not None:
            ns = int(seconds * sample_rate)
            t = np.arange(ns) / sample_rate
            env = envelope(t + lead_s, seed, seconds + 1)
            voice = sum(
                np.sin(2 * np.pi * f * t) / k for k, f in enumerate((150, 300, 450, 900), 1)
            )
            mono = np.zeros(ns) if silent else 0.3 * voice * env
            samples = np.tile(np.asarray(mono, dtype=np.float32), (channels, 1))
            encode_audio(out, a_s, samples, round(audio_pts_delay_s * sample_rate))
    return path


def encode_audio(out, stream, samples: np.ndarray, start: int = 0) -> None:
    """Encode ``samples`` (channels, N) float32 in -1..1 into ``stream`` of ``out`` (planar
    float or packed 16-bit, as the codec wants), the first sample at pts ``start``, and flush."""
    rate = stream.codec_context.sample_rate
    size = stream.codec_context.frame_size or 1024
    layout = stream.layout.name
    for s0 in range(0, samples.shape[1], size):
        chunk = np.ascontiguousarray(samples[:, s0 : s0 + size], dtype=np.float32)
        if stream.codec_context.format.name.endswith("p"):
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        else:
            packed = (chunk.T.reshape(1, -1) * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(packed, format="s16", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, start + s0, Fraction(1, rate)
        for p in stream.encode(frame):
            out.mux(p)
    for p in stream.encode():
        out.mux(p)


_RNG = np.random.default_rng(1)
_RIGID_TEMPLATE = _RNG.normal(0, 20, size=(len(RIGID), 3)).astype(np.float32)


class BarTracker:
    """Stands in for ``faces.FaceTracker`` on synthetic clips: one track whose inner lips are
    the top and bottom of the white bar, the rest of the face fixed."""

    def __init__(self) -> None:
        self.track = Track(track_id=0)
        self.scene_cuts: list[float] = []

    def update(self, time_s: float, image) -> None:  # a media.VideoFrame or an RGB array
        rgb = image if isinstance(image, np.ndarray) else image.rgb
        h, w = rgb.shape[:2]
        cx = int(w * MOUTH_CX)
        col = rgb[:, cx, 0] > 128
        rows = np.flatnonzero(col)
        if rows.size == 0:
            self.track.times_s.append(time_s)
            self.track.points.append(np.full((len(LANDMARKS), 3), np.nan, np.float32))
            self.track.boxes.append(np.zeros(4, np.float32))
            self.track.appearance.append(np.full(APPEARANCE_DIMS, np.nan, np.float32))
            return
        top, bottom = float(rows.min()), float(rows.max() + 1)
        cy = (top + bottom) / 2
        half = (bottom - top) / 2
        pts = np.zeros((len(LANDMARKS), 3), np.float32)
        n_out, n_in = len(LIP_OUTER), len(LIP_INNER)
        ang = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
        pts[:n_out, 0] = cx + (w / 6 + 4) * np.cos(ang)
        pts[:n_out, 1] = cy + (half + 4) * np.sin(ang)
        pts[n_out : n_out + n_in, 0] = cx + (w / 6) * np.cos(ang)
        pts[n_out : n_out + n_in, 1] = cy + half * np.sin(ang)
        # the mesh's inner-lip midpoints (13 upper, 14 lower) sit on the bar's edges
        pts[LANDMARKS.index(13)] = (cx, top, 0)
        pts[LANDMARKS.index(14)] = (cx, bottom, 0)
        pts[n_out + n_in :] = _RIGID_TEMPLATE + np.array([cx, h * 0.3, 0], np.float32)
        self.track.times_s.append(time_s)
        self.track.points.append(pts)
        self.track.appearance.append(appearance_of(rgb, pts[:, :2]))
        self.track.boxes.append(np.array([cx - w / 4, h * 0.1, cx + w / 4, h * 0.9], np.float32))

    def drain(self, before_s: float) -> list[Track]:
        return drain_tracks([self.track], before_s, [])

    def finish(self) -> list[Track]:
        return [self.track] if self.track.times_s else []
