"""Writing media with the audio moved: by rewriting its timestamps (packets copied) or by moving
its samples (decoded, trimmed or padded with silence, re-encoded). The video packets are always
copied, never re-encoded. Used to make test and evaluation material and to correct files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from .errors import MediaError


def shift_audio(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    lead_s: float,
    mode: str = "timestamps",
    fmt: str | None = None,
    options: dict[str, str] | None = None,
) -> None:
    """Copy ``src`` to ``dst`` with the audio moved ``lead_s`` seconds earlier (negative:
    later). ``mode`` "timestamps" moves the audio packets' timestamps; "samples" re-encodes the
    audio (AAC) with its samples moved. ``fmt``/``options``: the output container and muxer
    options (e.g. ``"hls"`` with ``{"hls_time": "2"}``)."""
    if mode not in ("timestamps", "samples"):
        raise ValueError(f"unknown mode {mode!r}")
    try:
        inp = av.open(os.fspath(src))
    except av.error.FFmpegError as exc:
        raise MediaError(f"cannot open {src}: {exc}") from None
    with inp, av.open(os.fspath(dst), "w", format=fmt, options=options or {}) as out:
        if not inp.streams.video or not inp.streams.audio:
            raise MediaError("needs a video and an audio stream")
        v_in, a_in = inp.streams.video[0], inp.streams.audio[0]
        v_out = out.add_stream_from_template(v_in)
        a_out: Any
        if mode == "timestamps":
            a_out = out.add_stream_from_template(a_in)
        else:
            audio, rate, layout, start = _decoded_audio(src)
            # AVI keeps no audio timestamps: an encoder's priming delay would stay in the file
            codec = "pcm_s16le" if out.format.name == "avi" else "aac"
            a_out = out.add_stream(codec, rate=rate)
            a_out.layout = layout
        others = _other_streams(inp, out, v_in, a_in)
        _copy(inp, out, v_in, v_out, a_in if mode == "timestamps" else None, a_out, lead_s, others)
        if mode == "samples":
            _encode_shifted(out, a_out, audio, rate, layout, start, lead_s)


@dataclass
class AudioMove:
    """From ``start_s`` to ``end_s`` (media clock) the audio leads its picture by ``lead_s``
    at ``start_s`` and ``end_lead_s`` at ``end_s``, linearly in between (equal: a constant
    lead). Moves are given in time order; the first reaches back to the file's start, the
    last on to its end."""

    start_s: float
    end_s: float
    lead_s: float
    end_lead_s: float

    def slope(self) -> float:
        span = self.end_s - self.start_s
        return 0.0 if span <= 0 else (self.end_lead_s - self.lead_s) / span


JOIN_SEARCH_S = 0.5  # a join between moves is placed at the quietest moment this near the change
JOIN_FADE_S = 0.01  # ... and cross-faded over this long


def retime_audio(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], moves: list[AudioMove]
) -> list[float]:
    """Copy ``src`` to ``dst`` with the audio put back under its picture where it leads by a
    varying amount (``moves``: a drift is one move whose lead changes, steps are several
    constant ones). The audio is decoded, read at each moment ``lead`` earlier (a drift is
    resampled, its pitch restored with it; soxr), re-encoded; the video packets are copied.
    Between two moves the join is placed at the quietest moment within ``JOIN_SEARCH_S`` of
    their boundary and cross-faded. Returns the join times (media clock)."""
    if not moves:
        raise ValueError("no moves")
    audio, rate, layout, start = _decoded_audio(src)
    fixed, joins = retimed(audio, rate, start, moves)
    try:
        inp = av.open(os.fspath(src))
    except av.error.FFmpegError as exc:
        raise MediaError(f"cannot open {src}: {exc}") from None
    with inp, av.open(os.fspath(dst), "w") as out:
        if not inp.streams.video or not inp.streams.audio:
            raise MediaError("needs a video and an audio stream")
        v_in, a_in = inp.streams.video[0], inp.streams.audio[0]
        v_out = out.add_stream_from_template(v_in)
        codec = "pcm_s16le" if out.format.name == "avi" else "aac"
        a_out: Any = out.add_stream(codec, rate=rate)
        a_out.layout = layout
        others = _other_streams(inp, out, v_in, a_in)
        _copy(inp, out, v_in, v_out, None, a_out, 0.0, others)
        _encode(out, a_out, fixed, rate, layout, start)
    return joins


def retimed(
    audio: np.ndarray, rate: int, start: float, moves: list[AudioMove]
) -> tuple[np.ndarray, list[float]]:
    """``retime_audio``'s sample work: ``audio`` (C, N) from ``start`` seconds, each moment
    read where its move says the sound of that picture is (silence where that is outside the
    recording). Returns the new (C, N) audio and the join times."""
    n = audio.shape[1]
    # each move's reading over the whole file, then the pieces joined
    bounds = [m.end_s for m in moves[:-1]]
    nexts = [m.start_s for m in moves[1:]]
    readings = [_read_move(audio, rate, start, m) for m in moves]
    out = readings[0].copy()
    joins = []
    fade = max(1, round(JOIN_FADE_S * rate))
    for k, (a_end, b_start) in enumerate(zip(bounds, nexts, strict=True)):
        change = 0.5 * (a_end + b_start)
        j = _quietest(readings[k], readings[k + 1], rate, start, change)
        joins.append(start + j / rate)
        lo, hi = max(0, j - fade // 2), min(n, j - fade // 2 + fade)
        ramp = np.linspace(0.0, 1.0, hi - lo, dtype=np.float32)
        out[:, lo:hi] = readings[k][:, lo:hi] * (1 - ramp) + readings[k + 1][:, lo:hi] * ramp
        out[:, hi:] = readings[k + 1][:, hi:]
    return out, joins


def _read_move(audio: np.ndarray, rate: int, start: float, move: AudioMove) -> np.ndarray:
    """The audio as ``move`` puts it back: at picture time t the sound recorded at t - lead(t)."""
    n = audio.shape[1]
    b = move.slope()
    # source time s(t) = t - lead(t) = (1 - b) t + c, with c = -(lead_s - b start_s)
    alpha = 1.0 - b
    c = -(move.lead_s - b * move.start_s)
    if abs(b) < 1e-9:
        shift = round(c * rate)  # source sample = output sample + shift
        return _take(audio, shift, n)
    import soxr  # noqa: PLC0415  (only a drift needs a resampler)

    # z_j = a(start + j alpha / rate): the recording resampled to rate / alpha
    z = soxr.resample(np.ascontiguousarray(audio.T), rate, rate / alpha, quality="HQ").T.astype(
        np.float32
    )
    # output i (time start + i / rate) reads a at alpha (start + i / rate) + c, which is z at
    # j = i + (alpha start + c - start) rate / alpha
    shift = round((alpha * start + c - start) * rate / alpha)
    return _take(z, shift, n)


def _take(audio: np.ndarray, shift: int, n: int) -> np.ndarray:
    """``n`` samples from index ``shift`` of ``audio`` (zeros outside it)."""
    out = np.zeros((audio.shape[0], n), np.float32)
    lo, hi = max(0, -shift), min(n, audio.shape[1] - shift)
    if lo < hi:
        out[:, lo:hi] = audio[:, lo + shift : hi + shift]
    return out


def _quietest(a: np.ndarray, b: np.ndarray, rate: int, start: float, change_s: float) -> int:
    """The sample near ``change_s`` where both readings are quietest (20 ms of energy)."""
    n = a.shape[1]
    lo = int(np.clip(round((change_s - JOIN_SEARCH_S - start) * rate), 0, n))
    hi = int(np.clip(round((change_s + JOIN_SEARCH_S - start) * rate), 0, n))
    if hi - lo < 2:
        return int(np.clip(round((change_s - start) * rate), 0, n))
    power = (a[:, lo:hi] ** 2).sum(axis=0) + (b[:, lo:hi] ** 2).sum(axis=0)
    win = max(1, round(0.02 * rate))
    smooth = np.convolve(power, np.ones(win) / win, mode="same")
    return lo + int(np.argmin(smooth))


def _other_streams(inp: Any, out: Any, v_in: Any, a_in: Any) -> dict[Any, Any]:
    """Every other stream (more audio tracks, subtitles, data) that the output can carry."""
    others = {}
    for stream in inp.streams:
        if stream is v_in or stream is a_in or stream.type not in ("audio", "subtitle", "data"):
            continue
        try:
            others[stream] = out.add_stream_from_template(stream)
        except (ValueError, av.error.FFmpegError):
            continue  # the output container cannot hold it
    return others


def _copy(
    inp: Any,
    out: Any,
    v_in: Any,
    v_out: Any,
    a_in: Any,
    a_out: Any,
    lead_s: float,
    others: dict[Any, Any],
) -> None:
    streams = [v_in] + ([a_in] if a_in is not None else []) + list(others)
    delta = round(-lead_s / a_in.time_base) if a_in is not None and a_in.time_base else 0
    dts = _DecodeTimestamps()
    for packet in inp.demux(*streams):
        if packet.dts is None and packet.pts is None:
            continue  # the demuxer's flush packet
        if a_in is not None and packet.stream is a_in:
            if packet.pts is not None:
                packet.pts += delta
            if packet.dts is not None:
                packet.dts += delta
            packet.stream = a_out
        elif packet.stream is v_in:
            packet.stream = v_out
        else:
            packet.stream = others[packet.stream]
        for ready in dts.push(packet):
            out.mux(ready)
    for ready in dts.flush():
        out.mux(ready)


class _DecodeTimestamps:
    """Gives every copied packet a decode timestamp that rises strictly within its stream, as
    mp4 and mov require: Matroska and raw streams with B-frames leave the first packets'
    DTS unset and can repeat one. Packets before a stream's first known DTS are held back and
    given DTS counted back from it by their durations; a missing or repeated DTS later on
    becomes the previous one plus the packet's duration (at least one tick), never above its
    PTS where that can be kept."""

    def __init__(self) -> None:
        self._last: dict[Any, int] = {}
        self._held: dict[Any, list[Any]] = {}

    def push(self, packet: Any) -> list[Any]:
        key = packet.stream
        if key not in self._last:
            if packet.dts is None:
                self._held.setdefault(key, []).append(packet)
                return []
            held = self._held.pop(key, [])
            t = packet.dts
            for p in reversed(held):
                t -= max(1, p.duration or 1)
                p.dts = t
            self._last[key] = packet.dts
            return [*held, packet]
        last = self._last[key]
        if packet.dts is None or packet.dts <= last:
            step = max(1, packet.duration or 1) if packet.dts is None else 1
            packet.dts = last + step
            if packet.pts is not None and packet.pts < packet.dts:
                packet.dts = max(last + 1, packet.pts)
        self._last[key] = packet.dts
        return [packet]

    def flush(self) -> list[Any]:
        """Streams that never gave a DTS: their packets in order, DTS from their PTS."""
        rest = []
        for held in self._held.values():
            t: int | None = None
            for p in held:
                want = p.pts if p.pts is not None else (0 if t is None else t + 1)
                t = want if t is None else max(t + 1, want)
                p.dts = t
                rest.append(p)
        self._held.clear()
        return rest


def _decoded_audio(src: str | os.PathLike[str]) -> tuple[np.ndarray, int, str, float]:
    with av.open(os.fspath(src)) as inp:
        a_in = inp.streams.audio[0]
        rate = a_in.codec_context.sample_rate or 48000
        layout = "stereo" if (a_in.codec_context.channels or 1) > 1 else "mono"
        res = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        chunks = [r.to_ndarray() for f in inp.decode(a_in) for r in res.resample(f)]
        start = (
            float(a_in.start_time * a_in.time_base)
            if a_in.start_time is not None and a_in.time_base
            else 0.0
        )
    audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), np.float32)
    return audio, rate, layout, start


def _encode_shifted(
    out: Any, a_out: Any, audio: np.ndarray, rate: int, layout: str, start: float, lead_s: float
) -> None:
    n = round(abs(lead_s) * rate)
    audio = audio[:, n:] if lead_s > 0 else np.pad(audio, ((0, 0), (n, 0)))
    _encode(out, a_out, audio, rate, layout, start)


def _encode(out: Any, a_out: Any, audio: np.ndarray, rate: int, layout: str, start: float) -> None:
    pts0 = round(start * rate)
    planar = a_out.codec_context.format.name.endswith("p")
    for s0 in range(0, audio.shape[1], 1024):
        block = np.ascontiguousarray(audio[:, s0 : s0 + 1024], dtype=np.float32)
        if planar:
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
        else:  # packed 16-bit (PCM)
            packed = (np.clip(block.T, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(packed, format="s16", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, pts0 + s0, Fraction(1, rate)
        for p in a_out.encode(frame):
            out.mux(p)
    for p in a_out.encode():
        out.mux(p)
