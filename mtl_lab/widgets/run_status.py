"""What the lab says about a run: the chart's title and the status line's progress text.

The title names the method, architecture and data (and the weights of a method that takes them); the
progress line gives epoch, step, the rate since ``rate_origin`` (the moment and step a run started or went
on) and the last summed training loss.
"""

from __future__ import annotations

import time

from mtl_lab.training import Trainer
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


def progress_text(trainer: Trainer, rate_origin: tuple[float, int]) -> str:
    """``epoch e/E · step s/S · r steps/s · loss Σ …`` for the status line."""
    total = trainer.config.epochs * trainer.batches_per_epoch
    step = trainer.global_step
    started, origin = rate_origin
    elapsed = time.perf_counter() - started
    rate = (step - origin) / elapsed if elapsed > 0 else 0.0
    last = trainer.history.losses[-1] if trainer.history.losses else []
    loss = f" · loss Σ {sum(last):.4f}" if last else ""
    return f"epoch {trainer.epoch}/{trainer.config.epochs} · step {step}/{total} · {rate:.0f} steps/s{loss}"
