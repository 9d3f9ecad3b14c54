"""The toy landscape widget: CAGrad's two-task toy problem, the Pareto set, and method trajectories.

A thin view over :mod:`mtl_lab.toy`: pick methods and starting points, press Compute, then drag the
step slider to replay the runs over the contours of ``L1``, ``L2`` and their mean. The defaults are the
paper's settings (Adam, lr 1e-3, 100 000 steps), which take seconds with the batched path.

* **Compute** runs in a background ``threading.Thread``: the notebook stays usable, a progress bar
  moves (at most 4 updates a second), and **Stop** ends the run within half a second (the toy checks
  in every few hundred steps); the paths then end where they were. The figure (matplotlib, a static
  picture) is drawn once the results are in, and again when the step slider moves.
* :meth:`ToyLandscape.run` is the synchronous path for scripts and executed notebooks: the same work
  in the caller's thread, the results returned.
* Every option is checked by :mod:`mtl_lab.toy` (the one validation layer); a bad value typed into the
  panel shows that message in the status line instead of raising.
* :meth:`ToyLandscape.close` stops a run and closes every widget the view made (layouts and styles
  included), so re-running a cell leaves nothing behind.
"""

from __future__ import annotations

import functools
import threading
import time

import ipywidgets as W
import torch
from matplotlib.figure import Figure

from mtl_lab import toy
from mtl_lab.palette import method_color
from mtl_lab.plots import display_width, to_png
from mtl_lab.weighting import available
from mtl_lab.widgets.common import replace_previous, status_html, view_bundle

DEFAULT_METHODS = ("equal", "mgda", "pcgrad", "cagrad")
STARTS = {f"({a:g}, {b:g})": (a, b) for a, b in (*toy.PAPER_STARTS, *toy.MORE_STARTS)}
UPDATE_EVERY = 0.25  # seconds between two progress-bar updates (≤ 4 a second)


@functools.cache
def landscape_background() -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor, bytes]:
    """The loss grid, the Pareto set and the empty figure as PNG: the same for every view, made once."""
    grid = toy.loss_grid(160)
    pareto = toy.pareto_set()
    return grid, pareto, to_png(toy.landscape_figure(None, pareto=pareto, grid=grid))


def close_everything(widget: W.Widget) -> None:
    """Close a widget, the widgets inside it, and their layout and style objects (widgets too)."""
    for child in getattr(widget, "children", ()):
        close_everything(child)
    for part in ("layout", "style"):
        inner = getattr(widget, part, None)
        if isinstance(inner, W.Widget):
            inner.close()
    widget.close()


class ToyLandscape:
    """Contours, Pareto set, and a step slider over the trajectories (``landscape.runs``)."""

    def __init__(self, methods: tuple[str, ...] | list[str] = DEFAULT_METHODS, steps: int = toy.PAPER_STEPS,
                 lr: float = toy.PAPER_LR, starts: tuple[tuple[float, float], ...] = toy.PAPER_STARTS,
                 name: str = "landscape") -> None:
        toy.check_methods(list(methods))
        toy.check_run_options(steps, lr, "adam", starts)
        names = [n for n, _ in available()]
        self.name = name
        self.runs: dict[str, list[toy.Trajectory]] = {}
        self.grid, self.pareto, empty_png = landscape_background()
        self.thread: threading.Thread | None = None
        self.stop_event = threading.Event()
        self.last_update = 0.0
        self.computed_steps = 0
        wide = {"description_width": "initial"}
        self.methods_w = W.SelectMultiple(options=names, value=tuple(methods), description="methods", rows=6,
                                          style=wide, layout=W.Layout(width="230px"))
        labels = {f"({a:g}, {b:g})" for a, b in starts}
        self.start_w = {label: W.Checkbox(value=label in labels, description=label, indent=False,
                                          layout=W.Layout(width="auto")) for label in STARTS}
        self.steps_w = W.IntText(value=steps, description="steps", style=wide, layout=W.Layout(width="170px"))
        self.lr_w = W.FloatText(value=lr, description="lr (Adam)", style=wide, layout=W.Layout(width="170px"))
        self.compute_b = W.Button(description="Compute", button_style="primary", icon="play",
                                  layout=W.Layout(width="110px"))
        self.stop_b = W.Button(description="Stop", icon="stop", disabled=True, layout=W.Layout(width="90px"))
        self.progress_w = W.FloatProgress(value=0.0, min=0.0, max=1.0, description="progress", style=wide,
                                          layout=W.Layout(width="300px"))
        self.step_w = W.IntSlider(value=0, min=0, max=1, description="show step", style=wide,
                                  continuous_update=False, layout=W.Layout(width="440px"))
        self.status = W.HTML(layout=W.Layout(max_width="440px"))
        self.legend = W.HTML(layout=W.Layout(max_width="440px"))
        self.image = W.Image(value=empty_png, format="png",  # shown at the figure's display width (13 in)
                             layout=W.Layout(width="100%", max_width="1170px", height="auto"))
        self.compute_b.on_click(lambda _: self.start())
        self.stop_b.on_click(lambda _: self.stop())
        self.step_w.observe(lambda _: self.draw(), names="value")
        wrap = W.Layout(flex_flow="row wrap", align_items="flex-start")
        self.controls = W.Box([
            self.methods_w,
            W.VBox([W.HTML("<b>starting points</b>"), *self.start_w.values()], layout=W.Layout(width="150px")),
            W.VBox([self.steps_w, self.lr_w, W.HBox([self.compute_b, self.stop_b]), self.progress_w],
                   layout=W.Layout(width="320px")),
            W.VBox([self.step_w, self.status, self.legend], layout=W.Layout(width="450px")),
        ], layout=wrap)
        self.widget = W.VBox([self.controls, self.image])
        self.widget.add_class("mtl-landscape")
        self.figure: Figure | None = None  # made on the first draw
        replace_previous(name, self)

    # ------------------------------------------------------------------ options and the work itself

    def selected_starts(self) -> tuple[tuple[float, float], ...]:
        return tuple(STARTS[label] for label, box in self.start_w.items() if box.value)

    def options(self) -> dict:
        """The panel's values, checked by :mod:`mtl_lab.toy` (raises its ValueError when one is bad)."""
        options = {"methods": list(self.methods_w.value), "starts": self.selected_starts(),
                   "steps": self.steps_w.value, "lr": self.lr_w.value}
        toy.check_methods(options["methods"])
        toy.check_run_options(options["steps"], options["lr"], "adam", options["starts"])
        return options

    def progress(self, fraction: float) -> bool:
        """Called by the toy every few hundred steps: move the bar (≤ 4×/s); False asks it to stop."""
        now = time.monotonic()
        if now - self.last_update >= UPDATE_EVERY:
            self.last_update = now
            self.progress_w.value = min(max(fraction, 0.0), 1.0)
        return not self.stop_event.is_set()

    def compute(self, options: dict) -> None:
        """Run the toy with ``options`` and show the result (in whichever thread calls it)."""
        started = time.perf_counter()
        try:
            runs = toy.trajectories(options["methods"], options["starts"], steps=options["steps"],
                                    lr=options["lr"], progress=self.progress)
        except ValueError as exc:
            self.status.value = status_html("error", str(exc), "#c00")
            return
        finally:
            self.compute_b.disabled, self.stop_b.disabled = False, True
        self.runs = runs
        self.computed_steps = max((p.steps for paths in runs.values() for p in paths), default=0)
        self.progress_w.value = 1.0 if not self.stop_event.is_set() else self.progress_w.value
        self.show_results(options, time.perf_counter() - started)

    def show_results(self, options: dict, seconds: float) -> None:
        errors = [p.error for paths in self.runs.values() for p in paths if p.error]
        self.step_w.unobserve_all("value")
        self.step_w.max = max(self.computed_steps, 1)
        self.step_w.value = self.computed_steps
        self.step_w.observe(lambda _: self.draw(), names="value")
        self.draw()
        stopped = self.stop_event.is_set()
        text = (f"{len(self.runs)} method(s) × {len(options['starts'])} start(s), "
                f"{self.computed_steps:,} of {options['steps']:,} steps in {seconds:.1f} s")
        if errors:
            text += f" · {errors[0]}"
        state = "stopped" if stopped else "done"
        self.status.value = status_html(state, text, "#b36b00" if errors or stopped else "#06c")
        self.legend.value = " ".join(
            f"<span style='color:{method_color(m)};font-size:12px'>&#9632; {m}</span>" for m in self.runs)

    # ------------------------------------------------------------------ the two ways to run

    def run(self) -> dict[str, list[toy.Trajectory]]:
        """Compute the trajectories of the chosen methods from the chosen starts, in this thread."""
        self.wait()
        try:
            options = self.options()
        except ValueError as exc:
            self.status.value = status_html("error", str(exc), "#c00")
            return self.runs
        self.stop_event.clear()
        self.compute(options)
        return self.runs

    def start(self) -> None:
        """Compute in a background thread (the Compute button); Stop or :meth:`stop` ends it early."""
        if self.thread is not None and self.thread.is_alive():
            return
        try:
            options = self.options()
        except ValueError as exc:
            self.status.value = status_html("error", str(exc), "#c00")
            return
        self.stop_event.clear()
        self.compute_b.disabled, self.stop_b.disabled = True, False
        self.progress_w.value = 0.0
        self.status.value = status_html("computing", f"{options['steps']:,} steps …", "#0a5")
        self.thread = threading.Thread(target=self.compute, args=(options,), name=f"toy-{self.name}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Ask a background run to end where it is (it shows what it has)."""
        self.stop_event.set()
        if self.thread is not None and self.thread.is_alive():
            self.status.value = status_html("stopping", "… the paths end where they are", "#b36b00")

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background run has finished (for scripts and tests)."""
        if self.thread is not None:
            self.thread.join(timeout)

    # ------------------------------------------------------------------ view

    def draw(self) -> None:
        self.figure = toy.landscape_figure(self.runs, upto=int(self.step_w.value), pareto=self.pareto, grid=self.grid,
                                           fig=self.figure)
        self.image.value = to_png(self.figure)
        self.image.layout.max_width = f"{display_width(self.figure)}px"

    def summary(self) -> list[tuple[str, tuple[float, float], tuple[float, float], float]]:
        """``(method, start, end, mean loss at the end)`` per trajectory (rounded, for printing)."""
        out = []
        for method, paths in self.runs.items():
            for p in paths:
                end = tuple(round(v, 2) for v in p.end)
                out.append((method, p.start, end, round(float(p.losses[-1].mean()), 3)))
        return out

    def close(self) -> None:
        self.stop()
        self.wait(timeout=2.0)
        close_everything(self.widget)

    def __repr__(self) -> str:
        return f"ToyLandscape(methods={list(self.methods_w.value)}, starts={len(self.selected_starts())})"

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live view, its ``repr`` as text and a PNG of its last state (:func:`.common.view_bundle`)."""
        return view_bundle(self, self.widget, self.image.value, **kwargs)
