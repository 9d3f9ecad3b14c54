"""The weight-tuning lab's controller: its state and what each control does.

The panel's parts, one concept per module:

* :mod:`mtl_lab.widgets.lab_layout` — every control and where it sits (no behaviour);
* this module — the run's state (trainer, pace, status) and the events (Train, Stop, Step, weights …);
* :mod:`mtl_lab.widgets.lab_controls` — task switches, weight boxes, architectures, method/model options;
* :mod:`mtl_lab.widgets.lab_setup` — the set-up read from and applied to the panel; link, export, presets;
* :mod:`mtl_lab.widgets.run_list` — the kept runs; :mod:`mtl_lab.widgets.run_table` — metrics and Δm;
* :mod:`mtl_lab.widgets.race` — two to four methods racing in lock-step (``lab.race``);
* :mod:`mtl_lab.widgets.chart` — the live chart (drawn in the browser), fed by
  :mod:`mtl_lab.widgets.transport`; :mod:`mtl_lab.widgets.pace` caps steps per second for lectures.

How it runs:

* **Train** starts :meth:`mtl_lab.training.Trainer.start` — the loop runs in a background thread and the
  kernel stays free for clicks. The chart feed's own thread sends new rows to the browser ≤ 10×/s; the
  training thread only updates the status line (≤ 4×/s) and keeps the pace.
  Train after Stop continues the same run when the settings are unchanged; otherwise it starts anew.
* **Stop** asks the loop to stop after the current step (and any baseline being trained).
* **Step** takes one optimisation step, **Epoch** trains up to the end of the current epoch; both then
  pause. **Reset** stops and forgets the run.
* **Every run is kept** when it completes or is stopped (:mod:`~mtl_lab.widgets.run_list`): its curves
  stay on the chart in the method's colour; **Keep run** keeps it mid-run; **Clear runs** empties the list.
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

from mtl_lab.history import History
from mtl_lab.plots import signature_figure, to_png
from mtl_lab.training import Event, Trainer
from mtl_lab.widgets import lab_controls as controls
from mtl_lab.widgets import lab_setup as setup
from mtl_lab.widgets.common import close_all, close_tree, replace_previous, status_html, view_bundle
from mtl_lab.widgets.config import LabConfig, make_trainer, takes_task_weights
from mtl_lab.widgets.inputs import WeightInput, set_disabled
from mtl_lab.widgets.lab_layout import LabLayout
from mtl_lab.widgets.lab_setup import coerce_config
from mtl_lab.widgets.links import setup_link
from mtl_lab.widgets.pace import Pace, RecordCadence, check_pace
from mtl_lab.widgets.prediction_strip import stack_png
from mtl_lab.widgets.race import Race
from mtl_lab.widgets.run_list import RunList, run_entry
from mtl_lab.widgets.run_status import STATE_COLORS, fmt_weights, progress_text, run_title
from mtl_lab.widgets.run_table import metrics_html, single_task_baselines
from mtl_lab.widgets.transport import ChartFeed

__all__ = ["LECTURE_PACE", "Lab", "coerce_config", "metrics_html"]

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
        self.baseline_cache: dict[str, dict[str, float]] = {}
        self.stop_requested = threading.Event()
        self.rate_origin = (0.0, 0)
        self.last_status = 0.0
        self.weights: dict[str, float] = dict(config.weights)
        self.data_options: dict = dict(config.data_options)
        self.diagnostics_every = config.diagnostics_every
        self.run_config: LabConfig | None = None
        self.cadence = RecordCadence()  # steps per move of rows to the History (and the chart)
        self.building = False
        self.ui = LabLayout()
        self.widget = self.ui.widget
        self.chart = self.ui.chart
        self.feed = ChartFeed(self.chart)
        self.runs = RunList(self.ui.run_box, self.chart)
        self.task_checks: dict[str, W.Checkbox] = {}
        self.weight_inputs: dict[str, WeightInput] = {}
        self.option_widgets: dict[str, W.Widget] = {}
        self.model_widgets: dict[str, W.Widget] = {}
        self.race = Race(self)
        self.ui.race_box.children = [self.race.widget]
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
        ui.link_b.on_click(lambda _: setup.on_link(self))
        ui.preset_w.observe(lambda change: setup.on_preset(self, change["new"]), names="value")
        ui.projector_w.observe(lambda change: setattr(self.chart, "projector", change["new"]), names="value")
        ui.export_b.on_click(lambda _: setup.on_export(self))
        ui.load_b.on_click(lambda _: self.on_load())

    # ------------------------------------------------------------ observers

    def on_data(self, change) -> None:
        if self.building:
            return
        try:
            setup.choose_data(self, change["new"])  # its folders, tasks, an architecture that fits, a live set-up
        except (ValueError, FileNotFoundError) as exc:
            self.show_error(exc)

    def on_architecture(self, change) -> None:
        if not self.building and change["new"] is not None:
            kept = setup.read_model_options(self, strict=False)
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
        if value not in [v for _, v in self.ui.pace_w.options]:  # a pace given in code is shown as it is
            self.ui.pace_w.options = [*self.ui.pace_w.options, (f"{value:g} steps/s", value)]
        index = [v for _, v in self.ui.pace_w.options].index(value)
        if self.ui.pace_w.index != index:  # by index: a Dropdown takes the value None for "nothing chosen"
            self.ui.pace_w.index = index

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

    # ------------------------------------------------------------ set-up (lab_setup, lab_controls)

    def set_tasks(self, task_names: list[str], selected: list[str] | None) -> None:
        controls.set_tasks(self, task_names, selected)

    def set_method_options(self, method: str, values: dict) -> None:
        controls.set_method_options(self, method, values)

    def set_model_options(self, architecture: str, values: dict) -> None:
        controls.set_model_options(self, architecture, values)

    def read_config(self) -> LabConfig:
        return setup.read_config(self)

    def apply_config(self, config: LabConfig) -> None:
        setup.apply_config(self, config)

    def load_config(self, config: LabConfig | dict | str) -> None:
        setup.load_config(self, config)

    def load_preset(self, name: str) -> None:
        setup.load_preset(self, name)

    def on_load(self) -> None:
        setup.on_load(self)

    def export_config(self) -> dict:
        """The panel's set-up as a dict (``LabConfig.to_dict``)."""
        return self.read_config().to_dict()

    def export_json(self) -> str:
        return self.read_config().to_json()

    def link(self) -> str:
        """The query string that opens this set-up on the classroom page (``mtl-lab app``, then append it to
        the page's address): :func:`mtl_lab.widgets.links.setup_link`."""
        return setup_link(self.read_config(), projector=self.ui.projector_w.value)

    # ------------------------------------------------------------ actions

    @property
    def running(self) -> bool:
        return self.handle is not None and self.handle.running

    def build(self, config: LabConfig, callback) -> Trainer:
        """The trainer of ``config``; at a capped pace it records every step (the chart moves step by step),
        at full speed every ``record_every`` steps as headless runs do, or more often when steps are slow
        (:class:`~mtl_lab.widgets.pace.RecordCadence`: the chart takes rows at least 10 times a second)."""
        trainer = make_trainer(config, callback=callback)
        slots = {name: i for i, name in enumerate(self.chart.task_order)}  # the data set's order (the chart's)
        trainer.history.update_meta(task_slots={name: slots[name] for name in trainer.task_names if name in slots})
        self.cadence.restart(trainer.records.every)
        trainer.records.every = self.record_every()
        return trainer

    def record_every(self) -> int:
        return self.cadence.every(capped=self.pace.steps_per_second is not None)

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
        self.ui.strip.clear()
        self.feed.begin([lambda: trainer.history], trainer.task_names,
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
        self.rate_origin = (trainer.clock.elapsed(), trainer.global_step)  # on the run's own clock
        self.pace.restart(trainer.global_step)
        self.cadence.begin()  # the speed is measured from this run's first move
        self.set_running(True)
        self.show_progress("starting", trainer)
        self.feed.start()
        self.handle = trainer.start(max_steps)
        return True

    def stop(self, wait: bool = False, timeout: float = 30.0) -> None:
        """Ask the run or race (and a baseline in training) to stop after its current step; ``wait`` joins it."""
        self.stop_requested.set()
        self.race.stop(wait=wait)
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
        self.ui.strip.clear()
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
        entry = run_entry(trainer, self.chart.tasks)
        self.runs.keep(entry)
        if not quiet:
            self.show_status("kept", f"run {len(self.pins)} kept: {entry['label']}", "#555")
        return True

    @property
    def pins(self) -> list[dict]:
        """The kept runs (:attr:`mtl_lab.widgets.run_list.RunList.pins`)."""
        return self.runs.pins

    def clear_pins(self) -> None:
        self.runs.clear()

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
        self.rate_origin = (self.trainer.clock.elapsed(), 0)
        history = self.trainer.fit()
        self.trainer.records.callback = self.on_event
        self.finish(history.status)
        return self.trainer.history

    def close(self) -> None:
        """Stop the run and close every widget the panel made (their views disappear)."""
        self.stop(wait=True, timeout=10.0)
        self.feed.detach()
        self.race.close()
        close_all([*self.task_checks.values(), *self.weight_inputs.values(), *self.option_widgets.values(),
                   *self.model_widgets.values(), *self.runs.checks])
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
                self.follow_speed(trainer, now)
                self.feed.step_taken()
                self.pace.wait(trainer.global_step, self.stop_requested)
        elif event.kind == "end":
            self.finish(event.data.get("status", ""))
        elif event.kind == "error":
            self.feed.stop()
            self.show_status("error", event.data.get("error", ""), "#c00")
            self.set_running(False)

    def follow_speed(self, trainer: Trainer, now: float) -> None:
        """After a move of rows: the cadence follows the measured speed (full speed only)."""
        self.cadence.moved(trainer.global_step, now)
        trainer.records.every = self.record_every()

    def finish(self, status: str) -> None:
        """The run ended: last rows to the chart, prediction strip, metrics table (and baselines), status, buttons."""
        trainer = self.trainer
        try:
            self.feed.stop()
            history = trainer.history.snapshot()
            self.show_progress(status, trainer)
            if status in ("completed", "stopped"):
                self.pin(trainer, quiet=True)
            if trainer.global_step > 0:  # pixel tasks: predicted vs true maps, drawn now that the loop is over
                self.ui.strip.draw(trainer)
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
        return single_task_baselines(self.run_config, self.baseline_cache, self.stop_requested,
                                     lambda text: self.show_status("baselines", text, "#0a5"),
                                     self.hold_baseline)

    def hold_baseline(self, trainer: Trainer | None) -> None:
        """The baseline in training (Stop reaches it), ``None`` after."""
        self.baseline_trainer = trainer

    # ------------------------------------------------------------ status

    def title(self) -> str:
        return run_title(self.trainer, self.weights)

    def show_progress(self, state: str, trainer: Trainer) -> None:
        total = trainer.config.epochs * trainer.batches_per_epoch
        self.ui.progress.max = max(total, 1)
        self.ui.progress.value = min(trainer.global_step, total)
        self.show_status(state, progress_text(trainer, self.rate_origin), STATE_COLORS.get(state, "#333"))

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
        tasks before the first run), with the prediction strip under it after a run on pixel tasks — what an
        exported notebook shows in place of the live chart."""
        if self.trainer is not None:
            history = self.trainer.history.snapshot()
        else:
            history = History(task_names=list(self.chart.tasks) or ["task"],
                              meta={"diagnostics": "not trained yet: press Train in the live notebook"})
        title = self.chart.title or f"{self.ui.method_w.value} · {self.ui.data_w.value} (not trained yet)"
        return stack_png(to_png(signature_figure(history, title=title, figsize=(11, 6.4))), self.ui.strip.png)

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """Shown as the panel; the plain-text form is the short, stable ``repr`` (for stored outputs), and a
        PNG of the last state for exports (:func:`~mtl_lab.widgets.common.view_bundle`)."""
        return view_bundle(self, self.widget, self.snapshot(), **kwargs)


