"""The race in the lab panel: two to four methods trained side by side, drawn live in one chart, with Δm.

Pick the methods (toggles in their palette colours) and press **Race**: the lab's current set-up — data,
tasks, architecture, weights (for a method that takes them), learning rate, epochs, seed, pace — is used
by every racer, and only the method differs (:mod:`mtl_lab.training.race`: the same initial weights, the
same batch order, one step each in turn in one background thread). **Stop** stops all racers at the same
step; each finished or stopped racer is kept in the run list like any run.

The chart (:mod:`mtl_lab.widgets.chart`) draws the loss and weight panels for every racer — a colour per
method, a dash per task — and the gradient panels (share, cosines, norms) for one racer, picked under
"gradient panels" and named in the chart's title. At the end a table gives each racer's test metric per
task and its Δm % (:func:`mtl_lab.metrics.delta_m`, printed by :func:`mtl_lab.metrics.percent`): against
single-task baselines when the set-up asks for them, otherwise against the first racer.

In code: ``lab.race.methods_w.value = ("equal", "pcgrad")``, then ``lab.race.start()`` (background, as the
button) or ``lab.race.run()`` (synchronous, no pace: scripts, tests, nbval) — the same racers, step for step.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

import ipywidgets as W

from mtl_lab.history import History
from mtl_lab.metrics import delta_m, directions, percent
from mtl_lab.palette import method_color
from mtl_lab.training import Trainer
from mtl_lab.training.race import RACERS, LockStep, check_methods, race_trainers
from mtl_lab.widgets.common import html_table
from mtl_lab.widgets.config import LabConfig, make_trainer
from mtl_lab.widgets.inputs import MethodToggles, set_disabled
from mtl_lab.widgets.lab_controls import refresh_weight_mode
from mtl_lab.widgets.run_table import single_task_baselines

if TYPE_CHECKING:
    from mtl_lab.widgets.lab import Lab

RACE_METHODS = ("equal", "static", "uncertainty", "pcgrad", "mgda", "cagrad", "nash_mtl")
DEFAULT_RACE = ("equal", "pcgrad")
STATUS_EVERY = 0.25  # seconds between status-line updates


def racer_config(config: LabConfig, method: str) -> LabConfig:
    """``config`` with ``method``: its options are kept only for the method they were set for."""
    options = dict(config.method_options) if method == config.method else {}
    return replace(config, method=method, method_options=options)


def race_table(trainers: dict[str, Trainer], reference: dict[str, float], reference_name: str) -> str:
    """Each racer's test metric per task and its Δm % against ``reference`` (per-task metrics)."""
    first = next(iter(trainers.values()))
    data = first.data
    names = data.task_names
    up = directions(data)
    header = ["method", *[f"{t} ({data.task(t).metric_name} {'↑' if data.task(t).higher_is_better else '↓'})"
                          for t in names], "Δm %"]
    rows = []
    for method, trainer in trainers.items():
        metrics = trainer.history.meta.get("test_metrics") or {}
        cells = [f"{metrics[t]:.4f}" if t in metrics else "–" for t in names]
        change = percent(delta_m(metrics, reference, up)) if set(names) <= set(metrics) else "–"
        rows.append([f"{method} ({trainer.history.status})", *cells, change])
    caption = (f"Race · test metrics · Δm %: the mean relative change per task against {reference_name} "
               "(positive: better)")
    return html_table(header, rows, caption)


class Race:
    """The race control of a :class:`~mtl_lab.widgets.lab.Lab` (``lab.race``); ``widget`` sits in its rail."""

    def __init__(self, lab: Lab, methods: tuple[str, ...] = DEFAULT_RACE) -> None:
        self.lab = lab
        self.runner: LockStep | None = None
        self.trainers: dict[str, Trainer] = {}
        self.config: LabConfig | None = None
        self.last_status = 0.0
        self.started = (0.0, 0)
        self.methods_w = MethodToggles(list(RACE_METHODS), methods)
        self.start_b = W.Button(description="Race", button_style="success", icon="flag-checkered",
                                tooltip="train the chosen methods side by side (this set-up, same start and batches)",
                                layout=W.Layout(width="auto", min_width="82px"))
        self.stop_b = W.Button(description="Stop race", button_style="danger", icon="stop",
                               tooltip="stop every racer at the same step", layout=W.Layout(width="auto"))
        self.shown_w = W.Dropdown(options=[], description="gradient panels", style={"description_width": "initial"},
                                  layout=W.Layout(width="260px"), tooltip="the racer the right-hand panels show")
        self.widget = W.VBox([
            W.HTML(f"<b>race</b> <small>{RACERS[0]}–{RACERS[1]} methods on this set-up (data, tasks, weights, lr, "
                   "epochs, seed, pace), the same start and batches; colour = method, dash = task</small>"),
            self.methods_w, W.HBox([self.start_b, self.stop_b], layout=W.Layout(flex_flow="row wrap")), self.shown_w,
        ], layout=W.Layout(width="100%"))
        self.widget.add_class("mtl-race")
        self.start_b.on_click(lambda _: self.start())
        self.stop_b.on_click(lambda _: self.stop())
        self.shown_w.observe(lambda change: self.show(change["new"]), names="value")

    # ------------------------------------------------------------ actions

    @property
    def running(self) -> bool:
        return self.runner is not None and self.runner.running

    def start(self) -> bool:
        """Build one trainer per chosen method from the lab's set-up and race them in the background;
        ``False`` (and a status message) if it cannot."""
        lab = self.lab
        if lab.running or self.running:
            lab.show_status("busy", "already training: press Stop first", "#b36b00")
            return False
        try:
            self.prepare(self.after_round)
        except (ValueError, KeyError, RuntimeError, TypeError) as exc:
            lab.show_error(exc, "race not started:")
            return False
        self.set_racing(True)
        lab.show_status("race", f"{' vs '.join(self.trainers)}: starting", "#0a5")
        lab.feed.start()
        self.runner.start()
        return True

    def run(self) -> dict[str, History]:
        """Race synchronously (no thread, no pace): the path for scripts, tests and nbval — the same
        trainers and steps as :meth:`start`, the same end (runs kept, table). Returns ``{method: History}``;
        raises ``ValueError`` when the methods or a setting are bad."""
        if self.lab.running or self.running:
            raise RuntimeError("the lab is training in the background; stop it first")
        self.prepare(None)
        self.runner.run()
        self.finish()
        return {m: t.history for m, t in self.trainers.items()}

    def prepare(self, after_round) -> None:
        """The racers from the lab's set-up and the chosen methods, the runner, the chart set for them."""
        lab = self.lab
        methods = check_methods(list(self.methods_w.value))
        config = lab.read_config()
        trainers = race_trainers(methods, lambda m: make_trainer(racer_config(config, m)))
        lab.pin(quiet=True)  # the lab's own run (if any) stays in the run list; the chart is the race's now
        lab.reset()
        self.config, self.trainers = config, trainers
        self.runner = LockStep(trainers, after_round=after_round)
        first = next(iter(trainers.values()))
        racers = [{"label": m, "color": method_color(m)} for m in trainers]
        lab.ui.table.value = ""
        lab.feed.begin([lambda t=t: t.history for t in trainers.values()], first.task_names,
                       first.config.epochs * first.batches_per_epoch, racers)
        self.shown_w.options, self.shown_w.value = list(trainers), methods[0]
        self.set_title()
        self.started = (time.perf_counter(), 0)
        lab.pace.restart(0)

    def stop(self, wait: bool = False) -> None:
        """Every racer stops after the next round (the same step for all); ``wait`` joins the race."""
        if self.runner is not None:
            self.runner.stop(wait=wait)

    def show(self, method: str | None) -> None:
        """The gradient panels show ``method``'s racer."""
        if method not in self.trainers or not self.lab.feed.sources:
            return
        if self.shown_w.value != method:
            self.shown_w.value = method  # its observer comes back here
            return
        self.lab.feed.show(list(self.trainers).index(method))
        self.set_title()

    def set_title(self) -> None:
        first = next(iter(self.trainers.values()))
        self.lab.chart.title = (f"race: {' vs '.join(self.trainers)} · {first.model.architecture} · "
                                f"{first.data.name} · gradient panels: {self.shown_w.value}")

    def link(self) -> str:
        """The lab's set-up link with this race (``&race=…``) for the classroom page
        (:func:`mtl_lab.widgets.links.setup_link`)."""
        from mtl_lab.widgets.links import setup_link  # links names the race's methods: imported here, not above
        lab = self.lab
        return setup_link(lab.read_config(), projector=lab.ui.projector_w.value, race=self.methods_w.value)

    # ------------------------------------------------------------ the race thread's side

    def after_round(self, step: int) -> None:
        """After every round: the first rows at once, the status ≤ 4×/s, the pace; at the end, the finish."""
        lab, runner = self.lab, self.runner
        try:
            lab.feed.step_taken()
            now = time.perf_counter()
            if now - self.last_status >= STATUS_EVERY:
                self.last_status = now
                total = lab.chart.planned_steps
                rate = step / max(now - self.started[0], 1e-9)
                lab.ui.progress.max, lab.ui.progress.value = max(total, 1), min(step, total)
                lab.show_status("race", f"step {step}/{total} · {rate:.0f} steps/s per racer", "#0a5")
        finally:
            if not runner.racing:  # the last round: the controls come back whatever happened above
                self.finish()
        if runner.racing:
            lab.pace.wait(step, runner.halt)

    def finish(self) -> None:
        """Every racer ended: last rows, each racer kept in the run list, the Δm table, controls back."""
        lab = self.lab
        try:
            lab.feed.stop()
            for trainer in self.trainers.values():
                if trainer.history.status in ("completed", "stopped"):
                    lab.pin(trainer, quiet=True)
            reference, name = self.reference()
            if reference:
                lab.ui.table.value = race_table(self.trainers, reference, name)
            errors = "; ".join(f"{m}: {e}" for m, e in self.runner.errors.items())
            statuses = ", ".join(f"{m} {s}" for m, s in self.runner.statuses.items())
            text = f"ended at step {self.runner.step}: {statuses}" + (f" ({errors})" if errors else "")
            lab.show_status("race", text, "#06c")
        except Exception as exc:  # the view must never take the race down
            lab.show_error(exc)
        finally:
            self.set_racing(False)

    def reference(self) -> tuple[dict[str, float], str]:
        """What Δm compares with: single-task baselines when the set-up asks for them (trained now unless
        cached; Stop reaches them), else the first racer's test metrics."""
        lab, config = self.lab, self.config
        if config.baselines and all(t.history.status == "completed" for t in self.trainers.values()):
            baseline = single_task_baselines(config, lab.baseline_cache, self.runner.halt,
                                             lambda text: lab.show_status("baselines", text, "#0a5"),
                                             lab.hold_baseline)
            if baseline:
                return baseline, "single-task baselines"
        method, first = next(iter(self.trainers.items()))
        return dict(first.history.meta.get("test_metrics") or {}), f"the first racer ({method})"

    def set_racing(self, racing: bool) -> None:
        """Lock the lab's run controls, the weights and the race's own choices while the race runs."""
        lab = self.lab
        lab.set_running(racing)
        for w in (self.methods_w, self.start_b, *lab.weight_inputs.values()):
            set_disabled(w, racing)
        if not racing:
            refresh_weight_mode(lab)

    def close(self) -> None:
        self.stop(wait=True)
        self.methods_w.close()
