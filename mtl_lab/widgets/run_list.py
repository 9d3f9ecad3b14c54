"""The lab's kept runs: a list of finished (or kept mid-run) runs, each shown or hidden on the chart.

Every entry holds a run's validation curves (``x``: steps, ``val``: one list per task of the chart), its
label (method and weights), its method's colour and the run's id, so a run continued after Stop replaces its
own entry. :class:`RunList` owns the entries and their checkboxes; the chart draws the shown ones as faint
overlays (:attr:`mtl_lab.widgets.chart.LiveChart.pinned`).
"""

from __future__ import annotations

import ipywidgets as W

from mtl_lab.history import History
from mtl_lab.palette import method_color
from mtl_lab.training import Trainer


def run_label(history: History, trainer: Trainer) -> str:
    """The method and its last weights, e.g. ``static (a=1, b=0.5)``."""
    method = history.meta.get("method", {}).get("name", trainer.weighting.name)
    weights = history.weights[-1] if history.weights else []
    text = ", ".join(f"{t}={w:.3g}" for t, w in zip(trainer.task_names, weights))
    return f"{method} ({text})" if text else method


def run_entry(trainer: Trainer, tasks: list[str]) -> dict:
    """The run as it is now: its validation curves for ``tasks``, label, colour and identity."""
    history = trainer.history.snapshot()
    method = history.meta.get("method", {}).get("name", trainer.weighting.name)
    return {"label": run_label(history, trainer), "x": [e["step"] for e in history.epochs],
            "val": [[e.get("val_loss", {}).get(t) for e in history.epochs] for t in tasks],
            "color": method_color(method), "run": id(trainer), "hidden": False}


class RunList:
    """The kept runs (``pins``), one checkbox each in ``box``, and their overlays on ``chart``."""

    def __init__(self, box: W.Box, chart) -> None:
        self.box = box
        self.chart = chart
        self.pins: list[dict] = []
        self.checks: list[W.Checkbox] = []

    def keep(self, entry: dict) -> None:
        """Add ``entry``; an entry of the same run replaces its own (and keeps its shown/hidden state)."""
        same = [k for k, pin in enumerate(self.pins) if pin["run"] == entry["run"]]
        if same:
            entry["hidden"] = self.pins[same[0]]["hidden"]
            self.pins[same[0]] = entry
        else:
            self.pins.append(entry)
        self.show()

    def show(self) -> None:
        """The run list (a checkbox per kept run: shown or hidden) and the chart's overlays."""
        while len(self.checks) < len(self.pins):
            k = len(self.checks)
            check = W.Checkbox(value=True, indent=False, layout=W.Layout(width="auto"))
            check.observe(lambda change, k=k: self.set_hidden(k, not change["new"]), names="value")
            self.checks.append(check)
        for check in self.checks[len(self.pins):]:
            check.close()
        self.checks = self.checks[:len(self.pins)]
        for k, (check, pin) in enumerate(zip(self.checks, self.pins)):
            check.description = f"{k + 1}: {pin['label']}"
            check.style.text_color = pin["color"]
            check.value = not pin["hidden"]
        self.box.children = tuple(self.checks)
        self.chart.pinned = [dict(pin) for pin in self.pins]

    def set_hidden(self, k: int, hidden: bool) -> None:
        if k < len(self.pins) and self.pins[k]["hidden"] != hidden:
            self.pins[k]["hidden"] = hidden
            self.chart.pinned = [dict(pin) for pin in self.pins]

    def clear(self) -> None:
        self.pins = []
        self.show()
