"""The Pareto explorer: drag a preference and watch one trained model move along its trade-off front.

A thin view over a preference-conditioned model (:mod:`mtl_lab.models.preference_conditioned`, trained once
for every preference by :func:`mtl_lab.studies.pareto_set.build_pareto_set_trainer`). The picture is drawn in
the browser (:class:`ExplorerPicture`, ``static/pareto_explorer.js``, plain SVG): drag the dot on the
preference segment (2 tasks) or in the triangle (3 tasks); the browser sends the new preference at most once
per animation frame, Python runs the model at it — forward passes only, no training — and the per-task
validation metrics, the model's point in the trade-off plane (beside the sweep's points and the learned
front over a grid of preferences) and a few predictions follow. :meth:`ParetoExplorer.set_preference` does
the same from code.
"""

from __future__ import annotations

import html

import anywidget
import ipywidgets as W
import torch
import traitlets

from mtl_lab.data.base import MultiTaskData
from mtl_lab.models.preference import check_preference
from mtl_lab.palette import method_color, task_colors
from mtl_lab.plots import to_png
from mtl_lab.studies.pareto_set import PARETO_SET_MODELS, PreferenceModel, learned_front, learned_front_figure
from mtl_lab.studies.sweep import SweepResult, ratio_grid, simplex_grid
from mtl_lab.training.evaluation import evaluate_split
from mtl_lab.widgets.chart import STATIC
from mtl_lab.widgets.common import close_tree, html_table, replace_previous, status_html, view_bundle

ACCENT = method_color("cosmos_sampled")


class ExplorerPicture(anywidget.AnyWidget):
    """The explorer's picture. ``preference`` is written by the browser while the dot is dragged."""

    _esm = (STATIC / "pareto_explorer.js").read_text()
    preference = traitlets.List(traitlets.Float()).tag(sync=True)
    task_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    task_colors = traitlets.List(traitlets.Unicode()).tag(sync=True)
    axis_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    extent = traitlets.List(traitlets.Float(), [0.0, 1.0, 0.0, 1.0]).tag(sync=True)
    sweep_points = traitlets.List(traitlets.List(traitlets.Float())).tag(sync=True)
    learned_curve = traitlets.List(traitlets.List(traitlets.Float())).tag(sync=True)
    current = traitlets.List(traitlets.Float()).tag(sync=True)
    metrics = traitlets.List(traitlets.Unicode()).tag(sync=True)
    accent = traitlets.Unicode(ACCENT).tag(sync=True)

    def __repr__(self) -> str:
        return f"ExplorerPicture(tasks={len(self.task_names)})"


def curve_grid(n_tasks: int) -> list[list[float]]:
    """The preferences the learned front is traced over: 21 log-spaced ratios (2 tasks) or a simplex grid."""
    return ratio_grid(21, 100.0) if n_tasks == 2 else simplex_grid(n_tasks, 8)


def padded(values: list[float]) -> tuple[float, float]:
    """The range of ``values`` with 8 % to spare on each side (not below 0 when no value is: errors, accuracies)."""
    low, high = min(values), max(values)
    span = high - low if high > low else max(abs(high), 1.0)
    bottom = low - 0.08 * span
    return (max(bottom, 0.0) if low >= 0 else bottom), high + 0.08 * span


def prediction_text(task, output: torch.Tensor) -> str:
    """One row's prediction as a learner reads it: the class for classification, the value for regression."""
    if task.kind == "multiclass":
        return str(int(output.argmax()))
    if task.kind == "binary":
        return str(int(output.reshape(-1)[0] > 0))
    values = output.reshape(-1)
    return f"{float(values[0]):.3f}" + (" …" if values.numel() > 1 else "")


def target_text(task, target: torch.Tensor) -> str:
    """One row's target: the class for classification, the value for regression."""
    values = target.reshape(-1)
    if task.kind in ("multiclass", "binary"):
        return str(int(values[0]))
    return f"{float(values[0]):.3f}" + (" …" if values.numel() > 1 else "")


class ParetoExplorer:
    """The preference picture, the trade-off plane and a table of metrics and predictions.

    Args:
        model: a trained preference-conditioned model or Pareto hypernetwork (:mod:`mtl_lab.studies.pareto_set`).
        data: its data set (the metrics are those of ``split``).
        sweep: a :class:`SweepResult` whose static points are drawn beside the model's (optional).
        preference: the starting preference (default: the centre of the simplex).
        pair: the two tasks on the trade-off plane's axes (default: the first two).
        rows: how many ``split`` rows' predictions are shown.
    """

    def __init__(self, model: PreferenceModel, data: MultiTaskData, sweep: SweepResult | None = None,
                 preference: list[float] | None = None, pair: tuple[str, str] | None = None, split: str = "val",
                 rows: int = 4, name: str = "pareto_explorer") -> None:
        kinds = tuple(PARETO_SET_MODELS.values())
        if not isinstance(model, kinds):
            names = ", ".join(k.__name__ for k in kinds)
            raise ValueError(f"the explorer needs a model that reads a preference ({names}), "
                             f"got {type(model).__name__}")
        if model.task_names != data.task_names:
            raise ValueError(f"the model's tasks {model.task_names} differ from the data's tasks {data.task_names}")
        names = data.task_names
        pair = tuple(pair) if pair is not None else (names[0], names[1])
        unknown = [t for t in pair if t not in names]
        if len(pair) != 2 or unknown or pair[0] == pair[1]:
            raise ValueError(f"pair must name two different tasks of {names}, got {list(pair)}")
        self.name = name
        self.model, self.data, self.sweep, self.split = model.eval(), data, sweep, split
        self.pair = pair
        self.tasks = list(data.tasks)
        rows_x = getattr(data, split).x[:rows]
        self.rows_x = rows_x
        self.rows_y = {t: getattr(data, split).y[t][:rows] for t in names}
        self.point: dict[str, float] = {}
        self.busy = False
        curve = learned_front(model, data, curve_grid(len(names)), split)
        self.curve = curve
        sweep_metrics = [p.metrics for p in sweep.static] if sweep is not None else []
        on_plane = [[m[pair[0]], m[pair[1]]] for m in curve + sweep_metrics]
        up = {t.name: t.higher_is_better for t in data.tasks}
        arrows = {True: "↑", False: "↓"}
        metric = {t.name: t.metric_name for t in data.tasks}
        start = check_preference(preference if preference is not None else [1.0] * len(names), len(names))
        self.picture = ExplorerPicture(layout=W.Layout(width="100%", max_width="760px", min_width="320px"))
        with self.picture.hold_sync():
            self.picture.task_names = list(names)
            self.picture.task_colors = task_colors(len(names))
            self.picture.axis_labels = [f"{t}: {split} {metric[t]} {arrows[up[t]]}" for t in pair]
            self.picture.extent = [*padded([p[0] for p in on_plane]), *padded([p[1] for p in on_plane])]
            self.picture.sweep_points = [[m[pair[0]], m[pair[1]]] for m in sweep_metrics]
            self.picture.learned_curve = [[m[pair[0]], m[pair[1]]] for m in curve]
            self.picture.preference = [round(v, 6) for v in start.tolist()]
        self.table = W.HTML()
        self.status = W.HTML()
        self.widget = W.VBox([self.picture, self.status, self.table])
        self.widget.add_class("mtl-explorer")
        self.picture.observe(lambda _: self.update(), names="preference")
        self.update()
        replace_previous(name, self)

    def set_preference(self, preference: list[float]) -> None:
        """Move the model to ``preference`` (one number ≥ 0 per task, not all 0; normalised) and redraw."""
        r = check_preference(preference, len(self.data.task_names))
        self.picture.preference = [round(v, 6) for v in r.tolist()]

    def update(self) -> None:
        """Run the model at the picture's preference (forward passes only) and redraw what depends on it."""
        try:
            r = check_preference(list(self.picture.preference), len(self.data.task_names))
        except ValueError as exc:
            self.status.value = status_html("error", str(exc), "#c00")
            return
        self.status.value = ""
        self.model.set_preference(r.tolist())  # the model stays at the shown preference
        self.point = evaluate_split(self.model, self.data, self.tasks, self.split)[1]
        with torch.no_grad():
            outputs = self.model(self.rows_x)
        names = self.data.task_names
        lines = [f"{t}: {self.point[t]:.4f}" for t in names]
        with self.picture.hold_sync():
            self.picture.metrics = lines
            self.picture.current = [self.point[self.pair[0]], self.point[self.pair[1]]]
        header = ["row", *[f"{t} true" for t in names], *[f"{t} predicted" for t in names]]
        rows = []
        for i in range(self.rows_x.shape[0]):
            truth = [target_text(task, self.rows_y[task.name][i]) for task in self.tasks]
            guess = [prediction_text(task, outputs[task.name][i]) for task in self.tasks]
            rows.append([str(i), *truth, *guess])
        shown = ", ".join(f"{v:.2f}" for v in r.tolist())
        caption = (f"preference r = ({shown}) · {self.split} metrics: "
                   + ", ".join(f"{t.name} {t.metric_name} {self.point[t.name]:.4f}" for t in self.tasks))
        self.table.value = f"<div style='font-size:12px'>{html.escape(caption)}</div>" + html_table(header, rows)

    def close(self) -> None:
        close_tree(self.widget)

    def __repr__(self) -> str:
        shown = ", ".join(f"{v:.2f}" for v in self.picture.preference)
        return f"ParetoExplorer(tasks={self.data.task_names}, preference=[{shown}])"

    def figure(self):
        """The trade-off plane as a static figure (:func:`~mtl_lab.studies.pareto_set.learned_front_figure`)."""
        metric = {t.name: f"{self.split} {t.metric_name}" for t in self.tasks}
        return learned_front_figure(self.curve, self.sweep, self.pair, self.point, metric)

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live view, its ``repr`` as text and a PNG of its last state (:func:`.common.view_bundle`)."""
        return view_bundle(self, self.widget, to_png(self.figure(), dpi=80), **kwargs)
