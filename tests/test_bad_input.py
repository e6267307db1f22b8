"""A corpus of bad and odd inputs made here: each gives its documented outcome, never a
traceback or a hang. Outcomes: "error" (one line), "undetermined" (with a reason) or "ok"."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
from synth import BarTracker, encode_audio, make_clip

from fcnsync.calibration import Calibration
from fcnsync.pipeline import detect

OK = Calibration(threshold=0.0)  # with random weights every measured answer counts as ok


def _detect(path, tiny_model, tracker=True):
    return detect(path, model=tiny_model, calibration=OK, tracker=BarTracker() if tracker else None)


def _vfr_clip(path):
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=1000)  # timestamps in ms, frames 33-50 ms apart
        vs.width = vs.height = 64
        vs.pix_fmt = "yuv420p"
        a_s = out.add_stream("aac", rate=16000)
        a_s.layout = "mono"
        t = 0
        rng = np.random.default_rng(0)
        for _ in range(60):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            for p in vs.encode(frame):
                out.mux(p)
            t += int(rng.choice([33, 40, 50]))
        for p in vs.encode():
            out.mux(p)
        encode_audio(out, a_s, np.zeros((1, 32000), np.float32))
    return path


def _write(path, data):
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


def _symlink(d):
    os.symlink(d / "nowhere.mp4", d / "link.mp4")
    return d / "link.mp4"


def _directory(d):
    (d / "dir.mp4").mkdir()
    return d / "dir.mp4"


ERROR_CASES = {
    "empty file": (lambda d: _write(d / "empty.mp4", b""), "empty file"),
    "text with a video extension": (
        lambda d: _write(d / "t.mp4", "hello\n" * 100),
        "not a media file",
    ),
    "random bytes": (
        lambda d: _write(d / "r.mkv", np.random.default_rng(0).bytes(50000)),
        "not a media file",
    ),
    "audio only": (
        lambda d: make_clip(d / "a.mkv", seconds=1, with_video=False),
        "no video stream",
    ),
    "video only": (
        lambda d: make_clip(d / "v.mkv", seconds=1, with_audio=False),
        "no audio stream",
    ),
    "a directory": (_directory, "is a directory"),
    "a missing path": (lambda d: d / "missing.mp4", "no such file"),
    "a broken symlink": (_symlink, "broken symbolic link"),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_bad_input_is_one_clear_error(tmp_path, tiny_model, case):
    make, message = ERROR_CASES[case]
    res = _detect(make(tmp_path), tiny_model)
    assert res.status == "error"
    assert message in res.error and "\n" not in res.error


def test_truncated_mp4_without_its_index(tmp_path, tiny_model):
    path = make_clip(tmp_path / "full.mp4", seconds=3)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the moov atom is written last: it is gone
    res = _detect(cut, tiny_model)
    assert res.status == "error" and res.error


def test_packets_corrupted_mid_stream_are_skipped(tmp_path, tiny_model):
    path = make_clip(tmp_path / "c.mkv", seconds=4)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    for pos in rng.integers(len(data) // 3, 2 * len(data) // 3, 40):
        data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    res = _detect(path, tiny_model)
    assert res.status in ("ok", "undetermined", "error")
    assert res.status != "error" or "\n" not in res.error


@pytest.mark.parametrize(
    "kwargs, status, reason",
    [
        ({"seconds": 0.04}, "undetermined", "too short"),  # a single frame
        ({"size": (16, 16)}, "ok", None),
        ({"sample_rate": 8000}, "ok", None),
        ({"sample_rate": 96000, "acodec": "pcm_s16le"}, "ok", None),
        ({"channels": 8, "acodec": "pcm_s16le"}, "ok", None),
        ({"silent": True}, "undetermined", "no speech"),
        ({"rotation": 90}, "ok", None),
    ],
    ids=["single frame", "16x16", "8 kHz", "96 kHz", "8 channels", "silent", "rotated"],
)
def test_odd_but_valid_media_is_measured(tmp_path, tiny_model, kwargs, status, reason):
    path = make_clip(tmp_path / "o.mkv", **{"seconds": 3.0, **kwargs})
    res = _detect(path, tiny_model)
    assert res.status == status, res
    assert reason is None or reason in res.reason


def test_no_face_is_undetermined(tmp_path, tiny_model):
    res = _detect(make_clip(tmp_path / "n.mp4", seconds=2), tiny_model, tracker=False)
    assert (res.status, res.reason) == ("undetermined", "no face found")


def test_4k_video_is_measured(tmp_path, tiny_model):
    res = _detect(
        make_clip(tmp_path / "k.mp4", seconds=1.2, size=(3840, 2160)), tiny_model, tracker=False
    )
    assert (res.status, res.reason) == ("undetermined", "no face found")


def test_variable_frame_rate(tmp_path, tiny_model):
    res = _detect(_vfr_clip(tmp_path / "vfr.mkv"), tiny_model, tracker=False)
    assert res.status == "undetermined" and res.duration_s == pytest.approx(2.5, abs=0.2)


def test_non_utf8_file_name(tmp_path, tiny_model):
    src = make_clip(tmp_path / "plain.mkv", seconds=2)
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9-\xff.mkv")
    os.rename(src, odd)
    res = _detect(os.fsdecode(odd), tiny_model)
    assert res.status == "ok"


def test_non_utf8_file_name_through_the_cli(tmp_path, tiny_checkpoint):
    src = make_clip(tmp_path / "plain.mkv", seconds=1)
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9.mkv")
    os.rename(src, odd)
    for fmt in ("csv", "jsonl", "table"):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "fcnsync.cli",
                "detect",
                os.fsdecode(odd),
                "--weights",
                str(tiny_checkpoint),
                "--format",
                fmt,
            ],
            capture_output=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert b"Traceback" not in r.stderr


def test_fuzzed_files_never_crash_or_hang(tmp_path, tiny_checkpoint):
    """Mutate bytes of a small valid file; the CLI must answer every copy with a record and
    exit 0 or 1, within a time bound. FCNSYNC_FUZZ_CASES sets how many (default 24)."""
    n = int(os.environ.get("FCNSYNC_FUZZ_CASES", "24"))
    good = make_clip(tmp_path / "good.mp4", seconds=2).read_bytes()
    rng = np.random.default_rng(7)
    folder = tmp_path / "fuzz"
    folder.mkdir()
    for i in range(n):
        data = bytearray(good)
        for pos in rng.integers(0, len(data), int(rng.integers(1, 60))):
            data[pos] = int(rng.integers(0, 256))
        if rng.random() < 0.2:
            data = data[: int(rng.integers(1, len(data)))]
        (folder / f"f{i:03d}.mp4").write_bytes(bytes(data))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "fcnsync.cli",
            "detect",
            str(folder),
            "--weights",
            str(tiny_checkpoint),
            "--format",
            "jsonl",
        ],
        capture_output=True,
        text=True,
        timeout=60 + 10 * n,
    )
    assert r.returncode in (0, 1), r.stderr[-2000:]
    assert len(r.stdout.splitlines()) == n
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("fmt", ["jsonl", "live"])
def test_monitor_of_a_source_it_cannot_open_fails_with_one_line(tmp_path, tiny_checkpoint, fmt):
    missing = tmp_path / "gone.ts"
    r = subprocess.run(
        [sys.executable, "-m", "fcnsync.cli", "monitor", str(missing)]
        + ["--weights", str(tiny_checkpoint), "--format", fmt],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [f"Error: {missing}: no such file"]
    if fmt == "jsonl":  # the record stream still ends with its summary
        events = [line.split('"event": "')[1].split('"')[0] for line in r.stdout.splitlines()]
        assert events == ["error", "end"]
