"""What the lab says about a run: the chart's title and the status line's progress text.

The title names the method, architecture and data (and the weights of a method that takes them); the
progress line gives epoch, step, the rate since ``rate_origin`` and the last summed training loss.

The rate is read from the run's own clock (:class:`mtl_lab.training.ending.RunClock`, ``trainer.clock``),
which runs only while the run's loop runs: ``rate_origin`` is ``(trainer.clock.elapsed(), step)`` when the
run started or went on, so neither the time before Train, nor the test evaluation, nor the single-task
baselines trained after the run (each says its own rate: :class:`ProgressLine`) lowers the rate shown.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from mtl_lab.training import Event, Trainer
from mtl_lab.widgets.config import takes_task_weights

STATE_COLORS = {"training": "#0a5", "completed": "#06c", "stopped": "#b36b00", "paused": "#b36b00"}


def fmt_weights(weights: dict[str, float]) -> str:
    return ", ".join(f"{t}={w:g}" for t, w in weights.items())


def run_title(trainer: Trainer | None, weights: dict[str, float]) -> str:
    """``method · architecture · data`` (and ``· weights …`` for a method that takes task weights)."""
    if trainer is None:
        return ""
    text = f"{trainer.weighting.name} · {trainer.model.architecture} · {trainer.data.name}"
    if takes_task_weights(trainer.weighting.name):
        text += " · weights " + fmt_weights({t: weights.get(t, 1.0) for t in trainer.task_names})
    return text


def progress_text(trainer: Trainer, rate_origin: tuple[float, int] = (0.0, 0)) -> str:
    """``epoch e/E · step s/S · r steps/s · loss Σ …`` for the status line; ``r`` is the run's own rate since
    ``rate_origin`` (seconds on ``trainer.clock`` and the step then; by default the run's start)."""
    total = trainer.config.epochs * trainer.batches_per_epoch
    step = trainer.global_step
    rate = trainer.clock.steps_per_second(step, rate_origin)
    last = trainer.history.losses[-1] if trainer.history.losses else []
    loss = f" · loss Σ {sum(last):.4f}" if last else ""
    return f"epoch {trainer.epoch}/{trainer.config.epochs} · step {step}/{total} · {rate:.0f} steps/s{loss}"


class ProgressLine:
    """A trainer's callback that says ``label · progress_text`` (the trainer's own rate) at most every
    ``every`` seconds while it trains, and once at its end: the status of a run the panel trains for itself
    (a single-task baseline) rather than the one on the chart."""

    def __init__(self, trainer: Trainer, label: str, say: Callable[[str], None], every: float = 0.25) -> None:
        self.trainer = trainer
        self.label = label
        self.say = say
        self.every = every
        self.last = -math.inf  # when the line was last said (perf_counter seconds)

    def __call__(self, event: Event) -> None:
        now = time.perf_counter()
        if event.kind == "end" or (event.kind in ("step", "epoch") and now - self.last >= self.every):
            self.last = now
            self.say(f"{self.label} · {progress_text(self.trainer)}")
