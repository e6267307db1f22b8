"""The Ray engine on a local Ray instance (2 CPUs, no dashboard, no network): the same records
as the local batch path, error records for bad files, resuming after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from runner import run_cli
from synth import make_clip

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install '.[ray]')")

from fcnsync.batch import WorkerSettings, measure_file  # noqa: E402
from fcnsync.calibration import load_calibration  # noqa: E402
from fcnsync.model import load_model  # noqa: E402

DEV_CLIPS = ("grid_s23_priazn.mpg", "transface_4.mp4", "lrs2_unknown5_1.mp4", "ysaid_2.mp4")
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="module")
def local_ray():
    os.environ.update(RAY_ENV)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def _local_records(paths, weights=None):
    model, cal = load_model(weights, device="cpu"), load_calibration(None)
    return [_comparable(measure_file(p, model, cal, 15, 16).to_dict()) for p in paths]


def _comparable(record):
    """A record without its timing, the one field that differs between two runs."""
    return {k: v for k, v in record.items() if k != "elapsed_s"}


def test_ray_records_equal_the_local_path_on_real_clips(local_ray, dev_dir, tmp_path):
    import fcnsync.ray as fr

    paths = [str(dev_dir / name) for name in DEV_CLIPS] + [str(tmp_path / "missing.mp4")]
    got = {}
    fr.run_paths(paths, WorkerSettings(None, None, "cpu", 15, 16), got.__setitem__)
    assert sorted(got) == list(range(len(paths)))
    ray_records = [_comparable(got[i].to_dict()) for i in range(len(paths))]
    local = _local_records(paths)
    assert ray_records == local
    assert [r["status"] for r in ray_records].count("ok") >= 2  # real measurements compared
    assert ray_records[-1]["status"] == "error" and "no such file" in ray_records[-1]["error"]


def test_detect_dataset_reads_a_text_listing_and_bad_files_are_records(
    local_ray, tmp_path, tiny_checkpoint
):
    import fcnsync.ray as fr

    make_clip(tmp_path / "a.mp4", seconds=2)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "broken.mov").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 500)
    names = ["a.mp4", "empty.mp4", "broken.mov"]
    listing = tmp_path / "paths.txt"
    listing.write_text("".join(f"{tmp_path / n}\n" for n in names))
    ds = ray.data.read_text(str(listing))
    records = fr.detect_dataset(ds, weights=str(tiny_checkpoint)).take_all()
    by_name = {os.path.basename(r["path"]): r for r in records}
    assert sorted(by_name) == sorted(names)
    assert by_name["a.mp4"]["status"] == "undetermined"
    assert by_name["empty.mp4"]["status"] == "error" and by_name["broken.mov"]["status"] == "error"
    local = _local_records([str(tmp_path / n) for n in names], str(tiny_checkpoint))
    assert [_comparable(by_name[n]) for n in names] == local
    # the records are the Parquet writer's schema: Ray writes them as they are
    local_ray.data.from_items(records).write_parquet(str(tmp_path / "out"))
    assert local_ray.data.read_parquet(str(tmp_path / "out")).count() == 3


def test_a_native_crash_in_decoding_is_that_file_s_error_record(
    local_ray, tmp_path, tiny_checkpoint
):
    import crashy

    import fcnsync.ray as fr

    local_ray.cloudpickle.register_pickle_by_value(crashy)  # Ray's workers do not see tests/
    paths = [str(tmp_path / n) for n in ("a.mp4", "crash.mp4", "b.mp4")]
    for path in paths:
        make_clip(path, seconds=2)
    got = {}
    settings = WorkerSettings(str(tiny_checkpoint), None, "cpu", 15, 16)
    fr.run_paths(paths, settings, got.__setitem__, decode_file=crashy.decode_file)
    assert sorted(got) == [0, 1, 2]
    assert got[1].status == "error" and "crashed" in got[1].error
    assert got[0].status == got[2].status == "undetermined"


def test_cli_ray_engine_resumes_after_a_kill(tmp_path, tiny_checkpoint):
    clips = [tmp_path / f"c{i}.mp4" for i in range(12)]
    for i, clip in enumerate(clips):
        make_clip(clip, seconds=3, lead_s=0.04 * (i % 3))
    listing = tmp_path / "paths.txt"
    listing.write_text("".join(f"{c}\n" for c in clips))
    out = tmp_path / "out.jsonl"
    args = ["detect", listing, "--engine", "ray", "-j", "2", "--weights", tiny_checkpoint]
    env = {**os.environ, **RAY_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fcnsync.cli", *map(str, args), "-o", str(out), "-q"],
        env=env,
        start_new_session=True,  # the driver and the local Ray it starts: one group to kill
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(out.read_text().splitlines())
    assert 1 <= before < len(clips), "the kill should land while the batch runs"
    r = subprocess.run(
        [sys.executable, "-m", "fcnsync.cli", *map(str, args), "-o", str(out), "--resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert f"({before} already in {out})" in r.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(rec["path"] for rec in records) == sorted(map(str, clips))
    by_path = {rec["path"]: _comparable(rec) for rec in records}
    assert [by_path[str(c)] for c in clips] == _local_records(
        list(map(str, clips)), tiny_checkpoint
    )


def test_parquet_output_resumes_with_the_local_engine_too(tmp_path, tiny_checkpoint):
    make_clip(tmp_path / "a.mp4", seconds=2)
    make_clip(tmp_path / "b.mp4", seconds=2)
    out = tmp_path / "scan.parquet"
    base = ["detect", "--weights", tiny_checkpoint, "-j", "1", "-o", out]
    r = run_cli([*base, tmp_path / "a.mp4"])
    assert r.returncode == 0, r.stderr
    (out / "part-00007.parquet.tmp").write_bytes(b"PAR1 cut short by a kill")
    r = run_cli([*base, "--resume", tmp_path / "a.mp4", tmp_path / "b.mp4"])
    assert r.returncode == 0 and "(1 already in" in r.stderr, r.stderr
    r = run_cli(["select", out, "--min-confidence", "0", "--invert"])
    assert sorted(os.path.basename(p) for p in r.stdout.split()) == ["a.mp4", "b.mp4"]
