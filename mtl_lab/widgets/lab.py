"""The weight-tuning lab: a control panel over a Trainer, with live side-by-side plots.

Controls: data set and its tasks (on/off), architecture, method (with its one-line description) and
its hyper-parameters (read from the method class's ``__init__``), per-task weight sliders, optimizer,
learning rate (log scale), epochs, batch size, device, seed; Train / Stop / Step / Reset; a status line
with progress and steps per second. While a run trains, the live figure (:class:`LivePlot`) shows the
per-task losses and the effective weights on the left and the gradient contributions on the right; at
the end a per-task metrics table with Δm % against single-task baselines.

How it runs:

* **Train** starts :meth:`mtl_lab.train.Trainer.start` — the loop runs in a background thread and the
  kernel stays free for clicks. The trainer's callback (in that thread) redraws the figure when
  :meth:`LivePlot.due` and updates the status line; it never writes into an Output widget.
  Train after Stop continues the same run when the settings are unchanged; otherwise it starts anew.
* **Stop** asks the loop to stop after the current step (and any baseline being trained).
* **Step** trains up to the end of the current epoch, then pauses.
* **Reset** stops and forgets the run.
* The **weight sliders** of a method with per-task weights (``static``) act live: a change is handed
  to ``trainer.weighting.set_weights`` and applies from the next step; the History's weight rows show
  it and a note records it. For other methods the sliders are read-only and show the effective weights.
* :meth:`Lab.run` is the synchronous path (scripts, tests, nbval): the same trainer, ``fit()`` in the
  calling thread, the same final History.
* :meth:`Lab.export_config` / :meth:`Lab.load_config` hand a set-up around as a dict or JSON string.

Bad input (an unknown option, weights that are all zero, a learning rate that is not a number …)
ends up as a message in the status line, never as an exception in the training thread.
"""

from __future__ import annotations

import html
import math
import threading
import time

import ipywidgets as W

from mtl_lab import data as datasets
from mtl_lab.history import History
from mtl_lab.metrics import delta_m, directions
from mtl_lab.models import ARCHITECTURES
from mtl_lab.train import OPTIMIZERS, Event, Trainer, build_trainer
from mtl_lab.weighting import METHODS, available
from mtl_lab.widgets.common import (
    close_all,
    close_tree,
    html_table,
    option_widget,
    read_option,
    replace_previous,
    status_html,
)
from mtl_lab.widgets.config import (
    LabConfig,
    load_data,
    make_trainer,
    method_parameters,
    selected_data,
    takes_task_weights,
)
from mtl_lab.widgets.live import LivePlot

DEVICE_CHOICES = ("auto", "cpu", "cuda")
RESUMABLE = ("paused", "stopped", "interrupted")
STATUS_EVERY = 0.25  # seconds between status-line updates


class Lab:
    """The weight-tuning panel. ``Lab(config)`` with a :class:`LabConfig`, a dict or a JSON string.

    ``name``: a new Lab with the same name closes the previous one (re-running a cell leaves no run
    behind). Display it by leaving it as the last expression of a cell; ``lab.widget`` is the box.
    """

    def __init__(self, config: LabConfig | dict | str | None = None, name: str = "lab") -> None:
        config = coerce_config(config)
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
        self.model_options: dict = dict(config.model_options)
        self.diagnostics_every = config.diagnostics_every
        self.run_config: LabConfig | None = None
        self.building = False
        self.build_widgets()
        self.live = LivePlot(self.image)
        self.apply_config(config)
        self.show_status("ready", "press Train (or Step) to start", "#555")
        replace_previous(name, self)

    # ------------------------------------------------------------ widgets

    def build_widgets(self) -> None:
        wide = {"description_width": "initial"}
        self.data_w = W.Dropdown(options=list(datasets.DATASETS), description="data", style=wide)
        self.arch_w = W.Dropdown(options=list(ARCHITECTURES), description="architecture", style=wide)
        self.method_w = W.Dropdown(options=[name for name, _ in available()], description="method", style=wide)
        self.method_help = W.HTML()
        self.task_box = W.HBox()
        self.task_checks: dict[str, W.Checkbox] = {}
        self.option_box = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.option_widgets: dict[str, W.Widget] = {}
        self.weight_box = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.weight_sliders: dict[str, W.FloatSlider] = {}
        self.weight_note = W.HTML()
        self.optimizer_w = W.Dropdown(options=list(OPTIMIZERS), description="optimizer", style=wide,
                                      layout=W.Layout(width="170px"))
        self.lr_w = W.FloatLogSlider(value=1e-3, base=10, min=-5, max=0, step=0.1, description="lr",
                                     readout_format=".1e", continuous_update=False, layout=W.Layout(width="290px"))
        self.epochs_w = W.BoundedIntText(value=20, min=1, max=100_000, description="epochs", style=wide,
                                         layout=W.Layout(width="130px"))
        self.batch_w = W.BoundedIntText(value=64, min=1, max=1_000_000, description="batch", style=wide,
                                        layout=W.Layout(width="130px"))
        self.device_w = W.Dropdown(options=list(DEVICE_CHOICES), description="device", style=wide,
                                   layout=W.Layout(width="140px"))
        self.seed_w = W.IntText(value=0, description="seed", style=wide, layout=W.Layout(width="110px"))
        self.baselines_w = W.Checkbox(value=True, description="Δm vs single-task baselines", indent=False)
        self.train_b = W.Button(description="Train", button_style="success", icon="play", tooltip="train (continue)")
        self.stop_b = W.Button(description="Stop", button_style="danger", icon="stop", tooltip="stop after this step")
        self.step_b = W.Button(description="Step", icon="step-forward", tooltip="train to the end of this epoch")
        self.reset_b = W.Button(description="Reset", icon="refresh", tooltip="forget the run")
        for b in (self.train_b, self.stop_b, self.step_b, self.reset_b):
            b.layout = W.Layout(width="90px")
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="160px"))
        self.status = W.HTML()
        self.image = W.Image(format="png", layout=W.Layout(width="100%", max_width="980px"))
        self.table = W.HTML()
        self.config_text = W.Textarea(layout=W.Layout(width="100%", height="150px"),
                                      placeholder="paste a config (JSON) here and press Load")
        self.export_b = W.Button(description="Export", icon="download", tooltip="write the set-up as JSON")
        self.load_b = W.Button(description="Load", icon="upload", tooltip="apply the JSON set-up")
        share = W.VBox([W.HBox([self.export_b, self.load_b]), self.config_text])
        self.share = W.Accordion(children=[share], titles=("Share this set-up (JSON)",), selected_index=None)

        self.data_w.observe(self.on_data, names="value")
        self.method_w.observe(self.on_method, names="value")
        self.train_b.on_click(lambda _: self.train())
        self.stop_b.on_click(lambda _: self.stop())
        self.step_b.on_click(lambda _: self.step())
        self.reset_b.on_click(lambda _: self.reset())
        self.export_b.on_click(lambda _: self.on_export())
        self.load_b.on_click(lambda _: self.on_load())

        controls = W.VBox([
            W.HBox([self.data_w, self.arch_w, self.method_w]),
            self.method_help,
            W.HBox([W.HTML("<b>tasks</b>&nbsp;"), self.task_box]),
            W.HBox([W.HTML("<b>method options</b>&nbsp;"), self.option_box]),
            W.HBox([W.HTML("<b>weights</b>&nbsp;"), self.weight_box]),
            self.weight_note,
            W.HBox([self.optimizer_w, self.lr_w, self.epochs_w, self.batch_w, self.device_w, self.seed_w],
                   layout=W.Layout(flex_flow="row wrap")),
            self.baselines_w,
            W.HBox([self.train_b, self.stop_b, self.step_b, self.reset_b, self.progress]),
            self.status,
        ])
        self.widget = W.VBox([controls, self.image, self.table, self.share])
        self.widget.add_class("mtl-lab")

    def set_tasks(self, task_names: list[str], selected: list[str] | None) -> None:
        """One checkbox per task of the data set; one weight slider per task."""
        selected = task_names if selected is None else selected
        close_all([*self.task_checks.values(), *self.weight_sliders.values()])
        self.task_checks = {t: W.Checkbox(value=t in selected, description=t, indent=False,
                                          layout=W.Layout(width="auto")) for t in task_names}
        for box in self.task_checks.values():
            box.observe(lambda _: self.refresh_weight_box(), names="value")
        self.task_box.children = list(self.task_checks.values())
        self.weight_sliders = {}
        for t in task_names:
            slider = W.FloatSlider(value=float(self.weights.get(t, 1.0)), min=0.0, max=20.0, step=0.05,
                                   description=t, continuous_update=False, readout_format=".2f",
                                   style={"description_width": "initial"}, layout=W.Layout(width="260px"))
            slider.observe(lambda change, task=t: self.on_weight(task, change["new"]), names="value")
            self.weight_sliders[t] = slider
        self.refresh_weight_box()

    def refresh_weight_box(self) -> None:
        chosen = [t for t, box in self.task_checks.items() if box.value]
        self.weight_box.children = [self.weight_sliders[t] for t in chosen]
        self.refresh_weight_mode()

    def refresh_weight_mode(self) -> None:
        live = takes_task_weights(self.method_w.value)
        for slider in self.weight_sliders.values():
            slider.disabled = not live
        self.weight_note.value = (
            "<small>The weights act live: a change applies from the next step.</small>" if live else
            f"<small>{html.escape(self.method_w.value)} sets the weights itself; the sliders show its "
            "effective weights.</small>"
        )

    def set_method_options(self, method: str, values: dict) -> None:
        params = [p for p in method_parameters(method) if not (p.name == "weights" and takes_task_weights(method))]
        close_all(self.option_widgets.values())
        self.option_widgets = {p.name: option_widget(p, values.get(p.name, p.default)) for p in params}
        self.option_box.children = list(self.option_widgets.values()) or [W.HTML("<i>none</i>")]
        description = METHODS[method].description
        self.method_help.value = f"<small><b>{html.escape(method)}</b>: {html.escape(description)}</small>"
        self.refresh_weight_mode()

    # ------------------------------------------------------------ observers

    def on_data(self, change) -> None:
        if self.building:
            return
        try:
            data = load_data(change["new"])
        except ValueError as exc:
            self.show_error(exc)
            return
        self.set_tasks(data.task_names, None)

    def on_method(self, change) -> None:
        if not self.building:
            self.set_method_options(change["new"], {})

    def on_weight(self, task: str, value: float) -> None:
        """A slider moved: remember it, and hand it to a running method that takes weights."""
        if self.building or not takes_task_weights(self.method_w.value) or self.weight_sliders[task].disabled:
            return
        self.weights[task] = float(value)
        trainer = self.trainer
        if trainer is None or not callable(getattr(trainer.weighting, "set_weights", None)):
            return
        new = {t: float(self.weights.get(t, 1.0)) for t in trainer.task_names}
        try:
            trainer.weighting.set_weights(new)
        except ValueError as exc:
            self.show_error(exc, "weights not applied:")
            return
        trainer.history.add_note({"step": trainer.global_step, "weights_set": new})
        if not self.running:
            self.show_status("weights", f"set to {fmt_weights(new)}; they apply from the next step", "#555")

    # ------------------------------------------------------------ config

    def read_config(self) -> LabConfig:
        """The panel's settings (``ValueError`` with a clear message when one is bad)."""
        method = self.method_w.value
        params = {p.name: p for p in method_parameters(method)}
        options = {name: read_option(params[name], w) for name, w in self.option_widgets.items()}
        options = {name: v for name, v in options.items() if v != params[name].default}  # defaults stay implicit
        tasks = [t for t, box in self.task_checks.items() if box.value]
        if not tasks:
            raise ValueError("switch on at least one task")
        all_tasks = list(self.task_checks)
        config = LabConfig(
            data=self.data_w.value,
            tasks=None if tasks == all_tasks else tasks,
            data_options=dict(self.data_options),
            architecture=self.arch_w.value,
            model_options=dict(self.model_options),
            method=method,
            method_options=options,
            weights={t: float(s.value) for t, s in self.weight_sliders.items()} if takes_task_weights(method)
            else dict(self.weights),
            optimizer=self.optimizer_w.value,
            lr=float(self.lr_w.value),
            epochs=int(self.epochs_w.value),
            batch_size=int(self.batch_w.value),
            device=self.device_w.value,
            seed=int(self.seed_w.value),
            diagnostics_every=self.diagnostics_every,
            baselines=bool(self.baselines_w.value),
        )
        config.check()
        return config

    def apply_config(self, config: LabConfig) -> None:
        """Set every control from ``config`` (checked first)."""
        config.check()
        data = load_data(config.data, config.data_options)
        unknown = [t for t in (config.tasks or []) if t not in data.task_names]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown} for data set {config.data!r}; choose from {data.task_names}")
        self.building = True
        try:
            self.data_options = dict(config.data_options)
            self.model_options = dict(config.model_options)
            self.diagnostics_every = config.diagnostics_every
            self.weights.update(config.weights)
            self.data_w.value = config.data
            self.arch_w.value = config.architecture
            self.method_w.value = config.method
            self.optimizer_w.value = config.optimizer
            self.lr_w.value = config.lr
            self.epochs_w.value = config.epochs
            self.batch_w.value = config.batch_size
            self.device_w.value = config.device if config.device in DEVICE_CHOICES else "auto"
            self.seed_w.value = config.seed
            self.baselines_w.value = config.baselines
            self.set_tasks(data.task_names, config.tasks)
        finally:
            self.building = False
        self.set_method_options(config.method, config.method_options)

    def export_config(self) -> dict:
        """The panel's set-up as a dict (``LabConfig.to_dict``)."""
        return self.read_config().to_dict()

    def export_json(self) -> str:
        return self.read_config().to_json()

    def load_config(self, config: LabConfig | dict | str) -> None:
        """Apply a set-up (a LabConfig, dict or JSON string); ``ValueError`` names what is wrong."""
        if self.running:
            raise ValueError("stop the run before loading a set-up")
        self.apply_config(coerce_config(config))
        self.show_status("loaded", "set-up applied; press Train", "#555")

    def on_export(self) -> None:
        try:
            self.config_text.value = self.export_json()
            self.show_status("exported", "the set-up is in the box below the plots", "#555")
        except ValueError as exc:
            self.show_error(exc)

    def on_load(self) -> None:
        try:
            self.load_config(self.config_text.value)
        except ValueError as exc:
            self.show_error(exc, "set-up not loaded:")

    # ------------------------------------------------------------ actions

    @property
    def running(self) -> bool:
        return self.handle is not None and self.handle.running

    def prepare_trainer(self, fresh: bool) -> Trainer | None:
        """The trainer to run: the current one when it can go on with these settings, else a new one."""
        try:
            config = self.read_config()
            key = config.run_key()
            resumable = self.trainer is not None and self.trainer.history.status in RESUMABLE
            if fresh or not resumable or key != self.trainer_key:
                self.trainer = make_trainer(config, callback=self.on_event)
                self.trainer_key = key
                self.run_config = config
                self.live.prepare(self.trainer.task_names)
                self.table.value = ""
            return self.trainer
        except (ValueError, KeyError, RuntimeError) as exc:
            self.show_error(exc)
            return None

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
        """Train to the end of the current epoch (one epoch from a boundary), then pause."""
        trainer = self.ready_trainer()
        return trainer is not None and self.start_run(trainer, trainer.batches_per_epoch - trainer.epoch_batches)

    def start_run(self, trainer, max_steps: int | None) -> bool:
        """Start ``trainer`` in its background thread, with the live figure and status reset for the run."""
        self.stop_requested.clear()
        self.live.start_clock()
        self.live.planned_steps = trainer.config.epochs * trainer.batches_per_epoch
        self.rate_origin = (time.perf_counter(), trainer.global_step)
        self.set_running(True)
        self.show_progress("starting", trainer)
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
        """Stop, forget the run, clear the figure and the table."""
        self.stop(wait=True)
        self.trainer = None
        self.handle = None
        self.trainer_key = ""
        self.live.prepare([])
        self.image.value = b""
        self.table.value = ""
        self.progress.value = 0
        self.show_status("ready", "reset; press Train (or Step) to start", "#555")

    def run(self) -> History:
        """Train synchronously with the panel's settings (no thread): the path for scripts and nbval.

        The trainer is the same one :meth:`train` would build, so the final History is the same.
        Raises ``ValueError`` when a setting is bad.
        """
        if self.running:
            raise RuntimeError("the lab is training in the background; stop it first")
        config = self.read_config()
        self.trainer = make_trainer(config, callback=None)
        self.trainer_key = config.run_key()
        self.run_config = config
        self.live.prepare(self.trainer.task_names)
        self.stop_requested.clear()
        self.rate_origin = (time.perf_counter(), 0)
        history = self.trainer.fit()
        self.trainer.callback = self.on_event
        self.finish(history.status)
        return self.trainer.history

    def close(self) -> None:
        """Stop the run and close the widgets (their views disappear)."""
        self.stop(wait=True, timeout=10.0)
        close_all([*self.task_checks.values(), *self.weight_sliders.values(), *self.option_widgets.values()])
        close_tree(self.widget)

    # ------------------------------------------------------------ the training thread's side

    def on_event(self, event: Event) -> None:
        """Called by the trainer in its thread: redraw when due, update the status, finish at the end."""
        trainer = self.trainer
        if trainer is None:
            return
        if self.stop_requested.is_set():
            trainer.stop()
        if event.kind in ("step", "epoch"):
            if not self.stop_requested.is_set():  # a Stop is not kept waiting by a frame
                self.live.draw_if_due(trainer.history.snapshot, self.title())
            now = time.perf_counter()
            if now - self.last_status >= STATUS_EVERY or event.kind == "epoch":
                self.last_status = now
                self.show_progress("training", trainer)
                self.show_effective_weights(event)
        elif event.kind == "end":
            self.finish(event.data.get("status", ""))
        elif event.kind == "error":
            self.live.draw(trainer.history.snapshot(), self.title())
            self.show_status("error", event.data.get("error", ""), "#c00")
            self.set_running(False)

    def finish(self, status: str) -> None:
        """The run ended: final frame, metrics table (with baselines when wanted), status, buttons."""
        trainer = self.trainer
        try:
            history = trainer.history.snapshot()
            self.live.draw(history, self.title())
            self.show_progress(status, trainer)
            if status == "completed":
                baseline = self.baselines() if self.run_config.baselines else None
                self.table.value = metrics_html(history, trainer, baseline)
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
        return f"{trainer.weighting.name} · {trainer.model.architecture} · {trainer.data.name}"

    def show_progress(self, state: str, trainer: Trainer) -> None:
        total = trainer.config.epochs * trainer.batches_per_epoch
        step = trainer.global_step
        started, origin = self.rate_origin
        elapsed = time.perf_counter() - started
        rate = (step - origin) / elapsed if elapsed > 0 else 0.0
        history = trainer.history
        last = history.losses[-1] if history.losses else []
        loss = f" · loss Σ {sum(last):.4f}" if last else ""
        self.progress.max = max(total, 1)
        self.progress.value = min(step, total)
        color = {"training": "#0a5", "completed": "#06c", "stopped": "#b36b00", "paused": "#b36b00"}.get(state, "#333")
        self.show_status(state, f"epoch {trainer.epoch}/{trainer.config.epochs} · step {step}/{total} · "
                                f"{rate:.0f} steps/s{loss}", color)

    def show_effective_weights(self, event: Event) -> None:
        """For methods that set their own weights, move the (read-only) sliders to the latest ones."""
        if takes_task_weights(self.method_w.value) or "weights" not in event.data or self.trainer is None:
            return
        self.building = True
        try:
            for task, w in zip(self.trainer.task_names, event.data["weights"]):
                if task in self.weight_sliders and math.isfinite(w):
                    self.weight_sliders[task].value = min(max(w, 0.0), self.weight_sliders[task].max)
        finally:
            self.building = False

    def show_status(self, state: str, text: str, color: str = "#333") -> None:
        self.status.value = status_html(state, text, color)

    def show_error(self, exc: BaseException, prefix: str = "") -> None:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        self.show_status("error", f"{prefix} {message}".strip(), "#c00")

    def set_running(self, running: bool) -> None:
        """Lock the controls that define a run while it trains (the weights stay live)."""
        for w in (self.data_w, self.arch_w, self.method_w, self.optimizer_w, self.lr_w, self.epochs_w,
                  self.batch_w, self.device_w, self.seed_w, self.train_b, self.step_b, self.load_b,
                  *self.task_checks.values(), *self.option_widgets.values()):
            w.disabled = running

    def status_text(self) -> str:
        """The status line without markup (for tests and scripts)."""
        import re

        return html.unescape(re.sub(r"<[^>]+>", "", self.status.value))

    # ------------------------------------------------------------ display

    def __repr__(self) -> str:
        return f"Lab(name={self.name!r}, data={self.data_w.value!r}, method={self.method_w.value!r})"

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """Shown as the panel; the plain-text form is the short, stable ``repr`` (for stored outputs)."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle


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
        header.append("Δm %")
        rows[0].append(f"{delta_m(metrics, baseline, directions(data)):+.2f}")
        rows.append(["single-task", *[f"{baseline[t]:.4f}" for t in names], "0.00"])
        caption += " · Δm %: mean relative gain over single-task models (positive: multi-task helps)"
    return html_table(header, rows, caption)
