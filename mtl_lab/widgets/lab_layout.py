"""The weight-tuning lab's layout: every control and where it sits — no behaviour (that is :mod:`lab`).

Rows, top to bottom, each wrapping at narrow widths (a laptop at 1000 px shows every control):

1. data set · architecture · method · pace;
2. the method's one-line description; architectures that do not fit the data, with the reason;
3. task switches; 4. method options (typed inputs); 5. model options (typed inputs, *defaults* button);
6. task weights (log slider + exact value each); 7. optimizer · learning rate (as typed) · epochs ·
   batch · device · seed · Δm baselines;
8. Train · Stop · Step (one step) · Epoch · Reset · Pin run · Clear pins · progress; 9. the status line;
then the live chart (:class:`~mtl_lab.widgets.chart.LiveChart`), the metrics table, and the
*Share this set-up* box.
"""

from __future__ import annotations

import ipywidgets as W

from mtl_lab import data as datasets
from mtl_lab.train import OPTIMIZERS
from mtl_lab.weighting import available
from mtl_lab.widgets.chart import LiveChart
from mtl_lab.widgets.pace import PACES

WIDE = {"description_width": "initial"}
DEVICE_SUGGESTIONS = ("auto", "cpu", "cuda", "cuda:0", "mps")


def wrap() -> W.Layout:
    """A new wrapping row layout (each box gets its own: a layout is a model that is closed with its box)."""
    return W.Layout(flex_flow="row wrap", align_items="center", width="100%")


def button() -> W.Layout:
    return W.Layout(width="auto", min_width="82px")


def row(children: list, label: str | None = None) -> W.HBox:
    head = [W.HTML(f"<b>{label}</b>", layout=W.Layout(width="118px", min_width="118px"))] if label else []
    return W.HBox(head + list(children), layout=wrap())


class LabLayout:
    """The panel's widgets. Attributes are the controls; :attr:`widget` is the whole box."""

    def __init__(self) -> None:
        self.data_w = W.Dropdown(options=list(datasets.DATASETS), description="data", style=WIDE,
                                 layout=W.Layout(width="210px"))
        self.arch_w = W.Dropdown(options=[], description="architecture", style=WIDE, layout=W.Layout(width="230px"))
        self.method_w = W.Dropdown(options=[name for name, _ in available()], description="method", style=WIDE,
                                   layout=W.Layout(width="210px"))
        self.pace_w = W.Dropdown(options=list(PACES), description="pace", style=WIDE, layout=W.Layout(width="240px"),
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
        self.pin_b = W.Button(description="Pin run", icon="thumb-tack",
                              tooltip="keep this run's validation curves as a faint overlay", layout=button())
        self.unpin_b = W.Button(description="Clear pins", icon="eraser", tooltip="remove the pinned overlays",
                                layout=button())
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="160px"))
        self.status = W.HTML(layout=W.Layout(width="100%"))
        self.chart = LiveChart()
        self.table = W.HTML()
        self.config_text = W.Textarea(layout=W.Layout(width="100%", height="150px"),
                                      placeholder="paste a config (JSON) here and press Load")
        self.export_b = W.Button(description="Export", icon="download", tooltip="write the set-up as JSON")
        self.load_b = W.Button(description="Load", icon="upload", tooltip="apply the JSON set-up")
        share = W.VBox([W.HBox([self.export_b, self.load_b]), self.config_text])
        self.share = W.Accordion(children=[share], titles=("Share this set-up (JSON)",), selected_index=None)
        controls = W.VBox([
            row([self.data_w, self.arch_w, self.method_w, self.pace_w]),
            self.method_help,
            self.arch_note,
            row([self.task_box], "tasks"),
            row([self.option_box], "method options"),
            row([self.model_box, self.model_reset_b], "model options"),
            row([self.weight_box], "weights"),
            self.weight_note,
            row([self.optimizer_w, self.lr_w, self.epochs_w, self.batch_w, self.device_w, self.seed_w,
                 self.baselines_w]),
            row([self.train_b, self.stop_b, self.step_b, self.epoch_b, self.reset_b, self.pin_b, self.unpin_b,
                 self.progress]),
            self.status,
        ], layout=W.Layout(width="100%"))
        self.widget = W.VBox([controls, self.chart, self.table, self.share], layout=W.Layout(width="100%"))
        self.widget.add_class("mtl-lab")

    def run_controls(self) -> list[W.Widget]:
        """The controls that define a run (locked while it trains; weights and pace stay live)."""
        return [self.data_w, self.arch_w, self.method_w, self.optimizer_w, self.lr_w, self.epochs_w, self.batch_w,
                self.device_w, self.seed_w, self.train_b, self.step_b, self.epoch_b, self.load_b, self.model_reset_b]
