"""The live lab in a real browser: frame rate, first-frame latency, Stop latency, training cost, culling.

Measured side by side in one run, on this machine (headless Chromium and the kernel share its cores):

* **Training cost** — steps/s of the same lab configuration at full speed, headless (a Lab trained in a
  plain Python process, its chart feed sending to no browser) before and after, and with the page open
  in JupyterLab; the ratio page / mean(headless).
* **Frames** — distinct chart frames per second during training (the chart counts its redraws in
  ``data-frames``; a redraw happens only when new data arrived), in JupyterLab at full speed and in the
  Voila classroom page at lecture pace; the first frame after Train; Stop until the status says stopped.
* **Race** — two and four methods racing at full speed in JupyterLab at 1280×720: chart frames per
  second, and each racer's steps/s with the page open against the same race headless (the training cost).
* **Arena** — how often the methods' arrows were redrawn per second while a gradient tip was dragged.
* **Pareto explorer** — how often the model's point and metrics were redrawn per second while the
  preference dot was dragged (each one a forward pass over the validation split in the kernel).
* **One screen** — at 1280×720 and 1000×800 in JupyterLab (file browser hidden), which of the weights,
  Train, Stop, the whole chart and the loss panel are wholly on screen together (element rectangles).
* **Classroom page** — time until the page is usable; kernels left after 10 page loads (9 closed) once
  idle culling has run.

Screenshots of the lab, the arena and the landscape in JupyterLab, and of the classroom page, at
1000×800 and 1400×900, of the Pareto explorer at 1280×720 and 1000×800, and of the races
(``race-2-*.png``, ``race-4-*.png``) go to ``--shots`` (default
``benchmarks/screenshots``).

    .venv/bin/python benchmarks/bench_browser.py            # ~4 minutes
    .venv/bin/python benchmarks/bench_browser.py --seconds 10 --no-shots
    .venv/bin/python benchmarks/bench_browser.py --explorer-only   # the Pareto explorer alone, ~1 minute
    .venv/bin/python benchmarks/bench_browser.py --race-only      # the race part alone (~2 minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser_harness import (  # noqa: E402
    CULL_IDLE_S,
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

CONFIG = dict(data="digits", tasks=["digit", "parity", "ge5", "recon"], model_options={"hidden": [64, 64]},
              method="static", weights={"recon": 5.0}, lr=2e-3, epochs=5000, baselines=False)
SETUP = ("import torch\ntorch.set_num_threads(1)\nfrom mtl_lab.widgets import Lab, LabConfig\n"
         f"lab = Lab(LabConfig(**{CONFIG!r}), name='bench', pace=None)\n")

# In every kernel and headless run: a thread that, once the run (or race) has taken 20 steps, measures for
# $MTL_BENCH_SECONDS the steps, the CPU seconds of the training thread and of the kernel's other threads
# (Linux /proc), and appends them as a JSON line to $MTL_BENCH_PROBE. Steps per CPU-second of the training
# thread do not depend on how the cores are shared; the training thread's share of a core does.
PROBE = """
import json as _json, os as _os, threading as _threading, time as _time
def _thread_cpu(tid):
    with open(f"/proc/self/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _os.sysconf("SC_CLK_TCK")
def _probe():
    out, seconds = _os.environ.get("MTL_BENCH_PROBE"), float(_os.environ.get("MTL_BENCH_SECONDS", "15"))
    if not out:
        return
    runner = lambda: lab.race.runner if lab.race.running else (lab.handle if lab.running else None)
    step = lambda: lab.race.runner.step if lab.race.running else lab.trainer.global_step
    while runner() is None or step() < 20:
        _time.sleep(0.05)
    train = runner().thread.native_id
    tids = [int(t) for t in _os.listdir("/proc/self/task")]
    c0, s0, w0 = {t: _thread_cpu(t) for t in tids}, step(), _time.perf_counter()
    _time.sleep(seconds)
    alive = [t for t in tids if _os.path.exists(f"/proc/self/task/{t}")]
    c1, s1, w1 = {t: _thread_cpu(t) for t in alive}, step(), _time.perf_counter()
    cpu = {t: c1[t] - c0[t] for t in c1}
    with open(out, "a") as f:
        f.write(_json.dumps({"steps": s1 - s0, "wall_s": w1 - w0, "train_cpu_s": cpu.get(train, 0.0),
                             "other_kernel_cpu_s": sum(v for t, v in cpu.items() if t != train)}) + "\\n")
_threading.Thread(target=_probe, daemon=True).start()
"""
SETUP += PROBE

HEADLESS = SETUP + """
import time
time.sleep(1.0)
lab.train()
while lab.trainer.global_step < 20:
    time.sleep(0.01)
t0, s0 = time.perf_counter(), lab.trainer.global_step
time.sleep({seconds})
t1, s1 = time.perf_counter(), lab.trainer.global_step
lab.stop(wait=True)
print((s1 - s0) / (t1 - t0))
"""


RACES = {2: ("equal", "pcgrad"), 4: ("equal", "uncertainty", "pcgrad", "mgda")}


RACE_CONFIG = {**CONFIG, "epochs": 800}  # 13 600 steps: well more than a window takes (a race of 2 runs ~320 rounds/s)


def race_setup(methods: tuple[str, ...]) -> str:
    return SETUP.replace(repr(CONFIG), repr(RACE_CONFIG)) + f"lab.race.methods_w.value = {methods!r}\n"


HEADLESS_RACE = """
import time
time.sleep(1.0)
lab.race.start()
while lab.race.runner.step < 20:
    time.sleep(0.01)
t0, s0 = time.perf_counter(), lab.race.runner.step
time.sleep({seconds})
t1, s1 = time.perf_counter(), lab.race.runner.step
lab.stop(wait=True)
print((s1 - s0) / (t1 - t0))
"""


def headless_race_rate(methods: tuple[str, ...], seconds: float) -> float:
    """Steps/s of each racer (rounds/s) of a race with no browser."""
    script = race_setup(methods) + HEADLESS_RACE.replace("{seconds}", str(seconds))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def watch_race(page, seconds: float) -> dict:
    """Press Race; sample the chart's frames and the racers' step for ``seconds``; press Stop race."""
    lab = page.locator(".mtl-lab").first
    chart = lab.locator(".mtl-live-chart").first
    page.wait_for_function("el => +el.dataset.frames >= 1", arg=chart.element_handle(), timeout=60_000)
    button(lab, "Race").click()
    page.wait_for_function("el => +el.dataset.lastStep >= 0", arg=chart.element_handle(), timeout=30_000)
    status = lab.locator(".widget-html-content").filter(has_text=re.compile(r"race.*step \d+/")).first
    time.sleep(1.0)
    f0, s0, t0 = attribute(chart, "data-frames"), step_of(status.inner_text()), time.perf_counter()
    time.sleep(seconds)
    f1, s1, t1 = attribute(chart, "data-frames"), step_of(status.inner_text()), time.perf_counter()
    lines = attribute(chart, "data-lines")
    button(lab, "Stop race").click()
    lab.locator(".widget-html-content").filter(has_text="ended at step").first.wait_for(timeout=30_000)
    return {"frames_per_s": (f1 - f0) / (t1 - t0), "steps_per_s_per_racer": (s1 - s0) / (t1 - t0),
            "loss_lines": lines}


def measure_races(sync_api, work: Path, seconds: float, shots: Path | None) -> dict:
    """Each race (2 and 4 methods): headless, then with the JupyterLab page open at 1280×720, then headless."""
    results = {}
    for n, methods in RACES.items():
        (work / "nb" / f"race{n}.ipynb").write_text(json.dumps(notebook(race_setup(methods) + "lab")))
        before = headless_race_rate(methods, seconds)
        probes = [probe_results()]
        port = free_port()
        with serve(lab_command(port, work / "nb"), f"http://127.0.0.1:{port}/api/status", work), \
                chromium(sync_api, 1280, 720) as page:
            run_all(page, port, f"race{n}.ipynb")
            tidy_lab(page)
            watched = watch_race(page, seconds)
            probes.append(probe_results())
            if shots is not None:
                shoot(page, ".mtl-lab .mtl-live-chart", shots / f"race-{n}-chart-1280x720.png")
                shoot(page, ".mtl-lab .mtl-race", shots / f"race-{n}-controls-1280x720.png", "center")
        after = headless_race_rate(methods, seconds)
        probes.append(probe_results())
        watched["cpu_probes"] = probes
        watched["headless_steps_per_s_per_racer"] = [before, after]
        watched["training_kept"] = watched["steps_per_s_per_racer"] / statistics.mean([before, after])
        results[f"race_{n}"] = watched
    return results


def print_races(results: dict) -> None:
    print("| race (JupyterLab, 1280×720, full speed) | chart frames/s | loss lines | steps/s per racer, page open "
          "| headless before / after | training kept |")
    print("|---|---|---|---|---|---|")
    for n in RACES:
        r = results[f"race_{n}"]
        h = r["headless_steps_per_s_per_racer"]
        print(f"| {n} methods | {r['frames_per_s']:.1f} | {r['loss_lines']} | {r['steps_per_s_per_racer']:.0f} | "
              f"{h[0]:.0f} / {h[1]:.0f} | {100 * r['training_kept']:.0f} % |")
    for n in RACES:
        print(cpu_line(f"race of {n} (rounds)", results[f"race_{n}"]["cpu_probes"]))


PROBE_FILE = Path(tempfile.gettempdir()) / f"mtl-bench-probe-{os.getpid()}.jsonl"


def probe_results() -> dict:
    """What the last run's probe measured (see PROBE): steps per CPU-second of its training thread, that
    thread's share of a core, and the share the kernel's other threads took; the file is emptied."""
    lines = PROBE_FILE.read_text().splitlines() if PROBE_FILE.exists() else []
    PROBE_FILE.unlink(missing_ok=True)
    if not lines:
        return {}
    p = json.loads(lines[-1])
    return {"steps_per_cpu_s": p["steps"] / max(p["train_cpu_s"], 1e-9),
            "train_thread_core_share": p["train_cpu_s"] / p["wall_s"],
            "other_kernel_threads_core_share": p["other_kernel_cpu_s"] / p["wall_s"]}


def cpu_line(name: str, probes: list[dict]) -> str:
    """One line of the CPU probes of a measurement: headless before, page open, headless after."""
    if not all(probes):
        return f"{name}: no CPU probe (not Linux?)"
    h = [probes[0], probes[2]]
    page = probes[1]
    return (f"{name}: steps per CPU-second of the training thread: headless {h[0]['steps_per_cpu_s']:.0f} / "
            f"{h[1]['steps_per_cpu_s']:.0f}, page open {page['steps_per_cpu_s']:.0f}; the training thread's "
            f"share of a core: headless {h[0]['train_thread_core_share']:.2f} / {h[1]['train_thread_core_share']:.2f}, "
            f"page open {page['train_thread_core_share']:.2f}; the kernel's other threads (chart feed, messages): "
            f"{100 * page['other_kernel_threads_core_share']:.1f} % of a core with the page open")


def headless_rate(seconds: float) -> float:
    script = HEADLESS.replace("{seconds}", str(seconds))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def notebook(source: str) -> dict:
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": "bench", "metadata": {}, "outputs": [],
                       "source": source.splitlines(True)}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def watch_training(page, seconds: float) -> dict:
    """Press Train; sample the chart and the status line for ``seconds``; press Stop."""
    lab = page.locator(".mtl-lab").first
    chart = lab.locator(".mtl-live-chart").first
    page.wait_for_function("el => +el.dataset.frames >= 1", arg=chart.element_handle(), timeout=60_000)  # view ready
    pressed = time.perf_counter()
    button(lab, "Train").click()
    page.wait_for_function("el => +el.dataset.lastStep >= 0", arg=chart.element_handle(), timeout=30_000)
    first_frame = time.perf_counter() - pressed
    status = lab.locator(".widget-html-content").filter(has_text=re.compile(r"step \d+/")).first
    time.sleep(1.0)
    f0, s0, t0 = attribute(chart, "data-frames"), step_of(status.inner_text()), time.perf_counter()
    time.sleep(seconds)
    f1, s1, t1 = attribute(chart, "data-frames"), step_of(status.inner_text()), time.perf_counter()
    button(lab, "Stop").click()
    stopped = time.perf_counter()
    lab.locator(".widget-html-content").filter(has_text="stopped").first.wait_for(timeout=15_000)
    return {"frames_per_s": (f1 - f0) / (t1 - t0), "steps_per_s": (s1 - s0) / (t1 - t0),
            "first_frame_s": first_frame, "stop_s": time.perf_counter() - stopped}


def shoot(page, locator: str, path: Path, align: str = "start") -> None:
    """What a person sees: the viewport with ``locator`` scrolled to its top (``align="end"``: its bottom)."""
    page.locator(locator).first.evaluate(f"el => el.scrollIntoView({{block: '{align}'}})")
    time.sleep(0.5)
    page.screenshot(path=str(path))


def tidy_lab(page) -> None:
    """A classroom's JupyterLab: the file browser folded away, the news prompt answered."""
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    news = page.locator(".jp-toast-button", has_text=re.compile(r"^\s*No\s*$"))
    if news.count():
        news.first.click()


def measure_explorer(sync_api, work: Path, shots: Path | None, seconds: float = 3.0) -> dict:
    """Drag the Pareto explorer's preference dot at 1280×720 and 1000×800 (updates per second), and take its
    screenshots there (two tasks after the drag, the dot away from the centre; three tasks, the simplex)."""
    (work / "nb" / "explorer.ipynb").write_text(json.dumps(explorer_notebook(points=7, three=True)))
    results = {}
    port = free_port()
    with serve(lab_command(port, work / "nb"), f"http://127.0.0.1:{port}/api/status", work):
        for width, height in ((1280, 720), (1000, 800)):
            with chromium(sync_api, width, height) as page:
                run_all(page, port, "explorer.ipynb", done_text="three tasks ready")
                tidy_lab(page)
                page.locator(".mtl-explorer-view circle.mtl-explorer-handle").first.wait_for(timeout=30_000)
                redrawn, moves, took, _, _ = drag_explorer_handle(page, seconds=seconds)
                results[f"explorer_updates_per_s_{width}x{height}"] = redrawn / took
                results[f"explorer_pointer_moves_per_s_{width}x{height}"] = moves / took
                if shots is not None:
                    shoot(page, ".mtl-explorer", shots / f"pareto-explorer-{width}x{height}.png")
                    shoot(page, ".mtl-explorer >> nth=1", shots / f"pareto-explorer-3-tasks-{width}x{height}.png")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window per measurement")
    parser.add_argument("--shots", default=str(ROOT / "benchmarks" / "screenshots"))
    parser.add_argument("--no-shots", action="store_true")
    parser.add_argument("--quick", action="store_true", help="5-second windows, no screenshots (a smoke test)")
    parser.add_argument("--explorer-only", action="store_true", help="measure the Pareto explorer alone")
    parser.add_argument("--race-only", action="store_true", help="only the races (2 and 4 methods)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.no_shots = 5.0, True
    from playwright import sync_api

    from mtl_lab.widgets.classroom import APP_NOTEBOOK, voila_command, voila_environment

    shots = Path(args.shots)
    if not args.no_shots:
        shots.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    work = Path(tempfile.mkdtemp(prefix="mtl-bench-browser-"))
    (work / "nb").mkdir()
    (work / "nb" / "bench.ipynb").write_text(json.dumps(notebook(SETUP + "lab")))
    shutil.copy(ROOT / "notebooks" / "07_weight_tuning_lab.ipynb", work / "nb")
    shutil.copy(APP_NOTEBOOK, work / "nb")
    os.environ["MTL_BENCH_PROBE"] = str(PROBE_FILE)  # the kernels and headless runs inherit it
    os.environ["MTL_BENCH_SECONDS"] = str(max(1.0, args.seconds - 2.0))  # inside each watching window
    PROBE_FILE.unlink(missing_ok=True)
    if args.explorer_only:
        try:
            results = measure_explorer(sync_api, work, None if args.no_shots else shots)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print_explorer(results)
        return 0
    try:
        results.update(measure_races(sync_api, work, args.seconds, None if args.no_shots else shots))
        if args.race_only:
            print_races(results)
            print(json.dumps(results, indent=1))
            return 0
        before = headless_rate(args.seconds)
        probes = [probe_results()]
        port = free_port()
        with serve(lab_command(port, work / "nb"), f"http://127.0.0.1:{port}/api/status", work), \
                chromium(sync_api, 1400, 900) as page:
            run_all(page, port, "bench.ipynb")
            results["jupyterlab"] = watch_training(page, args.seconds)
            probes.append(probe_results())
        after = headless_rate(args.seconds)
        probes.append(probe_results())
        results["cpu_probes"] = probes
        results["headless_steps_per_s"] = [before, after]
        results["training_kept"] = results["jupyterlab"]["steps_per_s"] / statistics.mean([before, after])
        port = free_port()
        with serve(lab_command(port, work / "nb"), f"http://127.0.0.1:{port}/api/status", work):
            for width, height in ((1000, 800), (1280, 720)):
                with chromium(sync_api, width, height) as page:
                    run_all(page, port, "07_weight_tuning_lab.ipynb", done_text="on the front:")
                    tidy_lab(page)
                    page.evaluate("() => { const s = window.jupyterapp.shell; s.collapseLeft(); }")
                    scroller = ".jp-NotebookPanel .jp-WindowedPanel-outer"
                    results[f"one_screen_{width}x{height}"] = one_screen(page, scroller)
                    if width == 1280:
                        redrawn, moves, seconds, _, _ = drag_arena_tip(page, seconds=3.0)
                        results["arena_updates_per_s"] = redrawn / seconds
                        results["arena_pointer_moves_per_s"] = moves / seconds
                    if not args.no_shots:
                        lab = page.locator(".mtl-lab").first
                        button(lab, "Train").click()
                        time.sleep(6)
                        button(lab, "Stop").click()
                        shoot(page, ".mtl-lab", shots / f"lab-panel-{width}x{height}.png")
                        shoot(page, ".mtl-lab .mtl-live-chart", shots / f"lab-chart-{width}x{height}.png", "end")
                        shoot(page, ".mtl-arena", shots / f"arena-{width}x{height}.png")
                        shoot(page, ".mtl-landscape", shots / f"landscape-{width}x{height}.png")
        results.update(measure_explorer(sync_api, work, None if args.no_shots else shots))
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        command = [*voila_command(work / "nb" / APP_NOTEBOOK.name, port, cull_idle=CULL_IDLE_S, token=False),
                   "--no-browser"]
        os.environ.update(voila_environment(dict(os.environ)))  # the classroom page's template
        with serve(command, url, work) as server, chromium(sync_api, 1400, 900) as page:
            for _ in range(9):
                other = page.context.browser.new_page()
                other.goto(url, timeout=120_000)
                other.locator(".mtl-classroom .mtl-lab").first.wait_for(timeout=120_000)
                other.close()
            loaded = time.perf_counter()
            page.goto(url, timeout=120_000)
            page.locator(".mtl-classroom .mtl-lab").first.wait_for(timeout=120_000)
            results["voila_usable_s"] = time.perf_counter() - loaded
            results["voila_kernels_after_10_loads"] = kernels_of(server)
            results["voila"] = watch_training(page, args.seconds)
            deadline = time.perf_counter() + CULL_IDLE_S + CULL_IDLE_S // 4 + 30
            while kernels_of(server) > 1 and time.perf_counter() < deadline:
                time.sleep(0.5)
            results["voila_kernels_after_culling"] = kernels_of(server)
            if not args.no_shots:
                for width, height in ((1000, 800), (1400, 900)):
                    page.set_viewport_size({"width": width, "height": height})
                    time.sleep(0.5)
                    page.screenshot(path=str(shots / f"classroom-{width}x{height}.png"), full_page=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lab, voila = results["jupyterlab"], results["voila"]
    print("| measurement | JupyterLab (full speed) | Voila classroom (lecture pace) |")
    print("|---|---|---|")
    print(f"| chart frames per second | {lab['frames_per_s']:.1f} | {voila['frames_per_s']:.1f} |")
    print(f"| first frame after Train | {lab['first_frame_s']:.2f} s | {voila['first_frame_s']:.2f} s |")
    print(f"| Stop until 'stopped' | {lab['stop_s']:.2f} s | {voila['stop_s']:.2f} s |")
    print(f"| steps/s while the page is open | {lab['steps_per_s']:.0f} | {voila['steps_per_s']:.0f} |")
    h = results["headless_steps_per_s"]
    print(f"\nheadless steps/s before / after: {h[0]:.0f} / {h[1]:.0f}; with the page open: "
          f"{lab['steps_per_s']:.0f} → kept {100 * results['training_kept']:.0f} % of headless")
    print(cpu_line("the lab's run", results["cpu_probes"]))
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    print(f"arena: method arrows redrawn {results['arena_updates_per_s']:.1f} times/s while dragging "
          f"({results['arena_pointer_moves_per_s']:.1f} pointer moves/s sent by the harness)")
    print(f"classroom page usable after {results['voila_usable_s']:.1f} s; kernels after 10 loads (9 closed): "
          f"{results['voila_kernels_after_10_loads']}, after culling: {results['voila_kernels_after_culling']}")
    print_explorer(results)
    print_races(results)
    for key in ("one_screen_1280x720", "one_screen_1000x800"):
        print(f"{key}: on screen together: {[k for k, v in results[key].items() if v is True]}")
    print(json.dumps(results, indent=1))
    return 0


def print_explorer(results: dict) -> None:
    for size in ("1280x720", "1000x800"):
        print(f"Pareto explorer at {size}: model point and metrics redrawn "
              f"{results[f'explorer_updates_per_s_{size}']:.1f} times/s while dragging "
              f"({results[f'explorer_pointer_moves_per_s_{size}']:.1f} pointer moves/s sent by the harness)")


if __name__ == "__main__":
    raise SystemExit(main())
