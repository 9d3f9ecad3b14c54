"""The weight-tuning lab in a real browser: JupyterLab and the Voila page, driven by headless Chromium.

JupyterLab: a copy of ``notebooks/07_weight_tuning_lab.ipynb`` is served from a temporary folder (see
``browser_harness``), run, and **Train** pressed: the browser-drawn chart must take new data many times
during the run, **Keep run** must add an overlay, **Stop** must halt the counter and the chart; then the
tip of a gradient in the arena is dragged and the methods' arrows must follow. Voila: the classroom
page shows only the instruments, its lab works the same way, and the kernels of closed pages are culled;
a page address with a set-up (``?setup=…``) or a preset and a race (``?preset=…&race=…``) opens with those
values in its controls. A race of four methods draws four lines per task.
Screenshots go to a temporary folder, and to ``$MTL_LAB_SCREENSHOTS`` when that is set. Timings are
printed (the benchmark ``benchmarks/bench_browser.py`` reports them), never asserted.

Without Chromium or the playwright package the tests are skipped with the reason — unless ``CI`` is set,
where they fail instead: in CI the browser tests must run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from browser_harness import (
    CHROMIUM,
    CULL_IDLE_S,
    ROOT,
    attribute,
    button,
    chromium,
    drag_arena_tip,
    drag_explorer_handle,
    explorer_notebook,
    free_port,
    kernels_of,
    lab_command,
    one_screen,
    run_all,
    serve,
    step_of,
)

NOTEBOOK = ROOT / "notebooks" / "07_weight_tuning_lab.ipynb"
# The classroom page's only console warnings, 13 of them, all harmless and not removable by configuration:
# @jupyter-widgets/jupyterlab-manager 5.0.16 (jupyterlab_widgets 3.0.17, the ipywidgets 8 front end) is built
# against JupyterLab 4.6 and asks for @jupyterlab/* ^4.6.2 and ^4.5.10 (services ^7.6.2, coreutils ^6.5.10),
# while the page of Voila 0.5.13 (the latest release) bundles JupyterLab 4.2.5. Webpack's module federation
# then uses the page's 4.2.5 singletons (the ranges are not strict) and says so once per module. Leaving that
# extension out (--VoilaConfiguration.extension_denylist) removes the warnings and the widgets with them:
# "No version of module @jupyter-widgets/base is registered". Pinning an older jupyterlab_widgets would
# downgrade JupyterLab's widget manager too. The test below allows these warnings and nothing else.
VERSION_WARNING = re.compile(r"(Unsatisfied version \d+\.\d+\.\d+ from _JUPYTERLAB\.CORE_OUTPUT of shared singleton "
                             r"module @jupyterlab/[a-z-]+ \(required \^\d+\.\d+\.\d+\)"
                             r"|No satisfying version \(\^\d+\.\d+\.\d+\) of shared module @jupyterlab/[a-z-]+ found)")
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


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


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "nb").mkdir()
    shutil.copy(NOTEBOOK, tmp_path / "nb" / NOTEBOOK.name)
    return tmp_path


def exercise_arena(page) -> dict:
    """Drag the tip of the second task's gradient across the arena: the methods' arrows must follow."""
    redrawn, moves, seconds, before, after = drag_arena_tip(page, seconds=2.0)
    assert after != before and redrawn >= 5, f"the method arrows followed the drag only {redrawn} times"
    return {"arena_arrow_updates": redrawn, "arena_pointer_moves": moves, "arena_drag_s": round(seconds, 2)}


def exercise_lab(page, shots: Path, name: str) -> dict:
    """Press Train, watch the browser-drawn chart take new data many times, pin the run, press Stop,
    check that the counter and the chart halt; returns timings (reported, never asserted)."""
    lab = page.locator(".mtl-lab").first
    chart = lab.locator(".mtl-live-chart").first
    status = lab.locator(".widget-html-content").filter(has_text=re.compile(r"ready|loaded")).first
    status.wait_for(timeout=30_000)
    chart.wait_for(timeout=30_000)
    assert chart.locator("canvas").count() >= 5, "the empty axes are drawn before the first run"
    assert lab.locator("img").count() == 0, "no images: the chart is drawn from data"
    pressed = time.perf_counter()
    button(lab, "Train").click()
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
    button(lab, "Keep run").click()
    page.wait_for_function("el => el.dataset.overlays === '1'", arg=chart.element_handle(), timeout=15_000)
    button(lab, "Stop").click()
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


def test_lab_in_jupyterlab(workdir):
    sync_api = require_browser()
    started = time.perf_counter()
    port = free_port()
    with serve(lab_command(port, workdir / "nb"), f"http://127.0.0.1:{port}/api/status", workdir), \
            chromium(sync_api) as page:
        run_all(page, port, NOTEBOOK.name, done_text="on the front:")
        timings = exercise_lab(page, workdir / "shots", "jupyterlab")
        timings.update(exercise_arena(page))
    print(f"\nJupyterLab browser test: {timings}, total {time.perf_counter() - started:.1f} s")


def test_quickstart_try_it_works_after_run_all(workdir):
    """Notebook 00's closing exercise: after Run All, type a new weight in the panel and press Train."""
    sync_api = require_browser()
    shutil.copy(ROOT / "notebooks" / "00_quickstart.ipynb", workdir / "nb")
    port = free_port()
    with serve(lab_command(port, workdir / "nb"), f"http://127.0.0.1:{port}/api/status", workdir), \
            chromium(sync_api) as page:
        run_all(page, port, "00_quickstart.ipynb", done_text="mgda")  # the last printed table
        lab = page.locator(".mtl-lab").first
        lab.scroll_into_view_if_needed()
        box = lab.locator(".mtl-weight", has_text="recon").locator("input").last
        box.fill("1")
        box.press("Enter")
        button(lab, "Train").click()
        lab.locator(".widget-html-content").filter(has_text="training").first.wait_for(timeout=30_000)
        chart = lab.locator(".mtl-live-chart").first
        page.wait_for_function("el => el.querySelector('.mlc-title').textContent.includes('recon=1')",
                               arg=chart.element_handle(), timeout=30_000)
        page.wait_for_function("el => +el.dataset.lastStep > 5", arg=chart.element_handle(), timeout=30_000)
        button(lab, "Stop").click()  # the short run may already be over: it ends stopped or completed
        lab.locator(".widget-html-content").filter(has_text=re.compile(r"stopped|completed")).first.wait_for(
            timeout=60_000)


def test_classroom_page_in_voila(workdir, monkeypatch):
    """The classroom page: only the instruments (no prose, no code, no prints), on one screen at 1280×720,
    nothing requested beyond 127.0.0.1, the lab works, and the kernels of closed pages are culled."""
    sync_api = require_browser()
    pytest.importorskip("voila", reason="Voila is not installed (pip install -e '.[app]')")
    from mtl_lab.widgets.classroom import APP_NOTEBOOK, voila_command, voila_environment

    for key, value in voila_environment(dict(os.environ)).items():
        monkeypatch.setenv(key, value)

    shutil.copy(APP_NOTEBOOK, workdir / "nb" / APP_NOTEBOOK.name)
    started = time.perf_counter()
    port = free_port()
    command = [*voila_command(workdir / "nb" / APP_NOTEBOOK.name, port, cull_idle=CULL_IDLE_S, token=False),
               "--no-browser"]
    url = f"http://127.0.0.1:{port}/"
    with serve(command, url, workdir) as server, chromium(sync_api) as page:
        for _ in range(3):  # pages opened and closed: their kernels must not stay
            other = page.context.browser.new_page()
            other.goto(url, timeout=120_000)
            other.locator(".mtl-classroom").first.wait_for(timeout=120_000)
            other.close()
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        console: list[tuple[str, str]] = []
        page.on("console", lambda message: console.append((message.type, message.text)))
        page.set_viewport_size({"width": 1280, "height": 720})
        loaded = time.perf_counter()
        page.goto(url, timeout=120_000)
        page.locator(".mtl-classroom .mtl-lab").first.wait_for(timeout=120_000)
        usable_s = time.perf_counter() - loaded
        page.locator(".mtl-classroom .mtl-live-chart canvas").first.wait_for(timeout=60_000)
        seen = one_screen(page)
        assert all(seen[k] for k in ("weights", "train", "stop", "chart")), f"classroom page at 1280×720: {seen}"
        shots = Path(os.environ.get("MTL_LAB_SCREENSHOTS") or workdir / "shots")
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "classroom-one-screen-1280x720.png"))
        away = [u for u in requests if not re.match(rf"(https?|wss?)://127\.0\.0\.1:{port}/", u)
                and not u.startswith(("data:", "blob:"))]
        assert away == [], f"the classroom page asked beyond 127.0.0.1 for {away[:5]}"
        warned = [text for kind, text in console if kind in ("warning", "error")]
        unexplained = [text for text in warned if not VERSION_WARNING.match(text)]
        assert unexplained == [], f"console warnings or errors other than VERSION_WARNING: {unexplained[:3]}"
        assert len(warned) <= 13, f"{len(warned)} version warnings (13 known, see VERSION_WARNING)"
        page.set_viewport_size({"width": 1400, "height": 1700})
        assert page.locator(".jp-RenderedMarkdown").count() == 0, "no notebook prose on the classroom page"
        assert page.locator(".jp-OutputArea-output pre").count() == 0, "no printed leftovers"
        assert page.locator("text=set_num_threads").count() == 0, "sources are hidden"
        timings = exercise_lab(page, workdir / "shots", "voila")
        # a closed page's kernel goes CULL_IDLE_S after its last message, checked every CULL_IDLE_S // 4
        deadline = time.perf_counter() + CULL_IDLE_S + CULL_IDLE_S // 4 + 30
        while kernels_of(server) > 1 and time.perf_counter() < deadline:
            time.sleep(0.5)
        assert kernels_of(server) == 1, f"{kernels_of(server)} kernels for one open page"
    print(f"\nVoila browser test: page usable in {usable_s:.1f} s; {timings}, "
          f"total {time.perf_counter() - started:.1f} s")


def test_the_classroom_page_opens_the_set_up_and_the_preset_of_its_url(workdir, monkeypatch):
    """``?setup=…`` (a link from ``Lab.link()``) and ``?preset=…&race=…``: the page's controls show the
    linked values — method, learning rate, epochs, seed, tasks, projector; the preset's data and what to
    look for; the race's toggles."""
    sync_api = require_browser()
    pytest.importorskip("voila", reason="Voila is not installed (pip install -e '.[app]')")
    from mtl_lab.widgets.classroom import APP_NOTEBOOK, voila_command, voila_environment
    from mtl_lab.widgets.config import LabConfig
    from mtl_lab.widgets.links import PRESETS, setup_link

    for key, value in voila_environment(dict(os.environ)).items():
        monkeypatch.setenv(key, value)
    shutil.copy(APP_NOTEBOOK, workdir / "nb" / APP_NOTEBOOK.name)
    config = LabConfig(data="digits", tasks=["digit", "recon"], method="mgda", lr=0.0042, epochs=7, seed=11,
                       model_options={"hidden": [32]}, baselines=False)
    port = free_port()
    command = [*voila_command(workdir / "nb" / APP_NOTEBOOK.name, port, cull_idle=CULL_IDLE_S, token=False),
               "--no-browser"]
    url = f"http://127.0.0.1:{port}/"
    with serve(command, url, workdir), chromium(sync_api, 1280, 720) as page:
        page.goto(url + setup_link(config, projector=True), timeout=120_000)
        lab = page.locator(".mtl-classroom .mtl-lab").first
        lab.wait_for(timeout=120_000)
        assert control_value(lab, "method") == "mgda" and control_value(lab, "lr") == "0.0042"
        assert control_value(lab, "epochs") == "7" and control_value(lab, "seed") == "11"
        ticked = lab.locator(".widget-checkbox", has=page.locator("input:checked")).all_inner_texts()
        assert {"digit", "recon"} <= {t.strip() for t in ticked} and "parity" not in {t.strip() for t in ticked}
        assert lab.locator(".mtl-live-chart").first.get_attribute("data-font-px") == "16"  # projector=1
        page.goto(url + "?preset=conflict&race=equal,pcgrad,mgda", timeout=120_000)
        lab = page.locator(".mtl-classroom .mtl-lab").first
        lab.wait_for(timeout=120_000)
        preset = PRESETS["conflict"]
        assert control_value(lab, "data") == preset.config["data"]
        assert control_value(lab, "method") == preset.config["method"]
        assert control_value(lab, "epochs") == str(preset.config["epochs"])
        lab.locator(".widget-html-content", has_text="look for").first.wait_for(timeout=10_000)
        pressed = lab.locator(".mtl-race .mtl-method-toggles button.mod-active").all_inner_texts()
        assert [t.strip() for t in pressed] == ["equal", "pcgrad", "mgda"]


def control_value(lab, description: str) -> str:
    """The value a labelled control shows (a dropdown's chosen option or an input's text)."""
    field = lab.locator(".widget-inline-hbox", has=lab.page.locator(f"label:text-is('{description}')")).first
    select = field.locator("select")
    if select.count():
        return select.evaluate("el => el.options[el.selectedIndex].text")
    return field.locator("input").first.input_value()

VIEWPORTS = ((1280, 720), (1000, 800))


def test_the_lab_fits_one_screen_and_the_projector_enlarges_the_chart(workdir):
    """At 1280×720 the weights, Train/Stop and the whole chart are on screen together; at 1000×800 the
    weights and the loss panel. No request leaves 127.0.0.1 while the page loads and runs."""
    sync_api = require_browser()
    port = free_port()
    shots = Path(os.environ.get("MTL_LAB_SCREENSHOTS") or workdir / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    with serve(lab_command(port, workdir / "nb"), f"http://127.0.0.1:{port}/api/status", workdir), \
            chromium(sync_api, *VIEWPORTS[0]) as page:
        page.on("request", lambda request: requests.append(request.url))
        run_all(page, port, NOTEBOOK.name, done_text="on the front:")
        assert page.locator(".jp-toast-button", has_text="Yes").count() == 0, "JupyterLab asked about news"
        # as notebook 07 says: the file browser hidden (Ctrl+B) gives the lab the width of the screen
        page.evaluate("() => { const s = window.jupyterapp.shell; if (!s.leftCollapsed) s.collapseLeft(); }")
        results = {}
        for width, height in VIEWPORTS:
            page.set_viewport_size({"width": width, "height": height})
            time.sleep(1.0)
            results[(width, height)] = seen = one_screen(page, ".jp-NotebookPanel .jp-WindowedPanel-outer")
            page.screenshot(path=str(shots / f"one-screen-{width}x{height}.png"))
            wanted = ["weights", "train", "stop", "chart"] if width >= 1280 else ["weights", "loss panel"]
            assert all(seen[k] for k in wanted), f"at {width}×{height} not all on screen: {seen}"
        page.set_viewport_size({"width": 1280, "height": 720})
        chart = page.locator(".mtl-lab .mtl-live-chart").first
        assert chart.get_attribute("data-font-px") == "12"
        page.locator(".mtl-lab").first.locator("button", has_text="Projector").first.click()
        page.wait_for_function("el => el.dataset.fontPx === '16'", arg=chart.element_handle(), timeout=15_000)
        size = chart.locator(".mlc-ptitle").first.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
        assert size >= 16
        one_screen(page, ".jp-NotebookPanel .jp-WindowedPanel-outer")
        page.screenshot(path=str(shots / "one-screen-1280x720-projector.png"))
    away = [url for url in requests if not re.match(rf"(https?|wss?)://127\.0\.0\.1:{port}/", url)
            and not url.startswith(("data:", "blob:"))]
    assert away == [], f"requests left 127.0.0.1: {away[:5]}"
    print(f"\none screen: {results}")


def test_pareto_explorer_follows_a_drag(tmp_path):
    """Notebook 13's explorer: dragging the preference dot changes the metrics it shows, live."""
    import json

    sync_api = require_browser()
    started = time.perf_counter()
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "explorer.ipynb").write_text(json.dumps(explorer_notebook(points=3)))
    port = free_port()
    with serve(lab_command(port, tmp_path / "nb"), f"http://127.0.0.1:{port}/api/status", tmp_path), \
            chromium(sync_api) as page:
        run_all(page, port, "explorer.ipynb", done_text="explorer ready")
        page.locator(".mtl-explorer-view circle.mtl-explorer-handle").first.wait_for(timeout=30_000)
        redrawn, moves, seconds, before, after = drag_explorer_handle(page, seconds=2.0)
    shown_before, shown_after = json.loads(before), json.loads(after)
    assert len(shown_before) == 2 and shown_after != shown_before, (shown_before, shown_after)
    assert redrawn >= 5, f"the model's point followed the drag only {redrawn} times"
    first = float(shown_before[0].split(": ")[1]), float(shown_after[0].split(": ")[1])
    assert first[1] < first[0], f"towards t0's end t0's error should fall: {first}"
    print(f"\nexplorer: {redrawn} updates in {seconds:.1f} s ({redrawn / seconds:.1f}/s, {moves} pointer moves), "
          f"total {time.perf_counter() - started:.1f} s")


SCENES_CELL = """import torch
torch.set_num_threads(1)
from mtl_lab.widgets import Lab, LabConfig
lab = Lab(LabConfig(data="scenes", data_options={"size": 32, "n_train": 96, "n_val": 8, "n_test": 16},
                    architecture="segnet_lite", model_options={"channels": [8, 16, 32]}, method="equal",
                    lr=1e-2, batch_size=16, epochs=3, baselines=False), name="scenes", pace=50)
print("scenes lab ready")
lab"""


def test_the_lab_on_scenes_animates_and_ends_with_the_prediction_strip(workdir):
    """The Lab on pixel tasks at 1280×720: Train, the chart takes rows step by step, the prediction strip (an
    image, absent before) appears under the chart when the run ends, with the nine-metric table below."""
    sync_api = require_browser()
    started = time.perf_counter()
    cell = {"cell_type": "code", "execution_count": None, "id": "scenes", "metadata": {}, "outputs": [],
            "source": SCENES_CELL.splitlines(True)}
    (workdir / "nb" / "scenes.ipynb").write_text(json.dumps({
        "cells": [cell], "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}}))
    port = free_port()
    with serve(lab_command(port, workdir / "nb"), f"http://127.0.0.1:{port}/api/status", workdir), \
            chromium(sync_api, 1280, 720) as page:
        run_all(page, port, "scenes.ipynb", done_text="scenes lab ready")
        lab = page.locator(".mtl-lab").first
        chart = lab.locator(".mtl-live-chart").first
        page.wait_for_function("el => +el.dataset.frames >= 1", arg=chart.element_handle(), timeout=60_000)
        assert lab.locator("img").count() == 0, "no strip before a run"
        button(lab, "Train").click()
        seen = set()
        strip = lab.locator("img.mtl-strip")
        while strip.count() == 0 and time.perf_counter() - started < 120:
            seen.add(attribute(chart, "data-last-step"))
            time.sleep(0.05)
        assert len(seen - {-1}) >= 5, f"the chart took new data only {len(seen)} times"
        page.wait_for_function("el => el.naturalWidth > 0 && el.offsetHeight > 0", arg=strip.first.element_handle(),
                               timeout=30_000)
        lab.locator("table", has_text="segmentation/miou ↑").first.wait_for(timeout=30_000)
        assert "completed" in lab.locator(".widget-html-content").filter(has_text="step").first.inner_text()
    print(f"\nLab on scenes in JupyterLab: {len(seen)} distinct chart steps seen, "
          f"total {time.perf_counter() - started:.1f} s")


RACE_NOTEBOOK = ("from mtl_lab.widgets import Lab, LabConfig\n"
                 "lab = Lab(LabConfig(data='digits', tasks=['digit', 'parity', 'recon'],"
                 " model_options={'hidden': [32]}, method='equal', lr=2e-3, epochs=200, baselines=False),"
                 " name='race', pace=None)\n"
                 "lab.race.methods_w.value = ('equal', 'uncertainty', 'pcgrad', 'mgda')\n"
                 "lab")


def test_a_four_method_race_draws_four_lines_per_task(workdir):
    """Race with four methods in JupyterLab: the chart's loss panel draws 4 × 3 train lines (the chart counts
    the lines that hold data), in the methods' colours; Stop race stops every racer at the same step."""
    sync_api = require_browser()
    (workdir / "nb" / "race.ipynb").write_text(json.dumps(code_notebook(RACE_NOTEBOOK)))
    port = free_port()
    with serve(lab_command(port, workdir / "nb"), f"http://127.0.0.1:{port}/api/status", workdir), \
            chromium(sync_api, 1280, 720) as page:
        run_all(page, port, "race.ipynb")
        lab = page.locator(".mtl-lab").first
        chart = lab.locator(".mtl-live-chart").first
        page.wait_for_function("el => +el.dataset.frames >= 1", arg=chart.element_handle(), timeout=60_000)
        button(lab, "Race").click()
        page.wait_for_function("el => el.dataset.racers === '4' && el.dataset.lines === '12'",
                               arg=chart.element_handle(), timeout=30_000)
        legend = chart.locator(".mlc-racer")
        assert [legend.nth(k).inner_text().strip() for k in range(legend.count())] == [
            "equal", "uncertainty", "pcgrad", "mgda"]
        page.wait_for_function("el => +el.dataset.lastStep >= 60", arg=chart.element_handle(), timeout=60_000)
        button(lab, "Stop race").click()  # past the first epochs: every racer is kept in the run list
        ended = lab.locator(".widget-html-content").filter(has_text="ended at step").first
        ended.wait_for(timeout=30_000)
        assert ended.inner_text().count("stopped") == 4, ended.inner_text()
        kept = lab.locator(".widget-checkbox").all_inner_texts()
        assert sum(re.match(r"\s*\d+: mgda", t) is not None for t in kept) == 1, kept  # the racers are kept
        shots = Path(os.environ.get("MTL_LAB_SCREENSHOTS") or workdir / "shots")
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "race-4-test-1280x720.png"))


def code_notebook(source: str) -> dict:
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": "only", "metadata": {}, "outputs": [],
                       "source": source.splitlines(True)}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}
