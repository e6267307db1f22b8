"""The web page: its handlers called directly (ok, undetermined, error uploads, a stream URL,
the fix button), the command that serves it, and the page in a real headless browser."""

from __future__ import annotations

import functools
import http.server
import json
import os
import socket
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from browser import BROWSER, CHROMIUM_FLAGS, DRIVER
from runner import run_cli
from synth import BarTracker, make_clip

pytest.importorskip("gradio", reason="the app extra is not installed")

from fcnsync.app import (  # noqa: E402
    Engine,
    Session,
    fix_upload,
    measure_stream,
    measure_upload,
    page_verdict,
    start,
)
from fcnsync.calibration import Calibration  # noqa: E402
from fcnsync.errors import FcnsyncError  # noqa: E402
from fcnsync.pipeline import detect  # noqa: E402

# what changes from one run to the next, or names where the file was kept
VOLATILE = ("elapsed_s", "path")


def _stable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in VOLATILE}


@pytest.fixture
def engine(tiny_model):
    return Engine(tiny_model, Calibration(threshold=0.0), tracker_factory=BarTracker)


@pytest.fixture
def talk(tmp_path):
    return make_clip(tmp_path / "talk.mkv", seconds=4.0, lead_s=0.08)


def test_ok_upload_gives_verdict_table_plot_and_the_detect_record(tmp_path, engine, talk):
    work = tmp_path / "work"
    work.mkdir()
    steps = []
    out = measure_upload(str(talk), engine, work, lambda f, d: steps.append(d))
    expected = detect(
        talk, model=engine.model, calibration=engine.calibration, tracker=BarTracker()
    )
    assert out.status == "ok" == expected.status
    assert out.verdict == f"{expected.verdict}, confidence {expected.confidence:.2f}"
    assert out.verdict.startswith("audio ")
    assert [row[0] for row in out.rows] == [t.track_id for t in expected.tracks]
    assert out.rows[0][6] == expected.tracks[0].offset_frames
    assert Path(out.plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = json.loads(Path(out.record).read_text())  # as detect --format json writes it
    assert len(records) == 1 and records[0]["path"] == "talk.mkv"
    assert _stable(records[0]) == _stable(expected.to_dict(evidence=True))
    assert records[0]["tracks"][0]["lag_curve"]  # the evidence is in the record
    assert steps and steps[0].startswith("measuring talk.mkv")
    assert out.source == str(talk)


def test_silent_upload_is_undetermined_and_cannot_be_fixed(tmp_path, engine):
    clip = make_clip(tmp_path / "silent.mkv", seconds=3.0, silent=True)
    out = measure_upload(str(clip), engine, tmp_path)
    assert out.status == "undetermined"
    assert out.verdict.startswith("undetermined: ")
    assert out.plot is None and not out.fixable
    assert json.loads(Path(out.record).read_text())[0]["status"] == "undetermined"
    message, fixed = fix_upload(str(clip), engine, tmp_path)
    assert fixed is None and message.startswith("error: not fixed: the measurement is undetermined")


def test_bad_upload_gives_one_line_not_a_traceback(tmp_path, engine):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 50)
    out = measure_upload(str(bad), engine, tmp_path)
    assert out.status == "error" and out.verdict.startswith("error: ")
    assert "\n" not in out.verdict and "Traceback" not in out.verdict
    assert not out.rows and out.plot is None and not out.fixable
    nothing = measure_upload(None, engine, tmp_path)
    assert nothing.status == "error" and "choose a video file" in nothing.verdict


def test_a_tracker_that_cannot_start_is_a_message(tmp_path, engine, talk):
    def broken():
        raise RuntimeError("landmark model missing\nmore detail")

    engine.tracker_factory = broken
    out = measure_upload(str(talk), engine, tmp_path)
    assert out.verdict == "error: the face tracker cannot start: landmark model missing"


def test_confidence_below_the_fix_threshold_disables_fixing(tmp_path, engine, talk):
    engine.min_fix_confidence = 1.01  # no measurement is that sure
    out = measure_upload(str(talk), engine, tmp_path)
    assert out.status == "ok" and not out.fixable
    message, fixed = fix_upload(str(talk), engine, tmp_path)
    assert fixed is None and message.startswith("error: not fixed: confidence")


def test_fix_button_writes_the_corrected_file_with_fix_file(tmp_path, engine, talk):
    engine.min_fix_confidence = 0.0
    out = measure_upload(str(talk), engine, tmp_path)
    assert out.fixable
    message, fixed = fix_upload(out.source, engine, tmp_path)
    assert fixed is not None and Path(fixed).name == "talk.fixed.mkv", message
    measured = detect(
        fixed, model=engine.model, calibration=engine.calibration, tracker=BarTracker()
    )
    assert measured.status != "error"
    assert (
        f"audio delayed by {json.loads(Path(out.record).read_text())[0]['offset_ms']:+.0f} ms"
        in (message)
    )
    assert Path(talk).exists()  # the upload itself is never changed


def test_page_verdict_adds_the_confidence():
    assert page_verdict("ok", "audio leads video by 120 ms (3.0 frames)", 0.971) == (
        "audio leads video by 120 ms (3.0 frames), confidence 0.97"
    )
    assert page_verdict("undetermined", "undetermined: no face found", None) == (
        "undetermined: no face found"
    )
    assert page_verdict("error", "error: unreadable", 0.5) == "error: unreadable"


@pytest.fixture
def http_root(tmp_path):
    """A plain HTTP server on 127.0.0.1 for a folder: stands in for a stream's server."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_stream_url_gives_one_window_like_monitor(tmp_path, engine, http_root):
    root, base = http_root
    make_clip(root / "live.mkv", seconds=7.0)
    out = measure_stream(f"{base}/live.mkv", engine, tmp_path, window_s=4.0)
    assert out.status in ("ok", "undetermined"), out.verdict
    rec = json.loads(Path(out.record).read_text())
    assert rec["event"] == "window" and rec["stream_end_s"] - rec["stream_start_s"] == 4.0
    assert not out.fixable and out.plot is None


def test_stream_url_errors_are_one_line(tmp_path, engine, http_root):
    _, base = http_root
    for url in ("/etc/passwd", "file:///etc/passwd", "ftp://127.0.0.1/x"):
        out = measure_stream(url, engine, tmp_path)
        assert out.verdict == "error: give an http:// or https:// stream URL"
    out = measure_stream(f"{base}/missing.m3u8", engine, tmp_path)
    assert out.status == "error" and "\n" not in out.verdict


def test_session_files_are_removed_but_a_reused_upload_is_kept(tmp_path):
    upload = tmp_path / "up.mp4"
    upload.write_bytes(b"x")
    s = Session(tmp_path)
    s.upload = str(upload)
    (s.workdir / "out.json").write_text("{}")
    s.remove(keep=str(upload))
    assert not s.workdir.exists() and upload.exists()
    s2 = Session(tmp_path)
    s2.upload = str(upload)
    s2.remove()
    assert not s2.workdir.exists() and not upload.exists()


def test_missing_gradio_gives_the_install_hint(monkeypatch, engine, tmp_path):
    import sys

    from fcnsync.app import build_page

    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(FcnsyncError, match=r'pip install "fcnsync\[app\]"'):
        build_page(engine, tmp_path)


def _wait_for(condition, timeout_s: float) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_stops_and_removes_its_files(engine):
    server = start(engine, port=_free_port(), block=False)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url, timeout=30) as r:
            assert r.status == 200 and b"fcnsync" in r.read()
        assert server.root.is_dir()
    finally:
        server.close()
    assert not server.root.exists()


def test_busy_port_is_one_clear_error(engine):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(FcnsyncError, match="cannot serve on 127.0.0.1"):
            start(engine, port=s.getsockname()[1], block=False)


def test_users_at_once_are_queued_and_all_answered(engine, talk):
    from gradio_client import Client, handle_file

    server = start(engine, port=_free_port(), block=False)
    try:
        clients = [Client(server.url, verbose=False) for _ in range(3)]
        jobs = [c.submit(handle_file(str(talk)), "", api_name="/on_measure") for c in clients]
        answers = [job.result(timeout=300) for job in jobs]
        limits = {
            (fn.concurrency_id, fn.concurrency_limit)
            for fn in server.page.fns.values()
            if fn.name in ("on_measure", "on_fix")
        }
    finally:
        server.close()
    verdicts = {a[0] for a in answers}
    assert len(verdicts) == 1 and next(iter(verdicts)).startswith("audio "), verdicts
    assert limits == {("engine", 1)}  # one measurement or fix at a time; others wait their turn


def test_app_command_serves_on_127_0_0_1_and_cleans_up_on_ctrl_c(tmp_path, tiny_checkpoint):
    import signal
    import subprocess
    import sys
    import time

    port = _free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "fcnsync.cli", "app", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--weights", str(tiny_checkpoint)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # as from a terminal: a shell's background job (e.g. a CI runner's) ignores Ctrl-C, and
        # a child would inherit that and never see it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 180
        page = b""
        while time.monotonic() < deadline and not page:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    page = r.read()
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.5)
        assert b"fcnsync" in page
        assert list(tmp_path.glob("fcnsync-app-*"))  # its folder for uploads
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert f"http://127.0.0.1:{port}" in out
    assert "Traceback" not in out
    assert not list(tmp_path.glob("fcnsync-app-*"))  # removed when the server stopped


def test_app_command_help_lists_its_options():
    r = run_cli(["app", "--help"], timeout=120)
    assert r.returncode == 0
    for opt in ("--host", "--port", "--max-upload-mb", "127.0.0.1", "7860"):
        assert opt in r.stdout


# ---- the page in a real browser -----------------------------------------------------------

needs_browser = pytest.mark.skipif(
    BROWSER is None or DRIVER is None,
    reason="no headless Chromium with its driver installed (Debian: chromium chromium-driver)",
)


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = BROWSER
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    opts.add_argument("--window-size=1280,1700")
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


def upload_and_measure(driver, url: str, clip: Path, timeout_s: float = 300) -> dict:
    """What a user does: open the page, choose the file, press Measure, wait for the verdict.
    Returns the verdict, whether the plot image loaded, and the JSON record the page offers."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
    driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(clip))
    wait.until(lambda d: clip.stem in d.find_element(By.ID, "upload").text)  # uploaded
    driver.find_element(By.ID, "measure").click()
    verdict_box = (By.CSS_SELECTOR, "#verdict textarea")
    WebDriverWait(driver, timeout_s).until(
        lambda d: d.find_element(*verdict_box).get_attribute("value")
    )
    verdict = driver.find_element(*verdict_box).get_attribute("value")
    loaded = WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "const i = document.querySelector('#plot img');"
            "return i && i.complete && i.naturalWidth > 0 ? [i.naturalWidth, i.naturalHeight]"
            " : null;"
        )
    )
    link = WebDriverWait(driver, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#record a[href]")
    )[0]
    with urllib.request.urlopen(link.get_attribute("href"), timeout=30) as r:
        record = json.loads(r.read())
    return {"verdict": verdict, "plot_size": loaded, "record": record}


def press_fix(driver, timeout_s: float = 300) -> dict:
    """Press the fix button, wait for its message; returns it with the corrected file's name
    and size as downloaded from the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.ID, "fix").click()
    note = (By.CSS_SELECTOR, "#fix-note textarea")
    WebDriverWait(driver, timeout_s).until(lambda d: d.find_element(*note).get_attribute("value"))
    result = {"note": driver.find_element(*note).get_attribute("value"), "name": None, "size": 0}
    links = WebDriverWait(driver, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#fixed a[href]")
    )
    with urllib.request.urlopen(links[0].get_attribute("href"), timeout=60) as r:
        result["size"] = len(r.read())
    result["name"] = urllib.parse.unquote(links[0].get_attribute("href").rsplit("/", 1)[-1])
    return result


@needs_browser
def test_page_in_a_headless_browser_shows_the_verdict_and_the_plot(tmp_path, engine, browser):
    clip = make_clip(tmp_path / "talk.mkv", seconds=4.0, lead_s=0.08)
    expected = detect(
        clip, model=engine.model, calibration=engine.calibration, tracker=BarTracker()
    )
    server = start(engine, port=_free_port(), block=False)
    try:
        seen = upload_and_measure(browser, server.url, clip)
        text = browser.find_element("id", "tracks").text
        kept = {p.name for p in server.root.rglob("*") if p.is_file()}
        browser.get("about:blank")  # the tab goes away: its upload and outputs with it
        gone = _wait_for(lambda: not list(server.root.rglob(clip.name)), 60)
        left = {p.parent.name for p in server.root.rglob("*") if p.is_file()}
    finally:
        server.close()
    assert {clip.name, "talk.fcnsync.json", "talk.evidence.png"} <= kept
    assert gone and not any(name.startswith("req-") for name in left)
    assert seen["verdict"] == f"{expected.verdict}, confidence {expected.confidence:.2f}"
    assert seen["plot_size"] == [990, 360]  # plot_result's 11 x 4 inches at 90 dpi
    assert _stable(seen["record"][0]) == _stable(expected.to_dict(evidence=True))
    assert "offset frames" in text and "speech frames" in text


@needs_browser
def test_an_upload_over_the_limit_is_refused_with_a_message(tmp_path, engine, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (2 * 1024 * 1024))
    server = start(engine, port=_free_port(), block=False, max_upload_mb=1)
    try:
        browser.get(server.url)
        wait = WebDriverWait(browser, 60)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))
        browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(big))
        wait.until(lambda d: "maximum allowed size" in d.find_element(By.TAG_NAME, "body").text)
        stored = [p for p in server.root.rglob("*") if p.is_file()]
    finally:
        server.close()
    assert not stored  # nothing of it was kept


@needs_browser
def test_dev_clip_through_the_page_gives_the_detect_record(dev_dir, tmp_path, browser):
    from fcnsync.calibration import load_calibration
    from fcnsync.model import load_model

    clip = dev_dir / "R-V-Abhishek__Syncnet_FCN__data_example.avi"
    r = run_cli(["detect", "--format", "json", "--evidence", "-j", "1", clip])
    assert r.returncode == 0, r.stderr
    cli_record = json.loads(r.stdout)[0]
    engine = Engine(load_model(device="cpu"), load_calibration())
    server = start(engine, port=_free_port(), block=False)
    try:
        seen = upload_and_measure(browser, server.url, clip)
        fixed = press_fix(browser)
        shot = os.environ.get("FCNSYNC_APP_SCREENSHOT")
        if shot:  # the README's docs/app.png is taken this way
            browser.save_screenshot(shot)
    finally:
        server.close()
    assert seen["record"][0]["path"] == clip.name
    assert _stable(seen["record"][0]) == _stable(cli_record)
    assert seen["verdict"].startswith(cli_record["verdict"] + ", confidence ")
    # the fix button gives what fcnsync fix gives: the audio moved by the offset, verified
    assert fixed["note"].startswith(f"audio delayed by {cli_record['offset_ms']:+.0f} ms")
    assert "within 1 frame of sync" in fixed["note"] and "NOT" not in fixed["note"]
    assert fixed["name"] == f"{clip.stem}.fixed{clip.suffix}" and fixed["size"] > 100_000
