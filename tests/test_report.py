"""The HTML report: one self-contained page for a batch with ok, undetermined and error records."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from browser import BROWSER, CHROMIUM_FLAGS
from synth import BarTracker, make_clip

from fcnsync.calibration import Calibration
from fcnsync.pipeline import detect, error_result
from fcnsync.report import write_report


@pytest.fixture
def records(tmp_path, tiny_model):
    ok = detect(
        make_clip(tmp_path / "talk.mkv", seconds=4.0),
        model=tiny_model,
        calibration=Calibration(threshold=0.0),
        tracker=BarTracker(),
    )
    undetermined = detect(
        make_clip(tmp_path / "silent.mkv", seconds=3.0, silent=True),
        model=tiny_model,
        tracker=BarTracker(),
    )
    err = error_result(str(tmp_path / "broken.mp4"), "not a media file, or an unreadable one")
    recs = [r.to_dict(evidence=True) for r in (ok, undetermined, err)]
    assert [r["status"] for r in recs] == ["ok", "undetermined", "error"]
    return recs


def test_report_is_self_contained_with_counts_plots_and_a_table(tmp_path, records):
    page = write_report(records, tmp_path / "report.html").read_text()
    assert "1 ok, 1 undetermined, 1 error" in page
    assert page.count("<img class='plot'") == 1  # the one record with a lag curve
    assert "data:image/png;base64," in page
    assert not re.search(r"(src|href)=['\"]https?://", page)  # nothing fetched from a network
    rows = re.findall(r"<tr><td>", page)
    assert len(rows) == 3 and "not a media file" in page


def test_report_ranks_a_drift_by_the_offset_it_reaches_and_says_how_it_changes(tmp_path, records):
    drifting = dict(records[0], path="drift.mp4", offset_ms=20.0, offset_frames=0.5)
    drifting.update(
        sync_profile="drift",
        verdict="audio drifts from +20 ms to +400 ms, +127 ms per minute",
        drift_ms_per_min=126.7,
        segments=[
            {
                "start_s": 0.5,
                "end_s": 180.5,
                "offset_ms": 20.0,
                "offset_frames": 0.5,
                "confidence": 0.9,
                "end_offset_ms": 400.0,
                "end_offset_frames": 10.0,
            }
        ],
    )
    steady = dict(records[0], path="steady.mp4", offset_ms=120.0, offset_frames=3.0)
    page = write_report([steady, drifting], tmp_path / "report.html").read_text()
    assert page.index("<h3>drift.mp4") < page.index("<h3>steady.mp4")  # 10 frames beats 3
    row = re.search(r"<tr><td>drift.mp4</td>.*?</tr>", page).group(0)
    assert "<td>drift</td>" in row and "+127 ms per minute" in row
    row = re.search(r"<tr><td>steady.mp4</td>.*?</tr>", page).group(0)
    assert "<td>constant</td><td></td>" in row


def test_report_command_reads_detect_output(tmp_path, records):
    res = tmp_path / "r.jsonl"
    res.write_text("".join(json.dumps(r) + "\n" for r in records))
    r = subprocess.run(
        [sys.executable, "-m", "fcnsync.cli", "report", str(res), "-o", str(tmp_path / "out.html")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and (tmp_path / "out.html").stat().st_size > 10_000


@pytest.mark.skipif(BROWSER is None, reason="no headless Chromium installed (Debian: chromium)")
def test_report_renders_in_a_headless_browser(tmp_path, records):
    page = write_report(records, tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    r = subprocess.run(
        [
            BROWSER,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,2000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-1000:]
    dom = subprocess.run(
        [
            BROWSER,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile2'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "1 ok, 1 undetermined, 1 error" in dom.stdout
    assert shot.exists() and shot.stat().st_size > 20_000
