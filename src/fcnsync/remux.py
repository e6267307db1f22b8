"""Writing media with the audio moved: by rewriting its timestamps (packets copied) or by moving
its samples (decoded, trimmed or padded with silence, re-encoded). The video packets are always
copied, never re-encoded. Used to make test and evaluation material and to correct files."""

from __future__ import annotations

import os
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
