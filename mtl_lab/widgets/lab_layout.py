"""The weight-tuning lab's layout: every control and where it sits — no behaviour (that is :mod:`lab`).

One screen, as a lecture needs it: a **control rail** (300 px) beside the **live chart** whenever the
width allows (≥ 812 px: a laptop at 1000 px with JupyterLab's file browser hidden, a projector at 1280 px),
stacked above it otherwise. The rail
puts first what is used during a run, so that at 1280×720 the weights, Train/Stop and the whole chart are
on screen together:

1. Train · Stop · Step (one step) · Epoch · Reset; progress; the status line;
2. task weights (log slider + exact value each) and what the method does with them;
3. method · pace and the method's one-line description; method options (typed inputs); the race
   (:mod:`mtl_lab.widgets.race`: method toggles, Race · Stop race, the racer the gradient panels show);
4. data set · architecture (with the architectures that do not fit and why); task switches; model
   options (typed inputs, *defaults* button); optimizer · learning rate (as typed) · epochs · batch ·
   device · seed · Δm baselines;
5. kept runs (a checkbox each: shown / hidden) · Keep run · Clear runs; projector mode.

Under the chart, once a run on pixel tasks ends: the prediction strip (:mod:`~mtl_lab.widgets.prediction_strip`).
Below: the metrics table and the *Share this set-up* box.
"""

from __future__ import annotations

import ipywidgets as W

from mtl_lab import data as datasets
from mtl_lab.training import OPTIMIZERS
from mtl_lab.weighting import available
from mtl_lab.widgets.chart import LiveChart
from mtl_lab.widgets.links import PRESETS
from mtl_lab.widgets.pace import PACES
from mtl_lab.widgets.prediction_strip import PredictionStrip

WIDE = {"description_width": "initial"}
DEVICE_SUGGESTIONS = ("auto", "cpu", "cuda", "cuda:0", "mps")


def wrap() -> W.Layout:
    """A new wrapping row layout (each box gets its own: a layout is a model that is closed with its box)."""
    return W.Layout(flex_flow="row wrap", align_items="center", width="100%")


def button() -> W.Layout:
    return W.Layout(width="auto", min_width="82px")


def row(children: list, label: str | None = None) -> W.Box:
    """A wrapping row of controls, under a bold heading when ``label`` is given."""
    box = W.HBox(list(children), layout=wrap())
    if label is None:
        return box
    return W.VBox([W.HTML(f"<b>{label}</b>", layout=W.Layout(margin="4px 0 0 0")), box], layout=W.Layout(width="100%"))


RAIL_WIDTH = "300px"
CHART_MIN_WIDTH = "500px"


class LabLayout:
    """The panel's widgets. Attributes are the controls; :attr:`widget` is the whole box."""

    def __init__(self) -> None:
        self.data_w = W.Dropdown(options=datasets.menu(), description="data", style=WIDE,
                                 layout=W.Layout(width="210px"))
        self.arch_w = W.Dropdown(options=[], description="architecture", style=WIDE, layout=W.Layout(width="230px"))
        self.method_w = W.Dropdown(options=[name for name, _ in available()], description="method", style=WIDE,
                                   layout=W.Layout(width="200px"))
        self.pace_w = W.Dropdown(options=list(PACES), description="pace", style=WIDE, layout=W.Layout(width="290px"),
                                 tooltip="a cap on steps per second for demos; full speed for real runs")
        self.method_help = W.HTML()
        self.arch_note = W.HTML()
        self.task_box = W.HBox(layout=wrap())
        self.option_box = W.HBox(layout=wrap())
        self.model_box = W.HBox(layout=wrap())
        self.model_reset_b = W.Button(description="defaults", icon="undo", tooltip="reset the model options",
                                      layout=W.Layout(width="100px"))
        self.weight_box = W.HBox(layout=wrap())
        self.weight_note = W.HTML()
        self.optimizer_w = W.Dropdown(options=list(OPTIMIZERS), description="optimizer", style=WIDE,
                                      layout=W.Layout(width="160px"))
        self.lr_w = W.FloatText(value=1e-3, description="lr", style=WIDE, layout=W.Layout(width="140px"))
        self.epochs_w = W.IntText(value=20, description="epochs", style=WIDE, layout=W.Layout(width="130px"))
        self.batch_w = W.IntText(value=64, description="batch", style=WIDE, layout=W.Layout(width="120px"))
        self.device_w = W.Combobox(options=list(DEVICE_SUGGESTIONS), ensure_option=False, description="device",
                                   style=WIDE, layout=W.Layout(width="150px"))
        self.seed_w = W.IntText(value=0, description="seed", style=WIDE, layout=W.Layout(width="120px"))
        self.baselines_w = W.Checkbox(value=True, description="Δm vs single-task baselines", indent=False,
                                      layout=W.Layout(width="auto"))
        self.train_b = W.Button(description="Train", button_style="success", icon="play", tooltip="train (continue)",
                                layout=button())
        self.stop_b = W.Button(description="Stop", button_style="danger", icon="stop", tooltip="stop after this step",
                               layout=button())
        self.step_b = W.Button(description="Step", icon="step-forward", tooltip="one optimisation step",
                               layout=button())
        self.epoch_b = W.Button(description="Epoch", icon="fast-forward", tooltip="train to the end of this epoch",
                                layout=button())
        self.reset_b = W.Button(description="Reset", icon="refresh", tooltip="forget the run", layout=button())
        self.pin_b = W.Button(description="Keep run", icon="thumb-tack",
                              tooltip="keep this run as it is now (finished and stopped runs are kept anyway)",
                              layout=button())
        self.unpin_b = W.Button(description="Clear runs", icon="eraser", tooltip="empty the list of kept runs",
                                layout=button())
        self.run_box = W.VBox(layout=W.Layout(width="100%"))
        self.race_box = W.VBox(layout=W.Layout(width="100%"))  # filled by the lab with its race control
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="280px"))
        self.status = W.HTML(layout=W.Layout(width="100%"))
        self.chart = LiveChart()
        self.strip = PredictionStrip()
        self.table = W.HTML()
        self.config_text = W.Textarea(layout=W.Layout(width="100%", height="150px"),
                                      placeholder="paste a config (JSON) here and press Load")
        self.export_b = W.Button(description="Export", icon="download", tooltip="write the set-up as JSON")
        self.load_b = W.Button(description="Load", icon="upload", tooltip="apply the JSON set-up")
        self.link_b = W.Button(description="Link", icon="link", tooltip="the set-up as a link for the classroom page")
        self.link_w = W.Text(layout=W.Layout(width="100%"), placeholder="press Link: ?setup=… (append it to the "
                             "classroom page's address)")
        share = W.VBox([W.HBox([self.export_b, self.load_b, self.link_b]), self.link_w, self.config_text])
        self.share = W.Accordion(children=[share], titles=("Share this set-up (JSON)",), selected_index=None)
        self.preset_w = W.Dropdown(options=[("scenario …", ""), *[(p.title, k) for k, p in PRESETS.items()]],
                                   value="", layout=W.Layout(width="280px"), tooltip="a set-up that teaches one thing")
        self.look_for = W.HTML()
        self.projector_w = W.ToggleButton(value=False, description="Projector", icon="television",
                                          tooltip="large type (16 px) and thick lines, for a room", layout=button())
        rail = W.VBox([
            row([self.train_b, self.stop_b, self.step_b, self.epoch_b, self.reset_b]),
            self.progress,
            self.status,
            row([self.weight_box], "weights"),
            self.weight_note,
            row([self.preset_w]),
            self.look_for,
            row([self.method_w, self.pace_w]),
            self.method_help,
            row([self.option_box], "method options"),
            self.race_box,
            row([self.data_w, self.arch_w]),
            self.arch_note,
            row([self.task_box], "tasks"),
            row([self.model_box, self.model_reset_b], "model options"),
            row([self.optimizer_w, self.lr_w, self.epochs_w, self.batch_w, self.device_w, self.seed_w,
                 self.baselines_w]),
            row([self.pin_b, self.unpin_b, self.projector_w], "kept runs"),
            self.run_box,
        ], layout=W.Layout(flex="0 0 " + RAIL_WIDTH, width=RAIL_WIDTH, max_width="100%", overflow="hidden"))
        rail.add_class("mtl-rail")
        chart_column = W.VBox([self.chart, self.strip.widget],
                              layout=W.Layout(flex="1 1 " + CHART_MIN_WIDTH, min_width="0", width="auto"))
        main = W.HBox([rail, chart_column], layout=W.Layout(flex_flow="row wrap", align_items="flex-start",
                                                             width="100%", grid_gap="0 12px"))
        self.widget = W.VBox([main, self.table, self.share], layout=W.Layout(width="100%"))
        self.widget.add_class("mtl-lab")

    def run_controls(self) -> list[W.Widget]:
        """The controls that define a run (locked while it trains; weights and pace stay live)."""
        return [self.data_w, self.arch_w, self.method_w, self.optimizer_w, self.lr_w, self.epochs_w, self.batch_w,
                self.device_w, self.seed_w, self.train_b, self.step_b, self.epoch_b, self.load_b, self.model_reset_b]
