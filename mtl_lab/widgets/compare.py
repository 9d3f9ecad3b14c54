"""Run comparison: overlay the Histories of several runs (any mix of methods and architectures).

A thin view over :func:`mtl_lab.plots.comparison_figure`: add runs with :meth:`RunComparison.add`
(a History), :meth:`RunComparison.add_lab` (the lab's current run) or :meth:`RunComparison.load`
(a ``history.json`` written by ``mtl-lab run``); tick which to show. Runs must share their tasks.
"""

from __future__ import annotations

import math
from pathlib import Path

import ipywidgets as W

from mtl_lab.history import History, load_runs
from mtl_lab.plots import comparison_figure, display_width, to_png
from mtl_lab.widgets.common import close_tree, html_table, replace_previous, status_html


class RunComparison:
    """A list of runs with checkboxes, the overlaid validation curves and a table of test metrics."""

    def __init__(self, runs: dict[str, History] | None = None, name: str = "compare") -> None:
        self.name = name
        self.runs: dict[str, History] = {}
        self.checks: dict[str, W.Checkbox] = {}
        self.check_box = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.status = W.HTML()
        self.image = W.Image(format="png", layout=W.Layout(width="100%", height="auto"))
        self.table = W.HTML()
        self.widget = W.VBox([W.HBox([W.HTML("<b>runs</b>&nbsp;"), self.check_box]), self.status, self.image,
                              self.table])
        for label, history in (runs or {}).items():
            self.add(label, history, draw=False)
        self.draw()
        replace_previous(name, self)

    def add(self, label: str, history: History, draw: bool = True) -> None:
        """Add (or replace) a run under ``label``."""
        self.runs[label] = history.snapshot()
        if label not in self.checks:
            box = W.Checkbox(value=True, description=label, indent=False, layout=W.Layout(width="auto"))
            box.observe(lambda _: self.draw(), names="value")
            self.checks[label] = box
            self.check_box.children = list(self.checks.values())
        if draw:
            self.draw()

    def add_lab(self, lab, label: str | None = None) -> str:
        """Add the lab's current run; the label defaults to its method and architecture."""
        if lab.trainer is None:
            raise ValueError("the lab has no run yet: train it first")
        history = lab.trainer.history
        label = label or f"{history.meta['method']['name']} · {history.meta['model']['architecture']}"
        self.add(label, history)
        return label

    def load(self, path: str | Path, prefix: str = "") -> list[str]:
        """Add every run of a ``history.json`` report file; returns their labels."""
        labels = []
        for label, history in load_runs(path).items():
            self.add(prefix + label, history, draw=False)
            labels.append(prefix + label)
        self.draw()
        return labels

    def chosen(self) -> dict[str, History]:
        return {label: h for label, h in self.runs.items() if self.checks[label].value}

    def draw(self) -> None:
        runs = self.chosen()
        if not runs:
            self.status.value = status_html("empty", "add runs with add(label, history) or add_lab(lab)", "#555")
            self.image.value = b""
            self.table.value = ""
            return
        try:
            figure = comparison_figure(runs)
        except ValueError as exc:
            self.status.value = status_html("error", str(exc), "#c00")
            return
        self.image.value = to_png(figure)
        self.image.layout.max_width = f"{display_width(figure)}px"
        tasks = next(iter(runs.values())).task_names
        rows = [[label, *[f"{h.meta.get('test_metrics', {}).get(t, math.nan):.4f}" for t in tasks],
                 h.meta.get("model", {}).get("architecture", "?"), h.status] for label, h in runs.items()]
        self.table.value = html_table(["run", *tasks, "architecture", "status"], rows, "test metrics")
        self.status.value = ""

    def close(self) -> None:
        close_tree(self.widget)

    def __repr__(self) -> str:
        return f"RunComparison(runs={list(self.runs)})"

    def _repr_mimebundle_(self, **kwargs) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle
