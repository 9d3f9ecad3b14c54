"""A real browser against a real server, for the browser tests and the browser benchmark.

Servers (JupyterLab, Voila) run on 127.0.0.1 in their own process group with Jupyter's config, runtime
and workspace folders inside a throwaway ``workdir``, so the user's set-up is never touched; the tests
and the benchmark drive Debian's Chromium through Playwright (``/usr/bin/chromium``; Playwright's own
browser download does not work offline).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("MTL_LAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
STEP = re.compile(r"step (\d+)/(\d+)")
# Idle seconds before Voila culls an unconnected kernel. A page's kernel is idle *and unconnected* from the
# end of its run (Voila runs the notebook while it sends the page) until the page has loaded its scripts and
# opened the kernel's websocket: about 2 s on a quiet machine, many more on a loaded one. A timeout of 2 s
# culled the kernel of the Voila test's page before it connected (server log: "Culling 'idle' kernel ... with
# 0 connections"), and the page then waited 120 s for widgets that never came. 30 s leaves a wide margin;
# `mtl-lab app` uses 120.
CULL_IDLE_S = 30


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


def step_of(text: str) -> int:
    match = STEP.search(text)
    return int(match.group(1)) if match else -1


def attribute(locator, name: str) -> int:
    value = locator.get_attribute(name)
    return int(value) if value not in (None, "") else -1


@contextmanager
def chromium(sync_api, width: int = 1400, height: int = 1700):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def kernels_of(process: subprocess.Popen) -> int:
    """How many kernels the server is running now (its child processes: kernels get sessions of their own)."""
    out = subprocess.run(["ps", "-o", "args=", "--ppid", str(process.pid)], capture_output=True, text=True).stdout
    return sum("ipykernel_launcher" in line for line in out.splitlines())


def lab_command(port: int, root: Path) -> list[str]:
    """JupyterLab for a harness: no token (loopback only, throwaway folders), no news, no update checks."""
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
               "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={root}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None",
               f"--LabApp.app_settings_dir={ROOT / 'mtl_lab' / 'widgets' / 'jupyterlab'}"]
    if os.geteuid() == 0:  # CI machines run as root
        command.append("--allow-root")
    return command


def run_all(page, port: int, notebook: str, done_text: str | None = None, timeout_ms: int = 180_000) -> None:
    """Open ``notebook`` in JupyterLab, run all its cells, wait until a printed output holds ``done_text`` and
    the kernel idles."""
    page.goto(f"http://127.0.0.1:{port}/lab/tree/{notebook}?reset")
    page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell')",
                           timeout=60_000)
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.wait_for_function("() => { const w = window.jupyterapp.shell.currentWidget;"
                           " return w && w.sessionContext && w.sessionContext.session &&"
                           " w.sessionContext.session.kernel; }", timeout=60_000)
    # outputs stored by an earlier session (JupyterLab autosaves them) must not count as this run's
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    if done_text:
        # printed text only (a widget's hidden <option> may hold the same words)
        page.locator(".jp-RenderedText").filter(has_text=done_text).first.wait_for(timeout=timeout_ms)
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                           ".status === 'idle'", timeout=timeout_ms)


def button(scope, text: str):
    """The button whose label is exactly ``text`` inside ``scope`` (toolbar buttons elsewhere are ignored)."""
    return scope.locator("button", has_text=re.compile(rf"^\s*{re.escape(text)}\s*$")).first


def drag_arena_tip(page, seconds: float = 2.0, task: int = 1) -> tuple[int, int, float, str, str]:
    """Drag the tip of a task's gradient in the first arena for ``seconds``, as fast as the browser takes
    pointer moves; returns how many times the methods' arrows were redrawn with Python's answer while
    dragging (the view counts them), how many pointer moves were sent, the seconds it took, and the arrows
    before and after."""
    view = page.locator(".mtl-arena-view").first
    tip = view.locator(f"circle.mtl-arena-tip[data-task='{task}']")
    box, settled = None, time.perf_counter() + 10
    while time.perf_counter() < settled:  # outputs above may still be rendering and move the arena
        view.scroll_into_view_if_needed()
        last, box = box, tip.bounding_box()
        if box == last:
            break
        time.sleep(0.3)
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = view.get_attribute("data-arrows")
    updates_before = int(view.get_attribute("data-updates") or 0)
    started = time.perf_counter()
    page.mouse.move(x, y)
    page.mouse.down()
    moves = 0
    while time.perf_counter() - started < seconds:
        k = 40 * (time.perf_counter() - started) / seconds
        page.mouse.move(x + 3 * k, y + 2 * k)
        moves += 1
    page.mouse.up()
    elapsed = time.perf_counter() - started
    page.wait_for_function("([el, before]) => el.dataset.arrows !== before", arg=[view.element_handle(), before],
                           timeout=10_000)
    redrawn = int(view.get_attribute("data-updates") or 0) - updates_before
    return redrawn, moves, elapsed, before, view.get_attribute("data-arrows")


EXPLORER_SETUP = """import torch
torch.set_num_threads(1)
from mtl_lab import data as datasets
from mtl_lab.studies.pareto_set import build_pareto_set_trainer
from mtl_lab.studies.sweep import ratio_grid, simplex_grid, sweep
from mtl_lab.widgets.pareto_explorer import ParetoExplorer
two = datasets.load("related", relatedness=0.0, n_tasks=2, labels_per_task=300, d=8, noise=0.1)
SETUP = dict(epochs=20, lr=1e-2, batch_size=64, device="cpu", diagnostics_every=0, train_metrics=False)
trainer = build_pareto_set_trainer(two, penalty=0.0, hidden=(32, 1), seed=0, **SETUP)
trainer.fit()
result = sweep(two, weights=ratio_grid({points}), methods=(), model_options={{"hidden": [32, 1]}}, seed=0, **SETUP)
explorer = ParetoExplorer(trainer.model, two, result)
print("explorer ready")
explorer
"""

EXPLORER3_SETUP = """three = datasets.load("related", relatedness=0.0, n_tasks=3, labels_per_task=300, d=8, noise=0.1)
trainer3 = build_pareto_set_trainer(three, penalty=0.0, hidden=(32, 2), seed=1, **SETUP)
trainer3.fit()
result3 = sweep(three, weights=simplex_grid(3, 5), methods=(), model_options={{"hidden": [32, 2]}}, seed=1, **SETUP)
explorer3 = ParetoExplorer(trainer3.model, three, result3, name="explorer3")
print("three tasks ready")
explorer3
"""


def explorer_notebook(points: int = 7, three: bool = False) -> dict:
    """A notebook: a Pareto-set model trained in about a second and its explorer (``points`` sweep models
    drawn beside it); with ``three``, a second cell does the same for three tasks (the simplex)."""
    sources = [EXPLORER_SETUP.format(points=points)] + ([EXPLORER3_SETUP.format()] if three else [])
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": f"explorer{k}", "metadata": {},
                       "outputs": [], "source": source.splitlines(True)} for k, source in enumerate(sources)],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def drag_explorer_handle(page, seconds: float = 2.0) -> tuple[int, int, float, str, str]:
    """Drag the preference dot of the first Pareto explorer back and forth along its segment for ``seconds``,
    as fast as the browser takes pointer moves; returns how many times Python's answer (the model's point and
    metrics) was drawn while dragging (the view counts them), the pointer moves sent, the seconds it took,
    and the shown metrics before and after."""
    view = page.locator(".mtl-explorer-view").first
    handle = view.locator("circle.mtl-explorer-handle")
    box, settled = None, time.perf_counter() + 10
    while time.perf_counter() < settled:  # outputs above may still be rendering and move the picture
        view.scroll_into_view_if_needed()
        last, box = box, handle.bounding_box()
        if box == last:
            break
        time.sleep(0.3)
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = view.get_attribute("data-metrics")
    updates_before = int(view.get_attribute("data-updates") or 0)
    width = view.bounding_box()["width"] * 100 / 760  # a third of the segment, in screen pixels
    started = time.perf_counter()
    page.mouse.move(x, y)
    page.mouse.down()
    moves = 0
    while time.perf_counter() - started < seconds:
        phase = (time.perf_counter() - started) / seconds
        page.mouse.move(x - width * phase, y)  # towards the first task's end
        moves += 1
    page.mouse.up()
    elapsed = time.perf_counter() - started
    page.wait_for_function("([el, before]) => el.dataset.metrics !== before", arg=[view.element_handle(), before],
                           timeout=10_000)
    redrawn = int(view.get_attribute("data-updates") or 0) - updates_before
    return redrawn, moves, elapsed, before, view.get_attribute("data-metrics")


def rect_inside(box: dict, area: dict) -> bool:
    return (box["x"] >= area["x"] - 1 and box["y"] >= area["y"] - 1
            and box["x"] + box["width"] <= area["x"] + area["width"] + 1
            and box["y"] + box["height"] <= area["y"] + area["height"] + 1)


def one_screen(page, scroller: str | None = None) -> dict:
    """Scroll the first lab panel to the top of its scroller and say which parts are wholly on screen (inside
    the viewport and the visible part of the scroller): weights, Train, Stop, the whole chart, the loss panel."""
    lab = page.locator(".mtl-lab").first
    for _ in range(3):  # the notebook re-lays out as it scrolls: align, wait, align again
        lab.evaluate("""el => { let s = el.parentElement;
            const scrolls = (n) => n.scrollHeight > n.clientHeight && getComputedStyle(n).overflowY !== 'visible';
            while (s && !scrolls(s)) s = s.parentElement;
            if (s) s.scrollTop += el.getBoundingClientRect().top - s.getBoundingClientRect().top - 4; }""")
        time.sleep(0.4)
    size = page.viewport_size
    area = {"x": 0, "y": 0, "width": size["width"], "height": size["height"]}
    if scroller:
        outer = page.locator(scroller).first.bounding_box()
        top, bottom = max(0, outer["y"]), min(size["height"], outer["y"] + outer["height"])
        area = {"x": max(0, outer["x"]), "y": top, "width": min(size["width"], outer["width"]), "height": bottom - top}
    parts = {
        "weights": lab.locator(".mtl-weight"),
        "train": button(lab, "Train"),
        "stop": button(lab, "Stop"),
        "chart": lab.locator(".mtl-live-chart"),
        "loss panel": lab.locator(".mtl-live-chart .mlc-panel").first,
    }
    seen = {}
    for name, locator in parts.items():
        boxes = [locator.nth(k).bounding_box() for k in range(locator.count())]
        seen[name] = bool(boxes) and all(b is not None and rect_inside(b, area) for b in boxes)
    seen["chart_height"] = round(parts["chart"].first.bounding_box()["height"])
    return seen
