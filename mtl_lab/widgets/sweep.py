"""The Pareto sweep widget: static weight ratios (two tasks) or a simplex grid (three), adaptive methods marked.

A thin view over :func:`mtl_lab.studies.sweep.sweep`. **Sweep** trains in a background thread (Stop ends it
after the current model, keeping what is done); :meth:`ParetoSweep.run` is the synchronous path.
"""

from __future__ import annotations

import threading

import ipywidgets as W

from mtl_lab.data import DATASETS, REQUIRED_FILES
from mtl_lab.models import ARCHITECTURES
from mtl_lab.plots import display_width, to_png
from mtl_lab.studies import sweep as core
from mtl_lab.weighting import available
from mtl_lab.widgets.common import close_all, close_tree, html_table, replace_previous, status_html, view_bundle
from mtl_lab.widgets.config import load_data


class ParetoSweep:
    """Sweep settings, the front figure and a table (``sweep.result`` after a run)."""

    def __init__(self, data: str = "digits", tasks: tuple[str, ...] = ("digit", "recon"), points: int = 7,
                 methods: tuple[str, ...] = ("equal", "mgda", "uncertainty"), epochs: int = 5, lr: float = 3e-3,
                 architecture: str = "hard", model_options: dict | None = None, split: str = "val",
                 name: str = "sweep") -> None:
        self.name = name
        self.result: core.SweepResult | None = None
        self.thread: threading.Thread | None = None
        self.stop_event = threading.Event()
        self.model_options = dict(model_options or {})
        self.split = split
        wide = {"description_width": "initial"}
        # the sets that load without files (the sweep loads by name alone)
        names = [name for name in DATASETS if name not in REQUIRED_FILES]
        self.data_w = W.Dropdown(options=names, value=data, description="data", style=wide)
        self.arch_w = W.Dropdown(options=list(ARCHITECTURES), value=architecture, description="architecture",
                                 style=wide)
        self.task_box = W.HBox()
        self.task_checks: dict[str, W.Checkbox] = {}
        self.points_w = W.BoundedIntText(value=points, min=2, max=41, description="ratios / grid", style=wide,
                                         layout=W.Layout(width="160px"))
        self.epochs_w = W.BoundedIntText(value=epochs, min=1, max=1000, description="epochs", style=wide,
                                         layout=W.Layout(width="130px"))
        self.lr_w = W.FloatLogSlider(value=lr, base=10, min=-5, max=0, step=0.1, description="lr",
                                     readout_format=".1e", style=wide)
        self.methods_w = W.SelectMultiple(options=[n for n, _ in available()], value=tuple(methods),
                                          description="adaptive", rows=6, style=wide)
        self.sweep_b = W.Button(description="Sweep", button_style="success", icon="play")
        self.stop_b = W.Button(description="Stop", button_style="danger", icon="stop")
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="200px"))
        self.status = W.HTML()
        self.image = W.Image(format="png", layout=W.Layout(width="100%", height="auto"))
        self.table = W.HTML()
        self.data_w.observe(lambda change: self.set_tasks(change["new"], None), names="value")
        self.sweep_b.on_click(lambda _: self.start())
        self.stop_b.on_click(lambda _: self.stop())
        self.set_tasks(data, list(tasks))
        controls = W.VBox([
            W.HBox([self.data_w, self.arch_w]),
            W.HBox([W.HTML("<b>tasks (2 or 3)</b>&nbsp;"), self.task_box]),
            W.HBox([self.points_w, self.epochs_w, self.lr_w]),
            self.methods_w,
            W.HBox([self.sweep_b, self.stop_b, self.progress]),
            self.status,
        ])
        self.widget = W.VBox([controls, self.image, self.table])
        replace_previous(name, self)

    def set_tasks(self, data: str, selected: list[str] | None) -> None:
        names = load_data(data).task_names
        selected = names[:2] if selected is None else selected
        unknown = [t for t in selected if t not in names]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown} for data set {data!r}; choose from {names}")
        close_all(self.task_checks.values())
        self.task_checks = {t: W.Checkbox(value=t in selected, description=t, indent=False,
                                          layout=W.Layout(width="auto")) for t in names}
        self.task_box.children = list(self.task_checks.values())

    def plan(self) -> tuple:
        """The data (selected tasks), weight vectors and options of the sweep; ``ValueError`` if unusable."""
        tasks = [t for t, box in self.task_checks.items() if box.value]
        if len(tasks) not in (2, 3):
            raise ValueError(f"choose 2 or 3 tasks for the sweep, got {len(tasks)}")
        data = load_data(self.data_w.value).select(tasks)
        points = int(self.points_w.value)
        weights = core.ratio_grid(points) if len(tasks) == 2 else core.simplex_grid(3, points)
        options = {"epochs": int(self.epochs_w.value), "lr": float(self.lr_w.value), "seed": 0}
        return data, weights, options

    def run(self) -> core.SweepResult | None:
        """Run the sweep synchronously and show it."""
        try:
            data, weights, options = self.plan()
        except ValueError as exc:
            self.status.value = status_html("error", str(exc), "#c00")
            return None
        self.stop_event.clear()
        self.work(data, weights, options)
        return self.result

    def start(self) -> bool:
        """Run the sweep in a background thread (``False`` with a message if it cannot start)."""
        if self.thread is not None and self.thread.is_alive():
            self.status.value = status_html("busy", "a sweep is running: press Stop first", "#b36b00")
            return False
        try:
            data, weights, options = self.plan()
        except ValueError as exc:
            self.status.value = status_html("error", str(exc), "#c00")
            return False
        self.stop_event.clear()
        self.thread = threading.Thread(target=self.work, args=(data, weights, options), name="mtl_lab-sweep",
                                       daemon=True)
        self.thread.start()
        return True

    def stop(self, wait: bool = False, timeout: float = 60.0) -> None:
        self.stop_event.set()
        if wait and self.thread is not None:
            self.thread.join(timeout)

    def work(self, data, weights, options) -> None:
        """Train every point, then draw (errors end up in the status line)."""
        self.sweep_b.disabled = True
        try:
            self.result = core.sweep(data, weights, list(self.methods_w.value), self.arch_w.value,
                                     self.model_options, split=self.split, progress=self.on_progress,
                                     stop=self.stop_event, **options)
            self.draw()
            done = len(self.result.static) + len(self.result.adaptive)
            state = "stopped" if self.stop_event.is_set() else "done"
            self.status.value = status_html(state, f"{done} model(s) trained; {len(self.result.front())} static "
                                            "weighting(s) on the front", "#06c")
        except Exception as exc:  # a thread must report, not crash
            self.status.value = status_html("error", f"{type(exc).__name__}: {exc}", "#c00")
        finally:
            self.sweep_b.disabled = False

    def on_progress(self, done: int, total: int, label: str) -> None:
        self.progress.max = total
        self.progress.value = done
        self.status.value = status_html("sweeping", f"{done}/{total} · training {label}", "#0a5")

    def draw(self) -> None:
        if self.result is None or not (self.result.static or self.result.adaptive):
            return
        figure = core.front_figure(self.result)
        self.image.value = to_png(figure)
        self.image.layout.max_width = f"{display_width(figure)}px"
        front = set(self.result.front())
        names = self.result.task_names
        rows = [[p.label, *[f"{p.metrics[t]:.4f}" for t in names], "yes" if k in front else ""]
                for k, p in enumerate(self.result.static)]
        rows += [[p.label, *[f"{p.metrics[t]:.4f}" for t in names], "(adaptive)"] for p in self.result.adaptive]
        header = ["weights / method", *[f"{t} {self.result.metric_names[t]}" for t in names], "on the front"]
        self.table.value = html_table(header, rows, f"final {self.result.split} metrics") + (
            f"<p>{self.result.scores_text()}</p>")

    def close(self) -> None:
        self.stop(wait=True)
        close_tree(self.widget)

    def __repr__(self) -> str:
        tasks = [t for t, box in self.task_checks.items() if box.value]
        return f"ParetoSweep(data={self.data_w.value!r}, tasks={tasks}, points={self.points_w.value})"

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live view, its ``repr`` as text and a PNG of its last state (:func:`.common.view_bundle`)."""
        return view_bundle(self, self.widget, self.image.value, **kwargs)
