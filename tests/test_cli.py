"""The command line: formats, inputs, exit codes, one-line errors."""

from __future__ import annotations

import csv
import io
import json

import pytest
from runner import run_cli
from synth import make_clip


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    make_clip(root / "a.mp4", seconds=2.0)
    (root / "sub").mkdir()
    make_clip(root / "sub" / "b.mkv", seconds=2.0)
    (root / "notes.txt").write_text("not media")
    return root


def test_folder_to_jsonl_one_record_per_media_file(clips, tiny_checkpoint):
    r = run_cli(["detect", str(clips), "--weights", str(tiny_checkpoint), "--format", "jsonl"])
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(rec["path"].rsplit("/", 1)[-1] for rec in records) == ["a.mp4", "b.mkv"]
    for rec in records:  # a bar is no face: measured, but undetermined
        assert rec["status"] == "undetermined" and rec["reason"] == "no face found"
        assert rec["offset_ms"] is None
    assert "Traceback" not in r.stderr
    assert "2 files: 0 ok, 2 undetermined, 0 error; 1 non-media file skipped" in r.stderr


def test_paths_on_stdin_with_csv(clips, tiny_checkpoint):
    paths = f"{clips / 'a.mp4'}\n{clips / 'sub' / 'b.mkv'}\n"
    r = run_cli(
        ["detect", "-", "--weights", str(tiny_checkpoint), "--format", "csv", "--ordered"],
        stdin=paths,
    )
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["path"] for row in rows] == paths.split()
    assert rows[0]["status"] == "undetermined"


def test_nul_separated_stdin(clips, tiny_checkpoint):
    paths = f"{clips / 'a.mp4'}\0{clips / 'sub' / 'b.mkv'}\0"
    r = run_cli(["detect", "-", "-0", "--weights", str(tiny_checkpoint)], stdin=paths)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2


def test_bad_files_give_one_line_each_and_exit_1(clips, tiny_checkpoint, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mov"
    text.write_text("hello\n" * 100)
    r = run_cli(
        [
            "detect",
            str(empty),
            str(text),
            str(tmp_path / "missing.mp4"),
            str(clips / "a.mp4"),
            "--weights",
            str(tiny_checkpoint),
            "--format",
            "json",
        ]
    )
    assert r.returncode == 1
    # records come as files finish (two workers here): compare them by path
    status = {rec["path"]: rec["status"] for rec in json.loads(r.stdout)}
    assert status == {
        str(empty): "error",
        str(text): "error",
        str(tmp_path / "missing.mp4"): "error",
        str(clips / "a.mp4"): "undetermined",
    }
    lines = r.stderr.strip().splitlines()
    assert lines[-1] == "4 files: 0 ok, 1 undetermined, 3 error"  # the summary
    assert sorted(lines[:-1]) == sorted(
        [
            f"Error: {empty}: empty file",
            f"Error: {text}: not a media file, or an unreadable one",
            f"Error: {tmp_path / 'missing.mp4'}: no such file",
        ]
    )


def test_usage_error_exits_2():
    r = run_cli(["detect"])
    assert r.returncode == 2
    r = run_cli(["detect", "x.mp4", "--format", "yaml"])
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_damaged_weights_are_one_line(tmp_path, clips):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\0" * 100)
    r = run_cli(["detect", str(clips / "a.mp4"), "--weights", str(bad)])
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"Error: {bad} is not a valid fcnsync checkpoint (not a PyTorch file)"
    ]


def test_output_file_gets_complete_lines(clips, tiny_checkpoint, tmp_path):
    out = tmp_path / "out.jsonl"
    r = run_cli(["detect", str(clips), "--weights", str(tiny_checkpoint), "-o", str(out)])
    assert r.returncode == 0 and r.stdout == ""
    text = out.read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 2


def _run_without(modules, args, stdin=None):
    """``fcnsync ARGS`` in a new process where ``import MODULE`` fails for each of ``modules``
    (one name or several), as without the extra."""
    import subprocess
    import sys

    names = [modules] if isinstance(modules, str) else list(modules)
    code = f"import sys; sys.modules.update(dict.fromkeys({names!r})); "
    code += "from fcnsync.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, input=stdin
    )


HEAVY = ("torch", "av", "mediapipe", "librosa", "scipy", "matplotlib", "gradio", "ray", "pyarrow")


@pytest.mark.parametrize("args", [["--help"], ["detect", "--help"], ["--version"]])
def test_help_needs_none_of_the_heavy_libraries(args):
    r = _run_without(HEAVY, args)
    assert r.returncode == 0, r.stderr
    assert "Usage:" in r.stdout or "fcnsync" in r.stdout


@pytest.mark.parametrize(
    "make, arg, message",
    [
        (lambda d: d.mkdir(), "empty_folder/", "no media files (looked for .mp4, .mov, "),
        (
            lambda d: (d.mkdir(), (d / "notes.txt").write_text("notes")),
            "empty_folder/",
            "no media files (looked for .mp4, .mov, ",
        ),
        (lambda d: None, "-", "no paths on stdin"),
    ],
    ids=["empty", "only-notes", "empty-stdin"],
)
def test_nothing_to_measure_is_one_line_and_exit_1(tmp_path, monkeypatch, make, arg, message):
    make(tmp_path / "empty_folder")
    monkeypatch.chdir(tmp_path)
    r = _run_without(HEAVY, ["detect", arg], stdin="")  # said before torch is imported
    assert r.returncode == 1
    assert r.stdout == ""
    [line] = r.stderr.strip().splitlines()
    assert line.startswith(f"Error: {'stdin' if arg == '-' else arg}: {message}")
    assert line.endswith(".dv)") or arg == "-"


def test_an_empty_folder_among_clips_is_named_and_the_clips_measured(
    clips, tiny_checkpoint, tmp_path
):
    (tmp_path / "empty").mkdir()
    r = run_cli(
        ["detect", str(clips / "a.mp4"), str(tmp_path / "empty"), "--weights", tiny_checkpoint]
    )
    assert r.returncode == 1
    assert len(r.stdout.splitlines()) == 1 and json.loads(r.stdout)["path"].endswith("a.mp4")
    assert r.stderr.startswith(f"Error: {tmp_path / 'empty'}: no media files (looked for .mp4")


def test_ray_engine_without_the_extra_is_one_line_and_exit_2(clips):
    r = _run_without("ray", ["detect", str(clips / "a.mp4"), "--engine", "ray"])
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "Error: the Ray engine needs the ray extra: pip install 'fcnsync[ray]'"
    ]


def test_a_parquet_folder_without_pyarrow_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "scan.parquet").mkdir()
    r = _run_without("pyarrow", ["select", str(tmp_path / "scan.parquet")])
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "fcnsync[ray]" in r.stderr


def test_an_output_in_a_missing_folder_is_one_line(clips, tiny_checkpoint, tmp_path):
    clip = clips / "a.mp4"
    nowhere = tmp_path / "no" / "such"
    r = run_cli(["fix", clip, "-o", nowhere / "a.mp4", "--weights", tiny_checkpoint])
    assert r.returncode == 1  # said before measuring: the record says why, stderr in one line
    assert r.stderr.strip().splitlines() == [
        f"Error: {clip}: cannot write {nowhere / 'a.mp4'}: no such folder"
    ]
    assert json.loads(r.stdout)["output"] is None
    results = tmp_path / "scan.jsonl"
    results.write_text(json.dumps({"path": str(clip), "status": "undetermined"}) + "\n")
    r = run_cli(["report", results, "-o", nowhere / "report.html"])
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"Error: cannot write {nowhere / 'report.html'}: No such file or directory"
    ]


def test_a_plot_folder_that_cannot_be_made_is_one_line_before_measuring(clips, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = run_cli(["detect", clips / "a.mp4", "--plot", blocker / "plots"])
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"Error: cannot write {blocker / 'plots'}: Not a directory"
    ]


@pytest.mark.parametrize("command", ["select", "report"])
def test_a_file_that_is_not_detects_output_is_one_line_and_exit_2(clips, tmp_path, command):
    other = tmp_path / "other.jsonl"
    other.write_text('{"name": "not a detect record"}\n')
    for path in (clips / "a.mp4", other):
        r = run_cli([command, path])
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().splitlines() == [
            f"Error: {path}: not detect's output (jsonl, json, csv or Parquet)"
        ]


def test_eval_of_a_folder_without_clips_is_one_line(tmp_path, tiny_checkpoint):
    data = tmp_path / "data"
    data.mkdir()
    r = run_cli(
        ["eval", data, "--weights", tiny_checkpoint]
        + ["--out", tmp_path / "ev", "--cache", tmp_path / "cache"]
    )
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"Error: no real clips with a face and speech to evaluate in {data}"
    ]


def test_the_monitor_options_default_to_the_library_constants():
    # cli.py keeps the monitor module (and torch) out of `--help`, so it restates these
    # defaults; they must stay the library's own
    import inspect

    from fcnsync import monitor as mon
    from fcnsync.cli import monitor_cmd

    defaults = {p.name: p.default for p in monitor_cmd.params}
    signature = inspect.signature(mon.monitor).parameters
    assert defaults["alarm_confidence"] == mon.ALARM_MIN_CONFIDENCE
    assert defaults["alarm_agree_ms"] == mon.ALARM_AGREE_MS
    assert defaults["alarm_windows"] == signature["alarm_windows"].default
