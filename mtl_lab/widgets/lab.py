"""The weight-tuning lab's controller: its state and what each control does.

The panel is three files, so a reader finds each part in one place:

* :mod:`mtl_lab.widgets.lab_layout` — every control and where it sits (no behaviour);
* this module — the state (trainer, run, pinned runs) and the events (Train, Stop, sliders …);
* :mod:`mtl_lab.widgets.chart` — where the live chart is drawn (in the browser, from data), fed by
  :mod:`mtl_lab.widgets.transport`; :mod:`mtl_lab.widgets.pace` caps steps per second for lectures.

How it runs:

* **Train** starts :meth:`mtl_lab.training.Trainer.start` — the loop runs in a background thread and the
  kernel stays free for clicks. The chart feed's own thread sends new rows to the browser ≤ 10×/s; the
  training thread only updates the status line (≤ 4×/s) and keeps the pace.
  Train after Stop continues the same run when the settings are unchanged; otherwise it starts anew.
* **Stop** asks the loop to stop after the current step (and any baseline being trained).
* **Step** takes one optimisation step, **Epoch** trains up to the end of the current epoch; both then
  pause. **Reset** stops and forgets the run.
* **Every run is kept**: when a run completes or is stopped, its validation curves join the run list
  (method and weights in the label) and stay on the chart as a faint overlay in the method's colour, so a
  switch of method never loses the comparison. A run continued after Stop replaces its own entry. Each
  entry's checkbox hides or shows it; **Keep run** keeps the run as it is now (mid-run); **Clear runs**
  empties the list.
* The **weights** of a method with per-task weights (``static``) act live: a change is handed to
  ``trainer.weighting.set_weights``, applies from the next step, is recorded in the History and shows as
  a marker on the curves. For other methods the weights are read-only and show the effective weights.
* The **pace** may change during a run (full speed finishes it quickly).
* :meth:`Lab.run` is the synchronous path (scripts, tests, nbval): the same trainer, ``fit()`` in the
  calling thread, the same final History.

Every setting goes through :class:`~mtl_lab.widgets.config.LabConfig` — the API's own checks. The panel
never clamps or replaces a value: a bad one is reported in the status line with the API's message.
"""

from __future__ import annotations

import html
import math
import re
import threading
import time

import ipywidgets as W
import torch

from mtl_lab import data as datasets
from mtl_lab.history import History
from mtl_lab.metrics import delta_m, directions, percent, relative_changes
from mtl_lab.palette import method_color, task_color
from mtl_lab.plots import signature_figure, to_png
from mtl_lab.training import Event, Trainer, build_trainer
from mtl_lab.weighting import METHODS
from mtl_lab.widgets.common import close_all, close_tree, html_table, replace_previous, status_html, view_bundle
from mtl_lab.widgets.config import (
    LabConfig,
    load_data,
    make_trainer,
    method_parameters,
    selected_data,
    takes_task_weights,
)
from mtl_lab.widgets.fit import architecture_fit
from mtl_lab.widgets.inputs import (
    WeightInput,
    method_option_widget,
    model_option_widget,
    model_parameters,
    read_method_option,
    read_model_option,
    same_value,
    set_disabled,
)
from mtl_lab.widgets.lab_layout import LabLayout
from mtl_lab.widgets.links import PRESETS, ignored_options, setup_link
from mtl_lab.widgets.pace import Pace, check_pace
from mtl_lab.widgets.transport import ChartFeed

RESUMABLE = ("paused", "stopped", "interrupted")
STATUS_EVERY = 0.25  # seconds between status-line updates: at most 4 a second
LECTURE_PACE = 25.0


def warm_up_torch() -> None:
    """Make one optimiser now: the first one in a process imports torch's compile machinery (~3 s here), which
    would otherwise delay the first frame after Train. Later calls cost microseconds."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


class Lab:
    """The weight-tuning panel. ``Lab(config)`` with a :class:`LabConfig`, a dict or a JSON string.

    ``pace``: steps per second during a run (``None``: full speed); the panel's *pace* control changes
    it. ``name``: a new Lab with the same name closes the previous one (re-running a cell leaves no run
    behind). Display it by leaving it as the last expression of a cell; ``lab.widget`` is the box.
    """

    def __init__(self, config: LabConfig | dict | str | None = None, name: str = "lab",
                 pace: float | None = None) -> None:
        config = coerce_config(config)
        self.pace = Pace(pace)
        self.name = name
        self.trainer: Trainer | None = None
        self.handle = None
        self.trainer_key = ""
        self.baseline_trainer: Trainer | None = None
        self.baseline_cache: dict[str, float] = {}
        self.stop_requested = threading.Event()
        self.rate_origin = (0.0, 0)
        self.last_status = 0.0
        self.weights: dict[str, float] = dict(config.weights)
        self.data_options: dict = dict(config.data_options)
        self.diagnostics_every = config.diagnostics_every
        self.run_config: LabConfig | None = None
        self.pins: list[dict] = []
        self.full_speed_record_every = 10  # the trainer's own cadence, read when a trainer is built
        self.building = False
        self.ui = LabLayout()
        self.widget = self.ui.widget
        self.chart = self.ui.chart
        self.feed = ChartFeed(self.chart)
        self.task_checks: dict[str, W.Checkbox] = {}
        self.weight_inputs: dict[str, WeightInput] = {}
        self.option_widgets: dict[str, W.Widget] = {}
        self.model_widgets: dict[str, W.Widget] = {}
        self.connect()
        warm_up_torch()
        self.apply_config(config)
        self.set_pace(self.pace.steps_per_second)
        self.show_status("ready", "press Train (or Step) to start", "#555")
        replace_previous(name, self)

    # ------------------------------------------------------------ wiring

    def connect(self) -> None:
        ui = self.ui
        ui.data_w.observe(self.on_data, names="value")
        ui.arch_w.observe(self.on_architecture, names="value")
        ui.method_w.observe(self.on_method, names="value")
        ui.pace_w.observe(lambda change: self.set_pace(change["new"]), names="value")
        ui.model_reset_b.on_click(lambda _: self.set_model_options(ui.arch_w.value, {}))
        ui.train_b.on_click(lambda _: self.train())
        ui.stop_b.on_click(lambda _: self.stop())
        ui.step_b.on_click(lambda _: self.step())
        ui.epoch_b.on_click(lambda _: self.epoch())
        ui.reset_b.on_click(lambda _: self.reset())
        ui.pin_b.on_click(lambda _: self.pin())
        ui.unpin_b.on_click(lambda _: self.clear_pins())
        ui.link_b.on_click(lambda _: self.on_link())
        ui.preset_w.observe(lambda change: self.on_preset(change["new"]), names="value")
        ui.projector_w.observe(lambda change: setattr(self.chart, "projector", change["new"]), names="value")
        self.run_checks: list[W.Checkbox] = []
        ui.export_b.on_click(lambda _: self.on_export())
        ui.load_b.on_click(lambda _: self.on_load())

    def set_tasks(self, task_names: list[str], selected: list[str] | None) -> None:
        """One switch and one weight input per task of the data set."""
        selected = task_names if selected is None else selected
        close_all([*self.task_checks.values(), *self.weight_inputs.values()])
        self.task_checks = {t: W.Checkbox(value=t in selected, description=t, indent=False,
                                          layout=W.Layout(width="auto", margin="0 10px 0 0")) for t in task_names}
        for box in self.task_checks.values():
            box.observe(lambda _: self.refresh_weight_box(), names="value")
        self.ui.task_box.children = list(self.task_checks.values())
        self.weight_inputs = {}
        for i, t in enumerate(task_names):
            entry = WeightInput(t, float(self.weights.get(t, 1.0)), task_color(i))
            entry.observe_value(lambda value, task=t: self.on_weight(task, value))
            self.weight_inputs[t] = entry
        self.refresh_weight_box()
        self.refresh_architectures()

    def refresh_weight_box(self) -> None:
        chosen = [t for t, box in self.task_checks.items() if box.value]
        self.ui.weight_box.children = [self.weight_inputs[t] for t in chosen]
        if self.trainer is None:  # before a run the chart's legend shows the chosen tasks
            self.chart.set_tasks(chosen)
        self.refresh_weight_mode()

    def refresh_weight_mode(self) -> None:
        live = takes_task_weights(self.ui.method_w.value)
        for entry in self.weight_inputs.values():
            entry.set_disabled(not live)
        self.ui.weight_note.value = (
            "<small>The weights act live: a change applies from the next step (slider: 0.001 … 100 on a log "
            "scale; type any other value in the box).</small>" if live else
            f"<small>{html.escape(self.ui.method_w.value)} sets the weights itself; the boxes show its "
            "effective weights.</small>"
        )

    def refresh_architectures(self) -> None:
        """Offer the architectures that fit the data (with the chosen tasks); say why the others do not."""
        try:
            data = selected_data(self.partial_config())
        except ValueError:
            return
        verdicts = architecture_fit(data)
        fitting = [a for a, why in verdicts.items() if why is None]
        current = self.ui.arch_w.value
        self.building, was = True, self.building
        try:
            self.ui.arch_w.options = fitting if current in fitting or current is None else [*fitting, current]
            if current is not None:
                self.ui.arch_w.value = current
        finally:
            self.building = was
        misfits = [f"<b>{html.escape(a)}</b>: {html.escape(why)}" for a, why in verdicts.items() if why]
        self.ui.arch_note.value = ("<small>Not offered for this data: " + "; ".join(misfits) + "</small>"
                                   if misfits else "")

    def set_method_options(self, method: str, values: dict) -> None:
        params = [p for p in method_parameters(method) if not (p.name == "weights" and takes_task_weights(method))]
        close_all(self.option_widgets.values())
        declared = METHODS[method].options
        self.option_widgets = {p.name: method_option_widget(p.name, declared[p.name], values.get(p.name, p.default))
                               for p in params}
        self.ui.option_box.children = list(self.option_widgets.values()) or [W.HTML("<i>none</i>")]
        description = METHODS[method].description
        self.ui.method_help.value = f"<small><b>{html.escape(method)}</b>: {html.escape(description)}</small>"
        self.refresh_weight_mode()

    def set_model_options(self, architecture: str, values: dict) -> None:
        """One input per option of the architecture (and its trunk); values not given show the default."""
        params = model_parameters(architecture, values.get("trunk"))
        close_all(self.model_widgets.values())
        self.model_widgets = {p.name: model_option_widget(p, values) for p in params}
        if "trunk" in self.model_widgets:  # another trunk has other options
            self.model_widgets["trunk"].observe(lambda _: self.on_architecture({"new": self.ui.arch_w.value}),
                                                names="value")
        self.ui.model_box.children = list(self.model_widgets.values()) or [W.HTML("<i>none</i>")]

    # ------------------------------------------------------------ observers

    def on_data(self, change) -> None:
        if self.building:
            return
        options = datasets.menu_options(change["new"])  # a real data set's folders under $MTL_LAB_DATA
        try:
            data = load_data(change["new"], options)
        except (ValueError, FileNotFoundError) as exc:
            self.show_error(exc)
            return
        self.data_options = options
        self.set_tasks(data.task_names, None)

    def on_architecture(self, change) -> None:
        if not self.building and change["new"] is not None:
            kept = self.read_model_options(strict=False)
            self.set_model_options(change["new"], kept)

    def on_method(self, change) -> None:
        if not self.building:
            self.set_method_options(change["new"], {})

    def set_pace(self, steps_per_second: float | None) -> None:
        """Change the pace (also during a run: the new cap counts from now)."""
        step = self.trainer.global_step if self.trainer is not None else 0
        changed = check_pace(steps_per_second) != self.pace.steps_per_second
        self.pace.set(check_pace(steps_per_second), step)
        if self.trainer is not None:
            self.trainer.records.every = self.record_every()
        if changed and self.running:  # marked on the curves: the run's speed changed here
            label = "full speed" if steps_per_second is None else f"{steps_per_second:g} steps/s"
            self.trainer.history.add_note({"step": step, "option_set": f"pace: {label}"})
        value = self.pace.steps_per_second
        if self.ui.pace_w.value != value:
            if value not in [v for _, v in self.ui.pace_w.options]:  # a pace given in code is shown as it is
                self.ui.pace_w.options = [*self.ui.pace_w.options, (f"{value:g} steps/s", value)]
            self.ui.pace_w.value = value

    def on_weight(self, task: str, value: float) -> None:
        """A weight changed: remember it, and hand it to a running method that takes weights."""
        if self.building or not takes_task_weights(self.ui.method_w.value) or self.weight_inputs[task].box.disabled:
            return
        self.weights[task] = value
        trainer = self.trainer
        if trainer is None or not callable(getattr(trainer.weighting, "set_weights", None)):
            return
        new = {t: self.weights.get(t, 1.0) for t in trainer.task_names}
        try:
            trainer.weighting.set_weights(new)
        except ValueError as exc:
            self.show_error(exc, "weights not applied:")
            return
        trainer.history.add_note({"step": trainer.global_step, "weights_set": new})
        self.chart.title = self.title()
        if not self.running:
            self.show_status("weights", f"set to {fmt_weights(new)}; they apply from the next step", "#555")

    # ------------------------------------------------------------ config

    def read_model_options(self, strict: bool = True) -> dict:
        """The model options that differ from the architecture's defaults."""
        params = {p.name: p for p in model_parameters(self.ui.arch_w.value)} if self.ui.arch_w.value else {}
        out = {}
        for name, widget in self.model_widgets.items():
            try:
                value = read_model_option(params.get(name), widget) if name in params else None
            except ValueError:
                if strict:
                    raise
                continue
            if name in params and not same_value(value, params[name].default):
                out[name] = value
        return out

    def partial_config(self) -> LabConfig:
        """The data and tasks as the panel shows them (for choices that depend on them)."""
        tasks = [t for t, box in self.task_checks.items() if box.value] or None
        return LabConfig(data=self.ui.data_w.value, tasks=None if tasks == list(self.task_checks) else tasks,
                         data_options=dict(self.data_options))

    def read_config(self) -> LabConfig:
        """The panel's settings, exactly as shown (``ValueError`` with the API's message when one is bad)."""
        ui = self.ui
        method = ui.method_w.value
        params = {p.name: p for p in method_parameters(method)}
        declared = METHODS[method].options
        options = {name: read_method_option(name, declared[name], w) for name, w in self.option_widgets.items()}
        options = {name: v for name, v in options.items() if not same_value(v, params[name].default)}
        tasks = [t for t, box in self.task_checks.items() if box.value]
        if not tasks:
            raise ValueError("switch on at least one task")
        all_tasks = list(self.task_checks)
        config = LabConfig(
            data=ui.data_w.value,
            tasks=None if tasks == all_tasks else tasks,
            data_options=dict(self.data_options),
            architecture=ui.arch_w.value,
            model_options=self.read_model_options(),
            method=method,
            method_options=options,
            weights={t: entry.value for t, entry in self.weight_inputs.items()} if takes_task_weights(method)
            else {t: w for t, w in self.weights.items() if t in self.task_checks},  # this data set's tasks
            optimizer=ui.optimizer_w.value,
            lr=ui.lr_w.value,
            epochs=ui.epochs_w.value,
            batch_size=ui.batch_w.value,
            device=ui.device_w.value,
            seed=ui.seed_w.value,
            diagnostics_every=self.diagnostics_every,
            baselines=ui.baselines_w.value,
        )
        config.check()
        return config

    def apply_config(self, config: LabConfig) -> None:
        """Set every control from ``config`` (checked first), exactly: nothing is clamped or replaced."""
        config.check()
        data = load_data(config.data, config.data_options)
        unknown = [t for t in (config.tasks or []) if t not in data.task_names]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown} for data set {config.data!r}; choose from {data.task_names}")
        ui = self.ui
        self.building = True
        try:
            self.data_options = dict(config.data_options)
            self.diagnostics_every = config.diagnostics_every
            self.weights = dict(config.weights)  # a set-up's weights replace the last data set's
            ui.data_w.value = config.data
            ui.arch_w.options = [config.architecture]
            ui.arch_w.value = config.architecture
            ui.method_w.value = config.method
            ui.optimizer_w.value = config.optimizer
            ui.lr_w.value = config.lr
            ui.epochs_w.value = config.epochs
            ui.batch_w.value = config.batch_size
            ui.device_w.value = config.device
            ui.seed_w.value = config.seed
            ui.baselines_w.value = config.baselines
            self.set_tasks(data.task_names, config.tasks)
        finally:
            self.building = False
        self.set_model_options(config.architecture, config.model_options)
        self.set_method_options(config.method, config.method_options)
        self.refresh_architectures()

    def export_config(self) -> dict:
        """The panel's set-up as a dict (``LabConfig.to_dict``)."""
        return self.read_config().to_dict()

    def export_json(self) -> str:
        return self.read_config().to_json()

    def load_config(self, config: LabConfig | dict | str) -> None:
        """Apply a set-up (a LabConfig, dict or JSON string); ``ValueError`` names what is wrong."""
        if self.running:
            raise ValueError("stop the run before loading a set-up")
        config = coerce_config(config)
        self.apply_config(config)
        ignored = ignored_options(config)
        if ignored:  # said at once: the screen must not look as if these acted
            self.show_status("note", "set-up applied, but " + "; ".join(ignored), "#b36b00")
        else:
            self.show_status("loaded", "set-up applied; press Train", "#555")

    def link(self) -> str:
        """The query string that opens this set-up on the classroom page (``mtl-lab app``, then append it to
        the page's address): :func:`mtl_lab.widgets.links.setup_link`."""
        return setup_link(self.read_config(), projector=self.ui.projector_w.value)

    def on_link(self) -> None:
        try:
            self.ui.link_w.value = self.link()
            self.show_status("link", "the set-up's link is in the box: append it to the classroom page's address",
                             "#555")
        except ValueError as exc:
            self.show_error(exc)

    def load_preset(self, name: str) -> None:
        """Load a scenario of :data:`mtl_lab.widgets.links.PRESETS` and show what to look for."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {list(PRESETS)}")
        self.load_config(PRESETS[name].config)
        self.ui.look_for.value = (f"<small><b>{html.escape(PRESETS[name].title)}</b> — look for: "
                                  f"{html.escape(PRESETS[name].look_for)}</small>")

    def on_export(self) -> None:
        try:
            self.ui.config_text.value = self.export_json()
            self.show_status("exported", "the set-up is in the box below the chart", "#555")
        except ValueError as exc:
            self.show_error(exc)

    def on_preset(self, name: str) -> None:
        if not name:
            return
        try:
            self.load_preset(name)
        except ValueError as exc:
            self.show_error(exc, "preset not loaded:")

    def on_load(self) -> None:
        try:
            self.load_config(self.ui.config_text.value)
        except ValueError as exc:
            self.show_error(exc, "set-up not loaded:")

    # ------------------------------------------------------------ actions

    @property
    def running(self) -> bool:
        return self.handle is not None and self.handle.running

    def build(self, config: LabConfig, callback) -> Trainer:
        """The trainer of ``config``; at a capped pace it records every step (the chart moves step by step),
        at full speed every ``record_every`` steps as headless runs do (rows arrive faster than 10 sends/s)."""
        trainer = make_trainer(config, callback=callback)
        self.full_speed_record_every = trainer.records.every
        trainer.records.every = self.record_every()
        return trainer

    def record_every(self) -> int:
        return 1 if self.pace.steps_per_second is not None else self.full_speed_record_every

    def prepare_trainer(self, fresh: bool) -> Trainer | None:
        """The trainer to run: the current one when it can go on with these settings, else a new one."""
        try:
            config = self.read_config()
            key = config.run_key()
            resumable = self.trainer is not None and self.trainer.history.status in RESUMABLE
            if fresh or not resumable or key != self.trainer_key:
                self.adopt(self.build(config, self.on_event), config)
            return self.trainer
        except (ValueError, KeyError, RuntimeError, TypeError) as exc:
            self.show_error(exc)
            return None

    def adopt(self, trainer: Trainer, config: LabConfig) -> None:
        """A new run: the chart starts empty (pinned overlays stay), its step axis spans the run."""
        self.trainer = trainer
        self.trainer_key = config.run_key()
        self.run_config = config
        self.ui.table.value = ""
        self.feed.begin(lambda: trainer.history, trainer.task_names,
                        trainer.config.epochs * trainer.batches_per_epoch)
        self.chart.title = self.title()

    def ready_trainer(self):
        """The trainer the next run continues (a fresh one after a completed run); ``None`` if busy or invalid."""
        if self.running:
            self.show_status("busy", "already training: press Stop first", "#b36b00")
            return None
        trainer = self.prepare_trainer(fresh=False)
        if trainer is not None and trainer.history.status == "completed":
            trainer = self.prepare_trainer(fresh=True)
        return trainer

    def train(self, max_steps: int | None = None) -> bool:
        """Start (or continue) training in the background; ``False`` (and a status message) if it cannot."""
        trainer = self.ready_trainer()
        return trainer is not None and self.start_run(trainer, max_steps)

    def step(self) -> bool:
        """Take one optimisation step, then pause."""
        trainer = self.ready_trainer()
        return trainer is not None and self.start_run(trainer, 1)

    def epoch(self) -> bool:
        """Train to the end of the current epoch (one epoch from a boundary), then pause."""
        trainer = self.ready_trainer()
        return trainer is not None and self.start_run(trainer, trainer.batches_per_epoch - trainer.totals.batches)

    def start_run(self, trainer, max_steps: int | None) -> bool:
        """Start ``trainer`` in its background thread, with the chart feed, pace and status set for the run."""
        self.stop_requested.clear()
        self.rate_origin = (time.perf_counter(), trainer.global_step)
        self.pace.restart(trainer.global_step)
        self.set_running(True)
        self.show_progress("starting", trainer)
        self.feed.start()
        self.handle = trainer.start(max_steps)
        return True

    def stop(self, wait: bool = False, timeout: float = 30.0) -> None:
        """Ask the run (and a baseline in training) to stop after its current step; ``wait`` joins it."""
        self.stop_requested.set()
        for trainer in (self.trainer, self.baseline_trainer):
            if trainer is not None:
                trainer.stop()
        if wait and self.handle is not None:
            self.handle.join(timeout, raise_error=False)

    def reset(self) -> None:
        """Stop, forget the run, clear the chart (pinned overlays stay) and the table."""
        self.stop(wait=True)
        self.feed.detach()
        self.trainer = None
        self.handle = None
        self.trainer_key = ""
        self.ui.table.value = ""
        self.ui.progress.value = 0
        self.show_status("ready", "reset; press Train (or Step) to start", "#555")

    def pin(self, trainer: Trainer | None = None, quiet: bool = False) -> bool:
        """Keep a run's validation curves in the run list and as a faint overlay in its method's colour.

        ``trainer`` defaults to the current run. A run already in the list (continued after Stop) replaces
        its own entry. ``quiet`` leaves the status line to the caller (the automatic keep at a run's end).
        """
        trainer = trainer if trainer is not None else self.trainer
        if trainer is None or not trainer.history.epochs:
            if not quiet:
                self.show_status("keep", "nothing to keep yet: train at least one epoch first", "#b36b00")
            return False
        history = trainer.history.snapshot()
        method = history.meta.get("method", {}).get("name", trainer.weighting.name)
        entry = {"label": run_label(history, trainer), "x": [e["step"] for e in history.epochs],
                 "val": [[e.get("val_loss", {}).get(t) for e in history.epochs] for t in self.chart.tasks],
                 "color": method_color(method), "run": id(trainer), "hidden": False}
        same = [k for k, pin in enumerate(self.pins) if pin["run"] == entry["run"]]
        if same:
            entry["hidden"] = self.pins[same[0]]["hidden"]
            self.pins[same[0]] = entry
        else:
            self.pins.append(entry)
        self.show_runs()
        if not quiet:
            self.show_status("kept", f"run {len(self.pins)} kept: {entry['label']}", "#555")
        return True

    def show_runs(self) -> None:
        """The run list (a checkbox per kept run: shown or hidden) and the chart's overlays."""
        while len(self.run_checks) < len(self.pins):
            k = len(self.run_checks)
            check = W.Checkbox(value=True, indent=False, layout=W.Layout(width="auto"))
            check.observe(lambda change, k=k: self.set_run_hidden(k, not change["new"]), names="value")
            self.run_checks.append(check)
        for check in self.run_checks[len(self.pins):]:
            check.close()
        self.run_checks = self.run_checks[:len(self.pins)]
        for k, (check, pin) in enumerate(zip(self.run_checks, self.pins)):
            check.description = f"{k + 1}: {pin['label']}"
            check.style.text_color = pin["color"]
            check.value = not pin["hidden"]
        self.ui.run_box.children = tuple(self.run_checks)
        self.chart.pinned = [dict(pin) for pin in self.pins]

    def set_run_hidden(self, k: int, hidden: bool) -> None:
        if k < len(self.pins) and self.pins[k]["hidden"] != hidden:
            self.pins[k]["hidden"] = hidden
            self.chart.pinned = [dict(pin) for pin in self.pins]

    def clear_pins(self) -> None:
        self.pins = []
        self.show_runs()

    def run(self) -> History:
        """Train synchronously with the panel's settings (no thread): the path for scripts and nbval.

        The trainer is the same one :meth:`train` would build, so the final History is the same.
        Raises ``ValueError`` when a setting is bad.
        """
        if self.running:
            raise RuntimeError("the lab is training in the background; stop it first")
        config = self.read_config()
        self.adopt(self.build(config, None), config)
        self.stop_requested.clear()
        self.rate_origin = (time.perf_counter(), 0)
        history = self.trainer.fit()
        self.trainer.records.callback = self.on_event
        self.finish(history.status)
        return self.trainer.history

    def close(self) -> None:
        """Stop the run and close every widget the panel made (their views disappear)."""
        self.stop(wait=True, timeout=10.0)
        self.feed.detach()
        close_all([*self.task_checks.values(), *self.weight_inputs.values(), *self.option_widgets.values(),
                   *self.model_widgets.values(), *self.run_checks])
        close_tree(self.widget)

    # ------------------------------------------------------------ the training thread's side

    def on_event(self, event: Event) -> None:
        """Called by the trainer in its thread: keep the pace, update the status, finish at the end."""
        trainer = self.trainer
        if trainer is None:
            return
        if self.stop_requested.is_set():
            trainer.stop()
        if event.kind in ("step", "epoch"):
            now = time.perf_counter()
            if now - self.last_status >= STATUS_EVERY:
                self.last_status = now
                self.show_progress("training", trainer)
                self.show_effective_weights(event)
            if event.kind == "step":
                self.feed.step_taken()
                self.pace.wait(trainer.global_step, self.stop_requested)
        elif event.kind == "end":
            self.finish(event.data.get("status", ""))
        elif event.kind == "error":
            self.feed.stop()
            self.show_status("error", event.data.get("error", ""), "#c00")
            self.set_running(False)

    def finish(self, status: str) -> None:
        """The run ended: last rows to the chart, metrics table (with baselines when wanted), status, buttons."""
        trainer = self.trainer
        try:
            self.feed.stop()
            history = trainer.history.snapshot()
            self.show_progress(status, trainer)
            if status in ("completed", "stopped"):
                self.pin(trainer, quiet=True)
            if status == "completed":
                baseline = self.baselines() if self.run_config.baselines else None
                self.ui.table.value = metrics_html(history, trainer, baseline)
                self.show_progress(status, trainer)
        except Exception as exc:  # the view must never take the run down
            self.show_error(exc)
        finally:
            self.set_running(False)

    def baselines(self) -> dict[str, float] | None:
        """Single-task test metrics for the run's tasks (trained now unless cached); ``None`` if stopped."""
        config = self.run_config
        data = selected_data(config)
        out = {}
        for k, task in enumerate(data.task_names):
            key = config.baseline_key(task)
            if key not in self.baseline_cache:
                if self.stop_requested.is_set():
                    return None
                self.show_status("baselines", f"training the single-task baseline {k + 1}/{len(data.task_names)} "
                                 f"({task}) for Δm …", "#0a5")
                self.baseline_trainer = build_trainer(data.select([task]), config.architecture, "equal",
                                                      config.model_options, **config.train_options())
                if self.stop_requested.is_set():
                    return None
                history = self.baseline_trainer.fit()
                self.baseline_trainer = None
                if history.status != "completed":
                    return None
                self.baseline_cache[key] = history.meta["test_metrics"][task]
            out[task] = self.baseline_cache[key]
        return out

    # ------------------------------------------------------------ status

    def title(self) -> str:
        trainer = self.trainer
        if trainer is None:
            return ""
        text = f"{trainer.weighting.name} · {trainer.model.architecture} · {trainer.data.name}"
        if takes_task_weights(trainer.weighting.name):
            text += " · weights " + fmt_weights({t: self.weights.get(t, 1.0) for t in trainer.task_names})
        return text

    def show_progress(self, state: str, trainer: Trainer) -> None:
        total = trainer.config.epochs * trainer.batches_per_epoch
        step = trainer.global_step
        started, origin = self.rate_origin
        elapsed = time.perf_counter() - started
        rate = (step - origin) / elapsed if elapsed > 0 else 0.0
        history = trainer.history
        last = history.losses[-1] if history.losses else []
        loss = f" · loss Σ {sum(last):.4f}" if last else ""
        self.ui.progress.max = max(total, 1)
        self.ui.progress.value = min(step, total)
        color = {"training": "#0a5", "completed": "#06c", "stopped": "#b36b00", "paused": "#b36b00"}.get(state, "#333")
        self.show_status(state, f"epoch {trainer.epoch}/{trainer.config.epochs} · step {step}/{total} · "
                                f"{rate:.0f} steps/s{loss}", color)

    def show_effective_weights(self, event: Event) -> None:
        """For methods that set their own weights, show the latest effective weights in the (read-only) boxes."""
        if takes_task_weights(self.ui.method_w.value) or "weights" not in event.data or self.trainer is None:
            return
        self.building = True
        try:
            for task, w in zip(self.trainer.task_names, event.data["weights"]):
                if task in self.weight_inputs and math.isfinite(w):
                    self.weight_inputs[task].set(round(w, 4))
        finally:
            self.building = False

    def show_status(self, state: str, text: str, color: str = "#333") -> None:
        self.ui.status.value = status_html(state, text, color)

    def show_error(self, exc: BaseException, prefix: str = "") -> None:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        self.show_status("error", f"{prefix} {message}".strip(), "#c00")

    def set_running(self, running: bool) -> None:
        """Lock the controls that define a run while it trains (the weights and the pace stay live)."""
        for w in (*self.ui.run_controls(), *self.task_checks.values(), *self.option_widgets.values(),
                  *self.model_widgets.values()):
            set_disabled(w, running)

    def status_text(self) -> str:
        """The status line without markup (for tests and scripts)."""
        return html.unescape(re.sub(r"<[^>]+>", "", self.ui.status.value))

    # ------------------------------------------------------------ display

    def __repr__(self) -> str:
        return f"Lab(name={self.name!r}, data={self.ui.data_w.value!r}, method={self.ui.method_w.value!r})"

    def snapshot(self) -> bytes:
        """A PNG of the run as it is now (:func:`mtl_lab.plots.signature_figure`; the empty axes and the
        tasks before the first run) — what an exported notebook shows in place of the live chart."""
        if self.trainer is not None:
            history = self.trainer.history.snapshot()
        else:
            history = History(task_names=list(self.chart.tasks) or ["task"],
                              meta={"diagnostics": "not trained yet: press Train in the live notebook"})
        title = self.chart.title or f"{self.ui.method_w.value} · {self.ui.data_w.value} (not trained yet)"
        return to_png(signature_figure(history, title=title, figsize=(11, 6.4)))

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """Shown as the panel; the plain-text form is the short, stable ``repr`` (for stored outputs), and a
        PNG of the last state for exports (:func:`~mtl_lab.widgets.common.view_bundle`)."""
        return view_bundle(self, self.widget, self.snapshot(), **kwargs)


def run_label(history: History, trainer: Trainer) -> str:
    method = history.meta.get("method", {}).get("name", trainer.weighting.name)
    weights = history.weights[-1] if history.weights else []
    text = ", ".join(f"{t}={w:.3g}" for t, w in zip(trainer.task_names, weights))
    return f"{method} ({text})" if text else method


def coerce_config(config: LabConfig | dict | str | None) -> LabConfig:
    if config is None:
        return LabConfig()
    if isinstance(config, LabConfig):
        config.check()
        return config
    if isinstance(config, str):
        return LabConfig.from_json(config)
    return LabConfig.from_dict(config)


def fmt_weights(weights: dict[str, float]) -> str:
    return ", ".join(f"{t}={w:g}" for t, w in weights.items())


def metrics_html(history: History, trainer: Trainer, baseline: dict[str, float] | None) -> str:
    """Per-task test metrics of the run, the single-task baselines and Δm % (when baselines are given)."""
    data = trainer.data
    names = data.task_names
    metrics = history.meta.get("test_metrics", {})
    header = ["run", *[f"{t} ({data.task(t).metric_name} {'↑' if data.task(t).higher_is_better else '↓'})"
                       for t in names]]
    rows = [[history.meta.get("method", {}).get("name", "run"), *[f"{metrics.get(t, math.nan):.4f}" for t in names]]]
    caption = "Test metrics"
    if baseline:
        up = directions(data)
        header.append("Δm %")
        rows[0].append(f"{delta_m(metrics, baseline, up):+.2f}")
        rows.append(["single-task", *[f"{baseline[t]:.4f}" for t in names], "0.00"])
        changes = relative_changes(metrics, baseline, up)
        rows.append(["relative change", *[percent(changes[t]) for t in names], "(mean →)"])
        caption += (" · Δm %: the mean of the per-task relative changes in the last row (positive: multi-task "
                    "helps); one task with a near-zero baseline can dominate it — read the row, not only the mean")
    return html_table(header, rows, caption)
