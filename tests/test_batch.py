"""Batches: inputs, workers, isolation of crashes and hangs, ordering, resuming."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

from crashy import worker as crashy_worker
from runner import run_cli
from synth import make_clip

from fcnsync.batch import (
    Reorder,
    WorkerSettings,
    done_paths,
    expand_inputs,
    run_parallel,
    scan_inputs,
    summary_text,
)

SETTINGS = WorkerSettings(None, None, "cpu", 15, 16)


def test_a_crash_or_a_hang_is_that_file_s_error_and_the_rest_go_on():
    paths = ["a.mp4", "crash.mp4", "b.mp4", "hang.mp4", "c.mp4", "d.mp4"]
    got = {}
    run_parallel(
        paths, SETTINGS, 2, lambda i, r: got.setdefault(i, r), timeout_s=8, worker=crashy_worker
    )
    assert sorted(got) == list(range(6))
    assert got[1].status == "error" and "crashed" in got[1].error
    assert got[3].status == "error" and "timed out" in got[3].error
    assert all(got[i].status == "ok" for i in (0, 2, 4, 5))


def test_reorder_gives_input_order():
    out = []
    r = Reorder(out.append)
    for i in (2, 0, 3, 1):
        r(i, i)
    assert out == [0, 1, 2, 3]


def test_folder_walk_finds_media_recursively(tmp_path):
    (tmp_path / "x" / "y").mkdir(parents=True)
    for name in ("a.mp4", "x/b.MOV", "x/y/c.mkv", "x/notes.txt", "x/y/d.json"):
        (tmp_path / name).write_bytes(b"")
    found = [p[len(str(tmp_path)) + 1 :] for p in expand_inputs([str(tmp_path)])]
    assert found == ["a.mp4", "x/b.MOV", "x/y/c.mkv"]
    assert [p[-5:] for p in expand_inputs([str(tmp_path)], glob="*.mkv")] == ["c.mkv"]


def test_scan_counts_the_files_passed_over_and_names_the_inputs_that_gave_none(tmp_path):
    (tmp_path / "clips" / "x").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    for name in ("clips/a.mp4", "clips/x/notes.txt", "clips/x/b.json", "notes/readme.md"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "none.txt").write_text("\n\n")
    inputs = [str(tmp_path / d) for d in ("clips", "empty", "notes", "none.txt")]
    scan = scan_inputs(inputs)
    assert scan.paths == [str(tmp_path / "clips" / "a.mp4")]
    assert scan.non_media == 3
    assert [item for item, _ in scan.empty] == inputs[1:]
    assert scan.empty[0][1].startswith("no media files (looked for .mp4, .mov, ")
    assert scan.empty[2][1] == "lists no paths"
    narrowed = scan_inputs([str(tmp_path / "clips")], glob="*.mkv")
    assert narrowed.paths == [] and "no media files matching *.mkv" in narrowed.empty[0][1]


def test_half_written_last_line_is_dropped_on_resume(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text('{"path": "a.mp4", "status": "ok"}\n{"path": "b.mp4", "sta')
    assert done_paths(out) == {"a.mp4"}
    assert out.read_text() == '{"path": "a.mp4", "status": "ok"}\n'


def test_mixed_folder_with_two_jobs_then_resume_does_no_work_twice(tmp_path, tiny_checkpoint):
    root = tmp_path / "clips"
    (root / "nested").mkdir(parents=True)
    make_clip(root / "a.mp4", seconds=2)
    make_clip(root / "nested" / "b.mkv", seconds=2)
    (root / "empty.mp4").write_bytes(b"")
    (root / "broken.mov").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 500)
    (root / "readme.txt").write_text("not media")
    out = tmp_path / "out.jsonl"
    r = run_cli(["detect", str(root), "--weights", str(tiny_checkpoint), "-j", "2", "-o", str(out)])
    assert r.returncode == 1, r.stderr
    recs = {
        json.loads(line)["path"].rsplit("/", 1)[-1]: json.loads(line)
        for line in out.read_text().splitlines()
    }
    assert sorted(recs) == ["a.mp4", "b.mkv", "broken.mov", "empty.mp4"]
    assert recs["empty.mp4"]["status"] == "error" and recs["broken.mov"]["status"] == "error"
    assert recs["a.mp4"]["status"] == "undetermined"
    assert "4 files: 0 ok, 2 undetermined, 2 error" in r.stderr
    # a second run with --resume finds everything done and measures nothing
    r2 = run_cli(
        ["detect", str(root), "--weights", str(tiny_checkpoint), "-o", str(out), "--resume"]
    )
    assert r2.returncode == 0 and len(out.read_text().splitlines()) == 4
    assert "4 already in" in r2.stderr
    # a new file is the only one measured
    make_clip(root / "nested" / "c.mp4", seconds=2)
    r3 = run_cli(
        [
            "detect",
            str(root),
            "--weights",
            str(tiny_checkpoint),
            "-o",
            str(out),
            "--resume",
            "--ordered",
        ]
    )
    lines = out.read_text().splitlines()
    assert r3.returncode == 0 and len(lines) == 5 and lines[-1].find("c.mp4") > 0


def test_resuming_a_csv_resumes_it_and_refuses_one_with_other_columns(tmp_path, tiny_checkpoint):
    make_clip(tmp_path / "a.mp4", seconds=2)
    make_clip(tmp_path / "b.mp4", seconds=2)
    out = tmp_path / "scan.csv"
    base = ["detect", "--weights", tiny_checkpoint, "-o", out]
    assert run_cli([*base, tmp_path / "a.mp4"]).returncode == 0
    r = run_cli([*base, "--resume", tmp_path / "a.mp4", tmp_path / "b.mp4"])
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [row["path"].rsplit("/", 1)[-1] for row in rows] == ["a.mp4", "b.mp4"]
    assert all(None not in row for row in rows)  # no row longer than the header
    old = tmp_path / "old.csv"
    before = "path,status,offset_ms\nx.mp4,ok,12.0\ny.mp4,o"  # its last line cut short
    old.write_text(before)
    r = run_cli(["detect", "--weights", tiny_checkpoint, "-o", old, "--resume", tmp_path / "b.mp4"])
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"Error: cannot resume {old}: its columns are not this version's detect CSV; "
        "write to a new file"
    ]
    assert old.read_text() == before  # left as it was, its cut line too


def test_select_prints_the_in_sync_paths(tmp_path):
    res = tmp_path / "r.jsonl"
    rows = [
        {"path": "good.mp4", "status": "ok", "offset_frames": 0.4, "confidence": 0.97},
        {"path": "late.mp4", "status": "ok", "offset_frames": -3.0, "confidence": 0.99},
        {"path": "unsure.mp4", "status": "ok", "offset_frames": 0.0, "confidence": 0.5},
        {"path": "none.mp4", "status": "undetermined", "offset_frames": None, "confidence": None},
        # in sync at its headline, but its offset walks 5 frames through the file
        {
            "path": "drifts.mp4",
            "status": "ok",
            "offset_frames": 0.2,
            "confidence": 0.99,
            "sync_profile": "drift",
        },
        {
            "path": "steady.mp4",
            "status": "ok",
            "offset_frames": -0.3,
            "confidence": 0.95,
            "sync_profile": "constant",
        },
    ]
    res.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run_cli(["select", str(res)])
    assert r.returncode == 0 and r.stdout == "good.mp4\nsteady.mp4\n"
    r = run_cli(["select", str(res), "--invert", "--max-offset-frames", "3"])
    assert r.stdout.split() == ["unsure.mp4", "none.mp4", "drifts.mp4"]


def test_a_txt_input_is_a_listing_of_paths(tmp_path):
    listing = tmp_path / "paths.txt"
    listing.write_text("/data/a.mp4\n\n  /data/b c.mkv  \n")
    assert list(expand_inputs([str(listing), "/data/d.mov"])) == [
        "/data/a.mp4",
        "/data/b c.mkv",
        "/data/d.mov",
    ]


def test_summary_gives_the_median_of_an_even_count_as_the_mean_of_the_middle_two():
    results = [
        SimpleNamespace(status="ok", offset_frames=3.4),
        SimpleNamespace(status="ok", offset_frames=-8.2),
        SimpleNamespace(status="error", offset_frames=None),
    ]
    line = summary_text(results)
    assert "3 files: 2 ok, 0 undetermined, 1 error" in line
    assert "> 3: 2 (median 5.8 frames)" in line
    results.append(SimpleNamespace(status="ok", offset_frames=0.5))
    assert "(median 3.4 frames)" in summary_text(results)
    assert "offset changes" not in summary_text(results)
    results.append(SimpleNamespace(status="ok", offset_frames=0.1, sync_profile="steps"))
    assert "offset changes within 1 (drift or steps" in summary_text(results)
