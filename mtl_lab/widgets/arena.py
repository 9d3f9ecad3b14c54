"""The gradient arena widget: set two or three task gradients — drag their tips — and see every method's update.

A thin view over :mod:`mtl_lab.toy.arena` (which calls :func:`mtl_lab.weighting.aggregate`). The picture is
drawn in the browser (:class:`ArenaPicture`, ``static/arena.js``, plain SVG): drag the tip of a task's
arrow and every chosen method's update, the half-planes where a task's loss would rise and the table of
numbers (weights, ‖d‖, each task's first-order loss change) follow while you drag. Sliders set each
gradient's angle and length exactly, or a preset does ("aligned", "conflicting", "one dominates").
Colours: tasks in their task colours, methods in their method colours (:mod:`mtl_lab.palette`).
"""

from __future__ import annotations

import math

import anywidget
import ipywidgets as W
import torch
import traitlets

from mtl_lab.palette import method_color, task_colors
from mtl_lab.plots import to_png
from mtl_lab.toy import arena
from mtl_lab.weighting import available
from mtl_lab.widgets.chart import STATIC
from mtl_lab.widgets.common import close_tree, html_table, replace_previous, status_html, view_bundle
from mtl_lab.widgets.inputs import MethodToggles

DEFAULT_METHODS = ("equal", "mgda", "pcgrad", "cagrad")


class ArenaPicture(anywidget.AnyWidget):
    """The arena's picture. ``gradients`` (T × 2) is written by the browser while a tip is dragged."""

    _esm = (STATIC / "arena.js").read_text()
    gradients = traitlets.List(traitlets.List(traitlets.Float())).tag(sync=True)
    arrows = traitlets.List(traitlets.Dict()).tag(sync=True)
    task_colors = traitlets.List(traitlets.Unicode()).tag(sync=True)
    task_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    extent = traitlets.Float(2.0).tag(sync=True)

    def __repr__(self) -> str:
        return f"ArenaPicture(tasks={len(self.gradients)})"


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
        self.methods_w = MethodToggles(names, tuple(methods))
        self.preset_w = W.Dropdown(options=["(sliders)", *arena.PRESETS], value=preset, description="preset",
                                   style=wide)
        self.tasks_w = W.ToggleButtons(options=[2, 3], value=n_tasks, description="tasks", style=wide)
        self.lr_w = W.FloatText(value=lr, description="step size lr", style=wide, layout=W.Layout(width="170px"))
        self.angle_w = [W.FloatSlider(value=0.0, min=0.0, max=360.0, step=1.0, description=f"angle g{t + 1}",
                                      style=wide, continuous_update=False) for t in range(3)]
        self.length_w = [W.FloatSlider(value=1.0, min=0.0, max=5.0, step=0.05, description=f"length g{t + 1}",
                                       style=wide, continuous_update=False) for t in range(3)]
        self.picture = ArenaPicture(layout=W.Layout(width="100%", max_width="460px", min_width="280px",
                                                    flex="1 1 320px"))
        self.table = W.HTML()
        self.status = W.HTML()
        rows = [W.HBox([self.angle_w[t], self.length_w[t]], layout=W.Layout(flex_flow="row wrap")) for t in range(3)]
        self.slider_rows = rows
        controls = W.VBox([W.HBox([self.preset_w, self.tasks_w, self.lr_w], layout=W.Layout(flex_flow="row wrap")),
                           *rows, W.HTML("<b>methods</b> (click to add or remove)"), self.methods_w, self.status],
                          layout=W.Layout(flex="1 1 420px", min_width="0"))
        self.widget = W.VBox([W.HBox([controls, self.picture], layout=W.Layout(flex_flow="row wrap", width="100%")),
                              self.table])
        self.widget.add_class("mtl-arena")
        self.apply_preset(preset)
        for w in [self.methods_w, self.tasks_w, self.lr_w, *self.angle_w, *self.length_w]:
            w.observe(lambda _: self.on_change(), names="value")
        self.preset_w.observe(lambda change: self.apply_preset(change["new"]), names="value")
        self.picture.observe(lambda _: self.on_drag(), names="gradients")
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

    def on_drag(self) -> None:
        """A tip was dragged in the browser: the sliders follow (silently), then everything is recomputed."""
        if self.building:
            return
        self.building = True
        try:
            for t, (x, y) in enumerate(self.picture.gradients[:3]):
                self.angle_w[t].value = round(math.degrees(math.atan2(y, x)) % 360.0, 1)
                self.length_w[t].value = min(round(math.hypot(x, y), 3), self.length_w[t].max)
            if self.preset_w.value != "(sliders)":
                self.preset_w.value = "(sliders)"
        finally:
            self.building = False
        self.update(from_picture=True)

    def update(self, from_picture: bool = False) -> None:
        """Recompute every method's update and redraw (errors go to the status line).

        After a drag the gradients are exactly where the pointer left them (the sliders show them rounded);
        otherwise they come from the sliders, and the picture's scale fits them.
        """
        T = self.tasks_w.value
        self.slider_rows[2].layout.display = "flex" if T == 3 else "none"
        try:
            if from_picture:
                self.G = torch.tensor(self.picture.gradients[:T], dtype=torch.float64)
            else:
                self.G = arena.gradients_from_polar([w.value for w in self.angle_w[:T]],
                                                    [w.value for w in self.length_w[:T]])
            self.results = arena.combine_all(self.G, list(self.methods_w.value), lr=float(self.lr_w.value))
        except ValueError as exc:
            self.status.value = status_html("error", str(exc), "#c00")
            return
        tasks = [f"task {t + 1}" for t in range(T)]
        arrows = [{"method": r.method, "color": method_color(r.method), "d": None if r.error else list(r.direction)}
                  for r in self.results]
        building, self.building = self.building, True  # the picture's own change is not a drag
        with self.picture.hold_sync():
            if not from_picture:
                longest = max([float(g.norm()) for g in self.G] + [r.norm for r in self.results if not r.error])
                self.picture.extent = max(1.0, 1.25 * longest)
                self.picture.gradients = [[float(v) for v in g] for g in self.G]
            self.picture.task_colors = task_colors(T)
            self.picture.task_names = tasks
            self.picture.arrows = arrows
        self.building = building
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
        """The live view, its ``repr`` as text and a PNG of its last state (:func:`.common.view_bundle`)."""
        figure = arena.arena_figure(self.G, self.results, list(self.picture.task_names) or None)
        return view_bundle(self, self.widget, to_png(figure), **kwargs)
