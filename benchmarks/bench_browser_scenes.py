"""The Lab on ``scenes`` in a real browser: the data menu, a live run, the prediction strip at its end.

In JupyterLab at 1280×720 (file browser hidden), a notebook shows a Lab on ``digits``; the data menu is
switched to ``scenes`` (the panel applies its live CPU set-up: 32×32 scenes, SegNet-lite), **Train** is
pressed, and while it trains the chart's distinct frames per second are counted (the chart counts its redraws
in ``data-frames``); then the run is left to complete and the prediction strip must appear under the chart. At
full speed the trainer hands rows to the chart every 10 steps; at any capped pace (``--pace '200 steps/s'``,
far above what the CPU reaches) every step. Measured, never asserted: the time from Train to the first frame,
frames/s and steps/s while training, the time from Train to the end of the run and to the strip. Screenshots
(``lab-scenes-*.png``) go to ``--shots`` (default ``benchmarks/screenshots``).

    .venv/bin/python benchmarks/bench_browser_scenes.py          # ~1 minute
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser_harness import attribute, button, chromium, free_port, lab_command, run_all, serve, step_of  # noqa: E402

SETUP = ("import torch\ntorch.set_num_threads(1)\nfrom mtl_lab.widgets import Lab, LabConfig\n"
         "lab = Lab(LabConfig(method='equal', baselines=False), name='scenes-bench')\nprint('lab ready')\nlab")


def notebook(source: str) -> dict:
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": "bench", "metadata": {}, "outputs": [],
                       "source": source.splitlines(True)}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def scroll_to(page, locator, align: str = "start") -> None:
    locator.evaluate(f"el => el.scrollIntoView({{block: '{align}'}})")
    time.sleep(0.6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shots", default=str(ROOT / "benchmarks" / "screenshots"))
    parser.add_argument("--window", type=float, default=3.0, help="seconds over which frames/s are counted")
    parser.add_argument("--baselines", action="store_true", help="tick Δm vs single-task baselines (3 more runs)")
    parser.add_argument("--pace", default="full speed", help="the pace menu's entry to train at (e.g. '200 steps/s')")
    args = parser.parse_args()
    from playwright import sync_api

    shots = Path(args.shots)
    shots.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mtl-bench-scenes-"))
    (work / "nb").mkdir()
    (work / "nb" / "scenes.ipynb").write_text(json.dumps(notebook(SETUP)))
    results: dict = {}
    try:
        port = free_port()
        with serve(lab_command(port, work / "nb"), f"http://127.0.0.1:{port}/api/status", work), \
                chromium(sync_api, 1280, 720) as page:
            run_all(page, port, "scenes.ipynb", done_text="lab ready")
            page.evaluate("() => { const s = window.jupyterapp.shell; if (!s.leftCollapsed) s.collapseLeft(); }")
            lab = page.locator(".mtl-lab").first
            chart = lab.locator(".mtl-live-chart").first
            page.wait_for_function("el => +el.dataset.frames >= 1", arg=chart.element_handle(), timeout=60_000)
            data_menu = lab.locator(".widget-dropdown", has_text="data").locator("select").first
            data_menu.select_option("scenes")
            status = lab.locator(".widget-html-content").filter(has_text="live CPU run").first
            status.wait_for(timeout=60_000)
            arch = lab.locator(".widget-dropdown", has_text="architecture").locator("select").first
            results["architecture"] = arch.input_value()
            pace = lab.locator(".widget-dropdown", has_text="pace").locator("select").first
            pace.select_option(args.pace)
            results["pace"] = args.pace
            if args.baselines:
                lab.locator(".widget-checkbox", has_text="baselines").locator("input").first.check()
            scroll_to(page, lab)
            page.screenshot(path=str(shots / "lab-scenes-ready.png"))
            pressed = time.perf_counter()
            button(lab, "Train").click()
            page.wait_for_function("el => +el.dataset.lastStep >= 0", arg=chart.element_handle(), timeout=60_000)
            results["first_frame_s"] = round(time.perf_counter() - pressed, 2)
            progress = lab.locator(".widget-html-content").filter(has_text=re.compile(r"step \d+/")).first
            time.sleep(0.5)
            f0, s0, t0 = attribute(chart, "data-frames"), step_of(progress.inner_text()), time.perf_counter()
            time.sleep(args.window)
            f1, s1, t1 = attribute(chart, "data-frames"), step_of(progress.inner_text()), time.perf_counter()
            results["frames_per_s"] = round((f1 - f0) / (t1 - t0), 1)
            results["steps_per_s"] = round((s1 - s0) / (t1 - t0), 1)
            page.screenshot(path=str(shots / "lab-scenes-training.png"))
            strip = lab.locator("img.mtl-strip").first
            strip.wait_for(timeout=180_000)
            page.wait_for_function("el => el.naturalWidth > 0 && el.offsetHeight > 0", arg=strip.element_handle(),
                                   timeout=60_000)
            results["train_to_strip_s"] = round(time.perf_counter() - pressed, 1)
            lab.locator("table").first.wait_for(timeout=300_000)  # after the baselines, when they are wanted
            results["train_to_table_s"] = round(time.perf_counter() - pressed, 1)
            box = strip.bounding_box()
            results["strip_css_px"] = [round(box["width"]), round(box["height"])]
            results["strip_natural_px"] = strip.evaluate("el => [el.naturalWidth, el.naturalHeight]")
            scroll_to(page, chart)
            page.screenshot(path=str(shots / "lab-scenes-end-chart.png"))
            scroll_to(page, strip, "end")
            page.screenshot(path=str(shots / "lab-scenes-end-strip.png"))
            scroll_to(page, lab.locator("table").first, "center")
            page.screenshot(path=str(shots / "lab-scenes-end-table.png"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
