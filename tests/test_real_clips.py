"""The shipped model on real development clips (skipped where ../shared is absent)."""

from __future__ import annotations

import pytest

import fcnsync


@pytest.fixture(scope="module")
def model():
    return fcnsync.load_model(device="cpu")


def test_syncnet_demo_clip_audio_leads_by_3_frames(dev_dir, model):
    res = fcnsync.detect(dev_dir / "R-V-Abhishek__Syncnet_FCN__data_example.avi", model=model)
    assert res.status == "ok", res.verdict
    assert res.offset_frames == pytest.approx(3.0, abs=1.0)
    assert res.offset_ms == pytest.approx(res.offset_frames * 40, abs=1)
    assert res.verdict.startswith("audio leads video by")


def test_delayed_copy_of_the_demo_clip(dev_dir, model):
    # the audio was delayed 480 ms + 69 ms of MP3 priming: about -8.7 frames on one clock
    res = fcnsync.detect(dev_dir / "rvafcn_2.avi", model=model)
    assert res.status == "ok", res.verdict
    assert res.offset_frames == pytest.approx(-8.7, abs=1.0)


def test_unseen_grid_speaker_is_in_sync(dev_dir, model):
    res = fcnsync.detect(dev_dir / "grid_s23_priazn.mpg", model=model)
    assert res.status == "ok" and abs(res.offset_frames) <= 1.0


def test_music_without_a_face_is_undetermined(dev_dir, model):
    res = fcnsync.detect(dev_dir / "moviepy_neg_2.mp4", model=model)
    assert res.status == "undetermined" and res.reason == "no face found"


def test_scoring_in_stretches_matches_the_whole_file(dev_dir, model):
    from fcnsync.pipeline import detect

    path = dev_dir / "adnerf_obama_1.mp4"  # 20 s
    whole = detect(path, model=model, segment_s=1e6)
    parts = detect(path, model=model, segment_s=4.0)
    assert parts.offset_frames == pytest.approx(whole.offset_frames, abs=0.2)
    assert parts.tracks[0].frames == whole.tracks[0].frames


def test_scan_of_a_mixed_folder_with_real_clips(dev_dir, tmp_path):
    import json
    import os
    import subprocess
    import sys

    root = tmp_path / "delivery"
    (root / "nested" / "deeper").mkdir(parents=True)
    os.symlink(dev_dir / "grid_s23_priazn.mpg", root / "a.mpg")
    os.symlink(dev_dir / "lrs2_unknown5_1.mp4", root / "nested" / "deeper" / "b.mp4")
    (root / "nested" / "empty.mov").write_bytes(b"")
    (root / "nested" / "broken.mp4").write_bytes(
        (dev_dir / "vox_pcavsm08_1.mp4").read_bytes()[:3000]
    )
    (root / "notes.txt").write_text("not media")
    (root / "nested" / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    r = subprocess.run(
        [sys.executable, "-m", "fcnsync.cli", "detect", str(root), "-j", "2", "--format", "jsonl"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 1
    recs = {os.path.basename(json.loads(x)["path"]): json.loads(x) for x in r.stdout.splitlines()}
    assert sorted(recs) == ["a.mpg", "b.mp4", "broken.mp4", "empty.mov"]
    assert recs["a.mpg"]["status"] == "ok" and recs["b.mp4"]["status"] == "ok"
    assert recs["empty.mov"]["status"] == "error" and recs["broken.mp4"]["status"] == "error"
    assert "Traceback" not in r.stderr


def test_face_mesh_on_its_own_thread_gives_the_same_landmarks_as_inline(dev_dir):
    import numpy as np

    from fcnsync.faces import FaceTracker
    from fcnsync.pipeline import extract

    clip = dev_dir / "hdtf_wdaedmarkey_1.mp4"
    one = extract(clip, FaceTracker(threads=1)).tracks
    two = extract(clip, FaceTracker(threads=2)).tracks
    assert len(one) == len(two) >= 1
    for a, b in zip(one, two, strict=True):
        (ta, pa, _, aa), (tb, pb, _, ab) = a.arrays(), b.arrays()
        assert len(ta) > 100 and np.array_equal(ta, tb)
        np.testing.assert_array_equal(pa, pb)
        np.testing.assert_array_equal(aa, ab)


def test_matroska_clip_with_a_repeated_decode_timestamp_copies_into_mp4(dev_dir, tmp_path):
    """soban_1.mkv's demuxer repeats a video DTS (packet 698); the mp4 muxer refused it."""
    import av

    from fcnsync.remux import shift_audio

    src, dst = dev_dir / "soban_1.mkv", tmp_path / "soban_1.mp4"
    shift_audio(src, dst, 0.24)
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        before = [bytes(p) for p in a.demux(a.streams.video[0]) if p.size]
        after = [bytes(p) for p in b.demux(b.streams.video[0]) if p.size]
    assert after == before
