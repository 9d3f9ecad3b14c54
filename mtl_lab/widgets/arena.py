"""The gradient arena widget: set two or three task gradients, see every chosen method's update.

A thin view over :mod:`mtl_lab.arena` (which calls :func:`mtl_lab.weighting.aggregate`): sliders set each
gradient's angle and length, or a preset does ("aligned", "conflicting", "one dominates"); every change
redraws the arrows and the table of numbers — weights, ‖d‖ and each task's first-order loss change.
"""

from __future__ import annotations

import ipywidgets as W

from mtl_lab import arena
from mtl_lab.plots import to_png
from mtl_lab.weighting import available
from mtl_lab.widgets.common import close_tree, html_table, replace_previous, status_html

DEFAULT_METHODS = ("equal", "mgda", "pcgrad", "cagrad")


class GradientArena:
    """Sliders for the gradients, a method picker, the picture and the numbers (``arena.results``)."""

    def __init__(self, methods: tuple[str, ...] | list[str] = DEFAULT_METHODS, preset: str = "conflicting",
                 n_tasks: int = 2, lr: float = 1.0, name: str = "arena") -> None:
        names = [n for n, _ in available()]
        unknown = [m for m in methods if m not in names]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {names}")
        self.name = name
        self.results: list[arena.ArenaResult] = []
        self.G = None
        self.building = False
        wide = {"description_width": "initial"}
        self.methods_w = W.SelectMultiple(options=names, value=tuple(methods), description="methods", rows=8,
                                          style=wide)
        self.preset_w = W.Dropdown(options=["(sliders)", *arena.PRESETS], value=preset, description="preset",
                                   style=wide)
        self.tasks_w = W.ToggleButtons(options=[2, 3], value=n_tasks, description="tasks", style=wide)
        self.lr_w = W.FloatText(value=lr, description="step size lr", style=wide, layout=W.Layout(width="170px"))
        self.angle_w = [W.FloatSlider(value=0.0, min=0.0, max=360.0, step=1.0, description=f"angle g{t + 1}",
                                      style=wide, continuous_update=False) for t in range(3)]
        self.length_w = [W.FloatSlider(value=1.0, min=0.0, max=5.0, step=0.05, description=f"length g{t + 1}",
                                       style=wide, continuous_update=False) for t in range(3)]
        self.image = W.Image(format="png", layout=W.Layout(width="440px"))
        self.table = W.HTML()
        self.status = W.HTML()
        rows = [W.HBox([self.angle_w[t], self.length_w[t]]) for t in range(3)]
        self.slider_rows = rows
        controls = W.VBox([W.HBox([self.preset_w, self.tasks_w, self.lr_w]), *rows, self.methods_w, self.status])
        self.widget = W.VBox([W.HBox([controls, self.image]), self.table])
        self.figure = arena.arena_figure(arena.gradients_from_polar([0.0], [1.0]), [])
        self.apply_preset(preset)
        for w in [self.methods_w, self.tasks_w, self.lr_w, *self.angle_w, *self.length_w]:
            w.observe(lambda _: self.on_change(), names="value")
        self.preset_w.observe(lambda change: self.apply_preset(change["new"]), names="value")
        self.update()
        replace_previous(name, self)

    def apply_preset(self, name: str) -> None:
        if name not in arena.PRESETS:
            return
        self.building = True
        try:
            angles, lengths = arena.preset(name, 3)
            for t in range(3):
                self.angle_w[t].value = angles[t]
                self.length_w[t].value = lengths[t]
        finally:
            self.building = False
        self.update()

    def on_change(self) -> None:
        if self.building:
            return
        self.update()

    def set_gradients(self, angles: list[float], lengths: list[float]) -> None:
        """Set the sliders (2 or 3 tasks) and redraw."""
        self.building = True
        try:
            self.tasks_w.value = len(angles)
            for t, (a, r) in enumerate(zip(angles, lengths)):
                self.angle_w[t].value = a
                self.length_w[t].value = r
            self.preset_w.value = "(sliders)"
        finally:
            self.building = False
        self.update()

    def update(self) -> None:
        """Recompute every method's update and redraw (errors go to the status line)."""
        T = self.tasks_w.value
        self.slider_rows[2].layout.display = "flex" if T == 3 else "none"
        try:
            self.G = arena.gradients_from_polar([w.value for w in self.angle_w[:T]],
                                                [w.value for w in self.length_w[:T]])
            self.results = arena.combine_all(self.G, list(self.methods_w.value), lr=float(self.lr_w.value))
        except ValueError as exc:
            self.status.value = status_html("error", str(exc), "#c00")
            return
        tasks = [f"task {t + 1}" for t in range(T)]
        arena.arena_figure(self.G, self.results, tasks, fig=self.figure)
        self.image.value = to_png(self.figure, dpi=80)
        cos = arena.cosines(self.G)
        pairs = ", ".join(f"cos(g{i + 1}, g{j + 1}) = {cos[i][j]:+.2f}" for i in range(T) for j in range(i + 1, T))
        header = ["method", "‖d‖", *[f"w{t + 1}" for t in range(T)], *[f"ΔL{t + 1} ≈ −lr·g{t + 1}·d" for t in range(T)],
                  "note"]
        self.table.value = html_table(header, arena.results_table(self.results, tasks),
                                      f"{pairs} · ΔL < 0: the step lowers that task's loss")
        failed = [r for r in self.results if r.error]
        self.status.value = status_html("error", f"{failed[0].method}: {failed[0].error}", "#c00") if failed else ""

    def close(self) -> None:
        close_tree(self.widget)

    def __repr__(self) -> str:
        return f"GradientArena(methods={list(self.methods_w.value)}, tasks={self.tasks_w.value})"

    def _repr_mimebundle_(self, **kwargs) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle
