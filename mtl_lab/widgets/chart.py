"""Where the lab's live chart is drawn: a small anywidget view over uPlot, drawn in the browser from data.

Side by side, as in :func:`mtl_lab.plots.signature_figure`: on the left the per-task losses (train,
smoothed; validation as dots; pinned earlier runs as faint lines) and the effective weights; on the
right each task's share of the update (stacked), the pairwise gradient cosines as a heat strip (orange =
conflict — a form that cannot be mistaken for a task) and the gradient norms. Vertical dashed markers
show where a weight or option changed during the run. Empty axes and the task legend show before the
first run. Each task has its colour *and* its dash (:mod:`mtl_lab.palette`); kept runs are drawn faint in
their method's colour with the same task dashes. In a race (``racers``: one ``{label, color}`` per method,
:mod:`mtl_lab.widgets.race`) the loss and weight panels draw one line per method and task — the method's
colour, the task's dash — and the gradient panels show one racer (named in the title).
``projector = True`` enlarges type (16 px) and lines; the *⤓ PNG* button saves the chart as it is on screen.

What runs where:

* The kernel sends **rows of numbers** (:mod:`mtl_lab.widgets.transport` decides what and when); the
  browser keeps them and redraws at most once per animation frame (``static/live_chart.js``). Nothing is
  rendered in Python, so drawing costs the training thread nothing.
* The chart library is uPlot 1.6.32 (MIT licence, ``static/uPlot.LICENSE``), vendored from the npm
  registry into ``static/`` — nothing is loaded from the network at run time (classrooms are often
  offline). The traits below are the chart's settings; the rows travel as binary custom messages.

Headless (nbval, scripts, the CLI) the widget is an ordinary model with no view: messages go nowhere,
and its ``repr`` is short and stable.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import traitlets

from mtl_lab.palette import ALIGNED, CONFLICT, COSINE_ZERO, task_color, task_dash

STATIC = Path(__file__).parent / "static"
COSINE_PALETTE = {"negative": CONFLICT, "zero": COSINE_ZERO, "positive": ALIGNED}


def bundle() -> str:
    """The view's ES module: the vendored uPlot build (it defines ``uPlot``), then the chart code."""
    return (STATIC / "uPlot.iife.min.js").read_text() + "\n" + (STATIC / "live_chart.js").read_text()


class LiveChart(anywidget.AnyWidget):
    """The browser-drawn chart. Data arrive through :class:`mtl_lab.widgets.transport.ChartFeed`."""

    _esm = bundle()
    _css = "\n".join((STATIC / name).read_text() for name in ("uPlot.min.css", "live_chart.css", "lab.css"))

    tasks = traitlets.List(traitlets.Unicode()).tag(sync=True)
    colors = traitlets.List(traitlets.Unicode()).tag(sync=True)
    dashes = traitlets.List(traitlets.List(traitlets.Float())).tag(sync=True)
    projector = traitlets.Bool(False).tag(sync=True)
    palette = traitlets.Dict(COSINE_PALETTE).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)
    planned_steps = traitlets.Int(0).tag(sync=True)
    markers = traitlets.List(traitlets.Dict()).tag(sync=True)
    pinned = traitlets.List(traitlets.Dict()).tag(sync=True)
    racers = traitlets.List(traitlets.Dict()).tag(sync=True)  # a race: [{label, color}], one per method

    # the data set's tasks in order (set by the lab with its task switches): a task's colour and dash follow
    # its place there, so switching a task off changes no other task's colour (the weight swatches agree)
    task_order = traitlets.List(traitlets.Unicode())

    def set_tasks(self, task_names: list[str]) -> None:
        """The tasks whose curves the chart shows; each gets the colour and dash of its place in
        :attr:`task_order` (:mod:`mtl_lab.palette`), or of its place in ``task_names`` when not there."""
        order = list(self.task_order)
        places = [order.index(t) if t in order else i for i, t in enumerate(task_names)]
        with self.hold_sync():
            self.tasks = list(task_names)
            self.colors = [task_color(p) for p in places]
            self.dashes = [list(task_dash(p)) for p in places]

    def __repr__(self) -> str:
        return f"LiveChart(tasks={list(self.tasks)!r})"
