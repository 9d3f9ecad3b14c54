"""The toy landscape widget: CAGrad's two-task toy problem, the Pareto set, and method trajectories.

A thin view over :mod:`mtl_lab.toy`: pick methods and starting points, press Compute (or call
:meth:`ToyLandscape.run`), then drag the step slider to replay the runs over the contours of ``L1``,
``L2`` and their mean.
"""

from __future__ import annotations

import ipywidgets as W

from mtl_lab import toy
from mtl_lab.plots import to_png
from mtl_lab.weighting import available
from mtl_lab.widgets.common import close_tree, replace_previous, status_html

DEFAULT_METHODS = ("equal", "mgda", "pcgrad", "cagrad")
STARTS = {f"({a:g}, {b:g})": (a, b) for a, b in (*toy.PAPER_STARTS, *toy.MORE_STARTS)}


class ToyLandscape:
    """Contours, Pareto set, and a step slider over the trajectories (``landscape.runs``)."""

    def __init__(self, methods: tuple[str, ...] | list[str] = DEFAULT_METHODS, steps: int = 1000, lr: float = 0.05,
                 starts: tuple[tuple[float, float], ...] = toy.PAPER_STARTS, name: str = "landscape") -> None:
        names = [n for n, _ in available()]
        unknown = [m for m in methods if m not in names]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {names}")
        self.name = name
        self.runs: dict[str, list[toy.Trajectory]] = {}
        self.grid = toy.loss_grid(160)
        self.pareto = toy.pareto_set()
        wide = {"description_width": "initial"}
        self.methods_w = W.SelectMultiple(options=names, value=tuple(methods), description="methods", rows=6,
                                          style=wide)
        labels = {f"({a:g}, {b:g})" for a, b in starts}
        self.start_w = {label: W.Checkbox(value=label in labels, description=label, indent=False,
                                          layout=W.Layout(width="auto")) for label in STARTS}
        self.steps_w = W.BoundedIntText(value=steps, min=1, max=200_000, description="steps", style=wide,
                                        layout=W.Layout(width="150px"))
        self.lr_w = W.FloatLogSlider(value=lr, base=10, min=-4, max=0, step=0.1, description="lr (Adam)",
                                     readout_format=".0e", style=wide)
        self.compute_b = W.Button(description="Compute", button_style="primary", icon="play")
        self.step_w = W.IntSlider(value=0, min=0, max=1, description="show step", style=wide,
                                  continuous_update=False, layout=W.Layout(width="520px"))
        self.status = W.HTML()
        self.image = W.Image(format="png", layout=W.Layout(width="100%", max_width="1000px"))
        self.compute_b.on_click(lambda _: self.run())
        self.step_w.observe(lambda _: self.draw(), names="value")
        controls = W.VBox([
            W.HBox([self.methods_w, W.VBox([W.HTML("<b>starting points</b>"), *self.start_w.values()])]),
            W.HBox([self.steps_w, self.lr_w, self.compute_b]),
            self.step_w,
            self.status,
        ])
        self.widget = W.VBox([controls, self.image])
        self.figure = toy.landscape_figure(None, pareto=self.pareto, grid=self.grid)
        self.image.value = to_png(self.figure, dpi=72)
        replace_previous(name, self)

    def selected_starts(self) -> tuple[tuple[float, float], ...]:
        return tuple(STARTS[label] for label, box in self.start_w.items() if box.value)

    def run(self) -> dict[str, list[toy.Trajectory]]:
        """Compute the trajectories of the chosen methods from the chosen starts (synchronously)."""
        starts = self.selected_starts()
        if not starts:
            self.status.value = status_html("error", "choose at least one starting point", "#c00")
            return self.runs
        self.status.value = status_html("computing", "…", "#0a5")
        try:
            self.runs = toy.trajectories(list(self.methods_w.value), starts, steps=int(self.steps_w.value),
                                         lr=float(self.lr_w.value))
        except ValueError as exc:
            self.status.value = status_html("error", str(exc), "#c00")
            return self.runs
        errors = [p.error for paths in self.runs.values() for p in paths if p.error]
        self.step_w.max = int(self.steps_w.value)
        self.step_w.value = int(self.steps_w.value)
        self.draw()
        text = f"{len(self.runs)} method(s) × {len(starts)} start(s), {self.steps_w.value} steps"
        self.status.value = status_html("done", text + (f" · {errors[0]}" if errors else ""),
                                        "#b36b00" if errors else "#06c")
        return self.runs

    def draw(self) -> None:
        toy.landscape_figure(self.runs, upto=int(self.step_w.value), pareto=self.pareto, grid=self.grid,
                             fig=self.figure)
        self.image.value = to_png(self.figure, dpi=72)

    def summary(self) -> list[tuple[str, tuple[float, float], tuple[float, float], float]]:
        """``(method, start, end, mean loss at the end)`` per trajectory (rounded, for printing)."""
        out = []
        for method, paths in self.runs.items():
            for p in paths:
                end = tuple(round(v, 2) for v in p.end)
                out.append((method, p.start, end, round(float(p.losses[-1].mean()), 3)))
        return out

    def close(self) -> None:
        close_tree(self.widget)

    def __repr__(self) -> str:
        return f"ToyLandscape(methods={list(self.methods_w.value)}, starts={len(self.selected_starts())})"

    def _repr_mimebundle_(self, **kwargs) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle
