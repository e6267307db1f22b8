"""Decoding with PyAV: video frames and audio samples on one clock, streamed.

Every frame and every audio chunk carries its presentation time in seconds on the container's
clock (stream start times, pts and edit lists as FFmpeg applies them), so an offset stored in
the container's timestamps is measured like one baked into the samples. Nothing is written to
disk and nothing is held beyond the current packet: memory does not grow with the video.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from .errors import MediaError, StreamError

AUDIO_SAMPLE_RATE_HZ = 16000  # everything downstream works on 16 kHz mono audio
MAX_DECODE_SIDE_PX = 960  # larger frames are scaled down while decoding: faces stay big enough
MIN_FPS, MAX_FPS = 5.0, 120.0
TS_TICKS_HZ = 90000  # MPEG-TS and -PS timestamps: 33 bits at 90 kHz, they wrap around
TS_WRAP_S = 2**33 / TS_TICKS_HZ
# From this many pixels a frame the decoder skips its deblocking filter (about 15 % of H.264
# decoding): at that size decoding sets the pace, and a face of hundreds of pixels is averaged
# down to the mesh's crop, which smooths the block edges the filter would.
SKIP_DEBLOCKING_FROM_PX = 1280 * 720
STALL_TIMEOUT_S = 30.0  # no new frame or sample for this long: the file is pathological

# FFmpeg's own warnings would reach our users' stderr: FFmpeg drops them itself. PyAV's Python
# log callback stays off: decoder threads that log through it need the GIL, and a decoder
# closed (its threads joined) by a thread holding the GIL would wait for them forever.
av.logging.set_level(None)
av.logging.set_libav_level(av.logging.PANIC)


@dataclass(frozen=True)
class MediaInfo:
    """What a probe of the container tells before decoding."""

    path: str
    container: str
    duration_s: float
    fps: float  # average frame rate of the video stream (0 until measured if the header lacks it)
    width: int  # coded size, before any display rotation
    height: int
    video_codec: str
    audio_codec: str  # "" where there is no audio stream (allowed only when asked for)
    audio_sample_rate_hz: int
    audio_channels: int

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_codec)


class VideoFrame:
    """One decoded picture shown at ``time_s`` on the common clock, as it is meant to be seen:
    rotation applied, scaled to ``width`` x ``height`` (at most ``max_side`` px). Nothing is
    converted until asked, so that a consumer that needs only part of the picture in colour
    (the face tracker: a small crop per frame, the whole picture now and then) does not pay for
    a whole-picture conversion per frame.

    ``rgb`` is the whole picture, (height, width, 3) uint8 (converted once, then kept);
    ``rgb_within(side)`` the same scaled to fit ``side``; ``yuv420()`` the stored 8-bit 4:2:0
    planes when that is the frame's format (else None), and ``stored_box`` where a box of the
    upright, scaled picture lies in them.
    """

    def __init__(self, time_s: float, frame: av.VideoFrame, max_side: int = MAX_DECODE_SIDE_PX):
        self.time_s = time_s
        self._frame = frame
        w, h = frame.width, frame.height
        scale = min(1.0, max_side / max(w, h))
        sw, sh = (max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2))
        self._scaled = (sw, sh) if scale < 1.0 else (w, h)
        self.rotation = int(getattr(frame, "rotation", 0) or 0) % 360
        if self.rotation not in (90, 180, 270):
            self.rotation = 0
        self.width, self.height = self._scaled[::-1] if self.rotation in (90, 270) else self._scaled
        self.scale = self._scaled[0] / w
        self._rgb: np.ndarray | None = None

    @property
    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = self._convert(*self._scaled)
        return self._rgb

    def rgb_within(self, max_side: int) -> np.ndarray:
        """The whole upright picture in RGB, scaled down to fit ``max_side`` (never up)."""
        if max_side >= max(self._scaled):
            return self.rgb
        k = max_side / max(self._scaled)
        sw, sh = self._scaled
        return self._convert(max(2, round(sw * k)), max(2, round(sh * k)))

    def _convert(self, w: int, h: int) -> np.ndarray:
        frame = self._frame
        if (w, h) != (frame.width, frame.height):
            # area averaging: a clean downscale, and cheaper than the default bicubic
            frame = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA")
        rgb: np.ndarray = frame.to_ndarray(format="rgb24")
        # PyAV reports the display matrix angle counter-clockwise; np.rot90 turns that way too
        if self.rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=self.rotation // 90))
        return rgb

    def yuv420(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Views of the stored Y (H, W) and U, V (H/2, W/2) planes of a limited-range 8-bit
        4:2:0 frame (unscaled, unrotated); None for any other format."""
        if self._frame.format.name != "yuv420p":
            return None
        planes = []
        for plane in self._frame.planes[:3]:
            flat = np.frombuffer(memoryview(plane), np.uint8)  # type: ignore[arg-type]
            planes.append(flat.reshape(-1, plane.line_size)[: plane.height, : plane.width])
        return planes[0], planes[1], planes[2]

    def stored_box(
        self, x0: float, y0: float, x1: float, y1: float
    ) -> tuple[float, float, float, float]:
        """The upright, scaled box [x0, x1) x [y0, y1) as a box of the stored luma plane
        (pixel edges, not centres; rotation turns it into another axis-aligned box)."""
        sw, sh = self._scaled
        box = {  # in the scaled stored picture, as np.rot90 turned it
            0: (x0, y0, x1, y1),
            90: (sw - y1, x0, sw - y0, x1),
            180: (sw - x1, sh - y1, sw - x0, sh - y0),
            270: (y0, sh - x1, y1, sh - x0),
        }[self.rotation]
        kx, ky = self._frame.width / sw, self._frame.height / sh
        return box[0] * kx, box[1] * ky, box[2] * kx, box[3] * ky


@dataclass
class AudioChunk:
    """Mono float32 samples at ``AUDIO_SAMPLE_RATE_HZ`` whose first sample plays at ``time_s``."""

    time_s: float
    samples: np.ndarray


@dataclass
class DecodeStats:
    """Counters kept while decoding, reported with the result."""

    video_frames: int = 0
    audio_samples: int = 0
    skipped_packets: int = 0
    first_video_time_s: float | None = None
    last_video_time_s: float | None = None
    frame_size: tuple[int, int] = (0, 0)  # (width, height) of the decoded, upright frames
    scale: float = 1.0  # decoded size over the stored size
    extra: dict[str, float] = field(default_factory=dict)


def is_url(source: str | os.PathLike[str]) -> bool:
    """A network source (http, https, rtmp, srt, udp, rtp, ...) rather than a local path."""
    return "://" in os.fspath(source)[:16]


def _check_path(path: str | os.PathLike[str]) -> str:
    if is_url(path):
        return os.fspath(path)
    p = Path(path)
    if p.is_symlink() and not p.exists():
        raise MediaError("broken symbolic link")
    if not p.exists():
        raise MediaError("no such file")
    if p.is_dir():
        raise MediaError("is a directory, not a media file")
    if p.stat().st_size == 0:
        raise MediaError("empty file")
    return os.fspath(p)


def _open(path: str | BinaryIO) -> av.container.InputContainer:
    try:
        return av.open(path, mode="r", timeout=STALL_TIMEOUT_S)
    except av.error.InvalidDataError:
        raise MediaError("not a media file, or an unreadable one") from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise StreamError(f"cannot open: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return msg[:200]


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Read the container header: streams, rates, sizes. Raises ``MediaError`` on bad input."""
    spath = _check_path(path)
    container = _open(spath)
    try:
        return _info(spath, container)
    finally:
        container.close()


def _info(
    spath: str, container: av.container.InputContainer, require_audio: bool = True
) -> MediaInfo:
    if not container.streams.video:
        raise MediaError("no video stream")
    if not container.streams.audio and require_audio:
        raise MediaError("no audio stream")
    v = container.streams.video[0]
    a = container.streams.audio[0] if container.streams.audio else None
    rate = v.average_rate or v.guessed_rate or v.base_rate
    fps = float(rate) if rate else 0.0
    if not (MIN_FPS <= fps <= MAX_FPS):
        fps = 0.0  # unknown: measured from the frame timestamps while decoding
    duration_s = 0.0
    if container.duration is not None:
        duration_s = container.duration / 1_000_000
    elif v.duration is not None and v.time_base is not None:
        duration_s = float(v.duration * v.time_base)
    width = v.codec_context.width or 0
    height = v.codec_context.height or 0
    return MediaInfo(
        path=spath,
        container=container.format.name,
        duration_s=duration_s,
        fps=fps,
        width=width,
        height=height,
        video_codec=v.codec_context.name,
        audio_codec=a.codec_context.name if a else "",
        audio_sample_rate_hz=(a.codec_context.sample_rate or 0) if a else 0,
        audio_channels=(a.codec_context.channels or 0) if a else 0,
    )


def _unwrap(t_s: float, ref_s: float, time_base: Fraction | None) -> float:
    """Undo a 33-bit MPEG timestamp wrap-around (a negative start written as a huge value, or
    a stream longer than 26.5 hours): bring ``t_s`` within half a wrap of ``ref_s``."""
    if time_base != Fraction(1, TS_TICKS_HZ):
        return t_s
    while t_s - ref_s > TS_WRAP_S / 2:
        t_s -= TS_WRAP_S
    while ref_s - t_s > TS_WRAP_S / 2:
        t_s += TS_WRAP_S
    return t_s


class MediaReader:
    """Streams one file: ``for item in reader`` yields ``VideoFrame`` and ``AudioChunk`` objects
    in demux order. ``info`` is known after construction, ``stats`` when iteration ends.
    ``require_audio=False`` accepts video without an audio stream (live monitoring reports
    such a stream instead of refusing it)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | BinaryIO,
        max_side_px: int = MAX_DECODE_SIDE_PX,
        require_audio: bool = True,
    ):
        if hasattr(path, "read"):  # a file object (e.g. a file still being written)
            self.path = str(getattr(path, "name", "<stream>"))
            self._container = _open(path)  # type: ignore[arg-type]
        else:
            self.path = _check_path(path)  # type: ignore[arg-type]
            self._container = _open(self.path)
        self.max_side_px = max_side_px
        try:
            self.info = _info(self.path, self._container, require_audio)
        except Exception:
            self._container.close()
            raise
        self.stats = DecodeStats()

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> MediaReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[VideoFrame | AudioChunk]:
        container = self._container
        vstream = container.streams.video[0]
        streams = [vstream, *container.streams.audio[:1]]
        vstream.thread_type = "AUTO"
        if self.info.width * self.info.height >= SKIP_DEBLOCKING_FROM_PX:
            vstream.codec_context.options = {"skip_loop_filter": "all"}
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_SAMPLE_RATE_HZ)
        next_audio_s: float | None = None
        last_video_s: float | None = None
        clock_s: float | None = None  # the last timestamp seen on any stream
        frame_period_s = 1.0 / (self.info.fps or 25.0)
        last_progress = time.monotonic()
        stats = self.stats
        try:
            packets = container.demux(*streams)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.error.EOFError:
                    break
                except (av.error.FFmpegError, OSError) as exc:
                    if stats.video_frames == 0 and stats.audio_samples == 0:
                        raise StreamError(f"cannot read: {_short(exc)}") from None
                    break  # truncated tail: keep what was read
                if time.monotonic() - last_progress > STALL_TIMEOUT_S:
                    raise MediaError("decoding makes no progress (corrupt file?)")
                try:
                    frames = packet.decode()
                except (av.error.FFmpegError, ValueError):
                    stats.skipped_packets += 1
                    continue
                for frame in frames:
                    last_progress = time.monotonic()
                    if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                        continue
                    if frame.time is not None and clock_s is not None and frame.time_base:
                        t_unwrapped = _unwrap(float(frame.time), clock_s, frame.time_base)
                        if t_unwrapped != frame.time:
                            frame.pts = round(t_unwrapped / frame.time_base)
                    if frame.time is not None:
                        clock_s = float(frame.time)
                    if isinstance(frame, av.VideoFrame):
                        t = frame.time
                        if t is None:
                            t = 0.0 if last_video_s is None else last_video_s + frame_period_s
                        if last_video_s is not None and t <= last_video_s - 1e-6:
                            continue  # duplicated or out-of-order timestamp: keep time monotonic
                        last_video_s = t
                        stats.video_frames += 1
                        if stats.first_video_time_s is None:
                            stats.first_video_time_s = t
                        stats.last_video_time_s = t
                        picture = VideoFrame(float(t), frame, self.max_side_px)
                        if stats.video_frames == 1:
                            stats.frame_size = (picture.width, picture.height)
                            stats.scale = picture.scale
                        yield picture
                        last_progress = time.monotonic()  # the consumer's time is not a stall
                    elif isinstance(frame, av.AudioFrame):
                        if frame.time is not None and (
                            next_audio_s is None or abs(frame.time - next_audio_s) > 0.02
                        ):
                            # a gap or a jump in the audio timestamps: trust the timestamps
                            next_audio_s = float(frame.time)
                        elif next_audio_s is None:
                            next_audio_s = 0.0
                        for out in resampler.resample(frame):
                            samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                            if samples.size == 0:
                                continue
                            yield AudioChunk(time_s=next_audio_s, samples=samples)
                            last_progress = time.monotonic()
                            stats.audio_samples += samples.size
                            next_audio_s += samples.size / AUDIO_SAMPLE_RATE_HZ
            if next_audio_s is not None:
                for out in resampler.resample(None):
                    samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    if samples.size:
                        yield AudioChunk(time_s=next_audio_s, samples=samples)
                        stats.audio_samples += samples.size
                        next_audio_s += samples.size / AUDIO_SAMPLE_RATE_HZ
        finally:
            self.close()
        if stats.video_frames == 0:
            raise MediaError("no decodable video frames")
        if stats.audio_samples == 0 and self.info.has_audio:
            raise MediaError("no decodable audio")
        self.info = replace(self.info, fps=self._frame_rate())

    def _frame_rate(self) -> float:
        """The header's rate when the timestamps agree with it, else the measured mean rate
        (variable frame rate, or a container that stores no rate)."""
        stats = self.stats
        header = self.info.fps
        if stats.video_frames < 2 or stats.last_video_time_s == stats.first_video_time_s:
            if header:
                return header
            raise MediaError("cannot tell the video frame rate")
        span = (stats.last_video_time_s or 0.0) - (stats.first_video_time_s or 0.0)
        measured = (stats.video_frames - 1) / span
        if header and abs(header - measured) <= 0.25 * measured:
            return header
        if not (MIN_FPS <= measured <= MAX_FPS):
            raise MediaError(f"unusable video frame rate ({measured:.3g} fps)")
        return measured


class ArrayMedia:
    """Video and audio held in memory, read like a file by a ``MediaReader``: iterating yields
    ``VideoFrame``s (the frame at index i shown at i / ``fps``) and ``AudioChunk``s (mono,
    ``AUDIO_SAMPLE_RATE_HZ``, resampled as a file's audio is), in time order. No file is
    written.

    ``frames`` (T, H, W, 3) uint8 RGB or a sequence of (H, W, 3); ``waveform`` (N,) or (N, C)
    float32 in [-1, 1] (int16 is scaled by 1 / 32768) at ``sample_rate_hz``, its first sample
    at time 0."""

    CHUNK_SAMPLES = 1024  # audio handed to the resampler at a time, as a decoder would

    def __init__(
        self,
        frames: np.ndarray | list[np.ndarray] | tuple[np.ndarray, ...],
        fps: float,
        waveform: np.ndarray,
        sample_rate_hz: int,
        name: str = "<arrays>",
        max_side_px: int = MAX_DECODE_SIDE_PX,
    ):
        if len(frames) == 0:
            raise MediaError("no video frames")
        first = np.asarray(frames[0])
        if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
            raise MediaError(
                f"frames must be (T, H, W, 3) uint8 RGB, not {first.dtype} {first.shape}"
            )
        if not MIN_FPS <= fps <= MAX_FPS:
            raise MediaError(f"unusable video frame rate ({fps:.3g} fps)")
        wave = np.asarray(waveform)
        if wave.dtype == np.int16:
            wave = wave.astype(np.float32) / 32768.0
        wave = wave.astype(np.float32, copy=False)
        if wave.ndim == 1:
            wave = wave[:, None]
        if wave.ndim != 2 or wave.shape[0] == 0 or sample_rate_hz <= 0:
            raise MediaError("waveform must be (N,) or (N, C) samples with a positive rate")
        self._frames = frames
        self._wave = wave
        self._rate = int(sample_rate_hz)
        self.max_side_px = max_side_px
        h, w = first.shape[:2]
        self.info = MediaInfo(
            path=name,
            container="",
            duration_s=len(frames) / fps,
            fps=float(fps),
            width=w,
            height=h,
            video_codec="rawvideo",
            audio_codec="pcm_f32le",
            audio_sample_rate_hz=self._rate,
            audio_channels=wave.shape[1],
        )
        self.stats = DecodeStats()

    def _audio(self) -> Iterator[AudioChunk]:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_SAMPLE_RATE_HZ)
        layout = "mono" if self._wave.shape[1] == 1 else "stereo"
        wave = self._wave if self._wave.shape[1] <= 2 else self._wave.mean(axis=1, keepdims=True)
        if wave.shape[1] == 1:
            layout = "mono"
        at_s = 0.0
        for i in range(0, len(wave) + self.CHUNK_SAMPLES, self.CHUNK_SAMPLES):
            piece = wave[i : i + self.CHUNK_SAMPLES]
            if len(piece):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(piece.reshape(1, -1)), format="flt", layout=layout
                )
                frame.sample_rate = self._rate
                outs = resampler.resample(frame)
            else:
                outs = resampler.resample(None)
            for out in outs:
                samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                if samples.size:
                    yield AudioChunk(time_s=at_s, samples=samples)
                    self.stats.audio_samples += samples.size
                    at_s += samples.size / AUDIO_SAMPLE_RATE_HZ
            if not len(piece):
                break

    def __iter__(self) -> Iterator[VideoFrame | AudioChunk]:
        audio = self._audio()
        pending = next(audio, None)
        stats = self.stats
        for i, rgb in enumerate(self._frames):
            t = i / self.info.fps
            while pending is not None and pending.time_s <= t + 1.0 / self.info.fps:
                yield pending
                pending = next(audio, None)
            pixels = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
            picture = VideoFrame(
                t, av.VideoFrame.from_ndarray(pixels, format="rgb24"), self.max_side_px
            )
            stats.video_frames += 1
            if stats.first_video_time_s is None:
                stats.first_video_time_s = t
                stats.frame_size = (picture.width, picture.height)
                stats.scale = picture.scale
            stats.last_video_time_s = t
            yield picture
        while pending is not None:
            yield pending
            pending = next(audio, None)
