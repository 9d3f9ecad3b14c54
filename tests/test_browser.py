"""The weight-tuning lab in a real browser: JupyterLab and the Voila page, driven by headless Chromium.

Each test serves a copy of ``notebooks/07_weight_tuning_lab.ipynb`` from a temporary folder on
127.0.0.1 (a random free port; no token for the test only; Jupyter's config, runtime and workspace
folders are temporary too, so the user's set-up is never touched), opens it in Debian's Chromium through
Playwright, runs it, presses **Train**, checks that the live figure changes and the status line's step
counter advances, presses **Stop**, checks that the counter halts, and saves a screenshot (to a
temporary folder, and to ``$MTL_LAB_SCREENSHOTS`` when that is set).

Without Chromium or the playwright package the tests are skipped with the reason — unless ``CI`` is set,
where they fail instead: in CI the browser tests must run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "07_weight_tuning_lab.ipynb"
CHROMIUM = Path(os.environ.get("MTL_LAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
STEP = re.compile(r"step (\d+)/(\d+)")


def require_browser():
    """The playwright module, or skip (fail under CI) naming what is missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None
        missing.append("the playwright Python package (pip install -e '.[browser]')")
    if missing:
        reason = "browser test needs " + " and ".join(missing)
        if IN_CI:
            pytest.fail(reason + "; CI is set, so the browser tests must run")
        pytest.skip(reason)
    return sync_api


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(command: list[str], url: str, workdir: Path, timeout: float = 90.0):
    """Start a server in its own process group, wait until ``url`` answers, stop it afterwards."""
    env = dict(os.environ)
    env.update({
        "JUPYTER_CONFIG_DIR": str(workdir / "config"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(workdir / "workspaces"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "MPLBACKEND": "Agg",
    })
    log = open(workdir / "server.log", "wb")
    process = subprocess.Popen(command, cwd=workdir / "nb", env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.perf_counter() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.perf_counter() > deadline:
                    log.flush()
                    log_text = (workdir / "server.log").read_text()[-2000:]
                    raise RuntimeError(f"server did not start: {log_text}") from None
                time.sleep(0.3)
        yield process
    finally:
        stop_group(process)
        log.close()


def stop_group(process: subprocess.Popen) -> None:
    """Stop the server and the kernels it started (its process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "nb").mkdir()
    shutil.copy(NOTEBOOK, tmp_path / "nb" / NOTEBOOK.name)
    return tmp_path


def step_of(text: str) -> int:
    match = STEP.search(text)
    return int(match.group(1)) if match else -1


def attribute(locator, name: str) -> int:
    value = locator.get_attribute(name)
    return int(value) if value not in (None, "") else -1


def exercise_lab(page, shots: Path, name: str) -> dict:
    """Press Train, watch the browser-drawn chart take new data many times, pin the run, press Stop,
    check that the counter and the chart halt; returns timings (reported, never asserted)."""
    lab = page.locator(".mtl-lab").first
    button = lambda text: lab.locator("button", has_text=re.compile(rf"^\s*{text}\s*$")).first  # noqa: E731
    chart = lab.locator(".mtl-live-chart").first
    status = lab.locator(".widget-html-content").filter(has_text=re.compile(r"ready|loaded")).first
    status.wait_for(timeout=30_000)
    chart.wait_for(timeout=30_000)
    assert chart.locator("canvas").count() >= 5, "the empty axes are drawn before the first run"
    assert lab.locator("img").count() == 0, "no images: the chart is drawn from data"
    pressed = time.perf_counter()
    button("Train").click()
    page.wait_for_function("el => +el.dataset.lastStep >= 0", arg=chart.element_handle(), timeout=30_000)
    first_frame = time.perf_counter() - pressed
    seen, frames0 = set(), attribute(chart, "data-frames")
    watch_until = time.perf_counter() + 3.0
    while time.perf_counter() < watch_until:
        seen.add(attribute(chart, "data-last-step"))
        time.sleep(0.05)
    frames = attribute(chart, "data-frames") - frames0
    assert len(seen) >= 5, f"the chart took new data only {len(seen)} times in 3 s"
    running = lab.locator(".widget-html-content").filter(has_text="training").first
    first = step_of(running.inner_text())
    page.wait_for_function(
        "([el, first]) => { const m = /step (\\d+)\\//.exec(el.innerText); return m && +m[1] > first; }",
        arg=[running.element_handle(), first], timeout=30_000)
    button("Pin run").click()
    page.wait_for_function("el => el.dataset.overlays === '1'", arg=chart.element_handle(), timeout=15_000)
    button("Stop").click()
    stopped_at = time.perf_counter()
    halted = lab.locator(".widget-html-content").filter(has_text="stopped").first
    halted.wait_for(timeout=15_000)
    stop_seen = time.perf_counter() - stopped_at
    steps = step_of(halted.inner_text())
    time.sleep(1.0)
    last = attribute(chart, "data-last-step")
    time.sleep(1.0)
    assert step_of(halted.inner_text()) == steps, "the step counter moved after Stop"
    assert attribute(chart, "data-last-step") == last, "the chart moved after Stop"
    news = page.locator(".jp-toast-button", has_text=re.compile(r"^\s*No\s*$"))  # JupyterLab's news prompt
    if news.count():
        news.first.click()
    lab.scroll_into_view_if_needed()
    for folder in {shots, Path(os.environ["MTL_LAB_SCREENSHOTS"]) if os.environ.get("MTL_LAB_SCREENSHOTS") else shots}:
        folder.mkdir(parents=True, exist_ok=True)
        lab.screenshot(path=str(folder / f"{name}.png"))
    return {"first_frame_s": round(first_frame, 3), "stop_seen_s": round(stop_seen, 3), "steps_at_stop": steps,
            "frames_in_3s": frames, "distinct_data_in_3s": len(seen)}


@contextmanager
def chromium(sync_api):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            yield page
        finally:
            browser.close()


def test_lab_in_jupyterlab(workdir):
    sync_api = require_browser()
    started = time.perf_counter()
    port = free_port()
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
               "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={workdir / 'nb'}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None"]
    if os.geteuid() == 0:  # CI machines run as root
        command.append("--allow-root")
    with serve(command, f"http://127.0.0.1:{port}/api/status", workdir), chromium(sync_api) as page:
        page.goto(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?reset")
        page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell')",
                               timeout=60_000)
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget;"
                               " return w && w.sessionContext && w.sessionContext.session &&"
                               " w.sessionContext.session.kernel; }", timeout=60_000)
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        page.locator(".jp-OutputArea").get_by_text("on the front:").first.wait_for(timeout=120_000)
        page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                               ".status === 'idle'", timeout=60_000)
        timings = exercise_lab(page, workdir / "shots", "jupyterlab")
    print(f"\nJupyterLab browser test: {timings}, total {time.perf_counter() - started:.1f} s")


def test_lab_as_a_voila_page(workdir):
    sync_api = require_browser()
    pytest.importorskip("voila", reason="Voila is not installed (pip install -e '.[app]')")
    started = time.perf_counter()
    port = free_port()
    command = [sys.executable, "-m", "voila", NOTEBOOK.name, "--no-browser", f"--port={port}",
               "--Voila.ip=127.0.0.1"]
    with serve(command, f"http://127.0.0.1:{port}/", workdir), chromium(sync_api) as page:
        page.goto(f"http://127.0.0.1:{port}/", timeout=120_000)
        page.get_by_text("on the front:").first.wait_for(timeout=120_000)
        assert page.locator("text=torch.set_num_threads").count() == 0  # sources are hidden
        timings = exercise_lab(page, workdir / "shots", "voila")
    print(f"\nVoila browser test: {timings}, total {time.perf_counter() - started:.1f} s")
