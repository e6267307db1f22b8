"""Evidence pictures."""

from __future__ import annotations

import subprocess
import sys

from synth import BarTracker, make_clip

from fcnsync.calibration import Calibration
from fcnsync.pipeline import detect
from fcnsync.plots import plot_result


def test_plot_of_a_result_is_a_png(tmp_path, tiny_model):
    clip = make_clip(tmp_path / "c.mkv", seconds=4.0)
    res = detect(
        clip, model=tiny_model, calibration=Calibration(threshold=0.0), tracker=BarTracker()
    )
    plot_result(res, tmp_path / "c.png")
    data = (tmp_path / "c.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_detect_plot_option_writes_one_png_per_measured_file(dev_dir, tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "fcnsync.cli",
            "detect",
            str(dev_dir / "grid_s23_priazn.mpg"),
            "--plot",
            str(tmp_path / "p"),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0
    pngs = list((tmp_path / "p").glob("grid_s23_priazn.*.png"))
    assert len(pngs) == 1 and pngs[0].stat().st_size > 10_000
