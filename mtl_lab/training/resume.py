"""Exact resume: every random state of a run and its position within the epoch, captured and restored.

A run draws random numbers from four places:

* PyTorch's global generator (dropout on the CPU; the CUDA generator of the training device on a GPU),
  seeded with ``seed`` when the run starts;
* the batch-order generator (``Trainer.source.generator``, seeded with ``seed``): one permutation per epoch,
  drawn when the epoch's first batch is taken, then the data set's augmentation draws per batch;
* the method's generator (``Trainer.method_generator``, seeded with ``seed + 1``): PCGrad's order, RLW's
  weights, GradDrop's signs …;
* nothing else (the model's initial weights come from ``build_trainer``'s own fork of the generator).

:class:`RunPosition` records them all together with the number of batches already trained in the
current epoch and the batch-order generator's state *at the start of the epoch*. To resume mid-epoch,
:func:`epoch_batches` redraws the same permutation from that state, skips the batches already trained
(indexing only: no random numbers), and then sets the generator to the state it had after the last
trained batch, so augmentation draws continue where they stopped. The trainer keeps the global state
between its loops as its own (``Trainer.own_random_state``: installed for each ``fit()`` or ``advance()``, kept
after it), so code run in between (building another model, another racer's turn) cannot shift it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from mtl_lab.data.base import MaskedBatch, Split
from mtl_lab.history import History


def global_rng_state(device: torch.device) -> dict[str, torch.Tensor | None]:
    """The global generator's state, and the CUDA generator's of ``device`` when training runs there."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def set_global_rng_state(state: dict[str, torch.Tensor | None], device: torch.device) -> None:
    """Restore what :func:`global_rng_state` returned."""
    torch.set_rng_state(state["cpu"].cpu())
    if state.get("cuda") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


@dataclass
class RunPosition:
    """Where a run stands: random states and the position within the epoch (checkpoint-friendly tensors).

    In multi-input mode (:mod:`mtl_lab.training.inputs`) there is no one order generator: ``batch_rng`` and
    ``epoch_start_rng`` are ``None`` and ``streams`` holds every task stream's state."""

    global_rng: dict[str, torch.Tensor | None]
    batch_rng: torch.Tensor | None
    method_rng: torch.Tensor
    epoch_start_rng: torch.Tensor | None  # the batch generator's state when this epoch's order was drawn
    batches_done: int  # batches already trained in the current epoch
    streams: dict | None = None  # multi-input: each task stream's state (training.streams.TaskStreams)

    def to_dict(self) -> dict:
        return {
            "global_rng": self.global_rng,
            "batch_rng": self.batch_rng,
            "method_rng": self.method_rng,
            "epoch_start_rng": self.epoch_start_rng,
            "batches_done": self.batches_done,
            "streams": self.streams,
        }

    def on_cpu(self) -> RunPosition:
        """The generator states on the CPU (where ``torch.Generator`` keeps them), whatever device they came from."""
        start = self.epoch_start_rng.cpu() if self.epoch_start_rng is not None else None
        batch = self.batch_rng.cpu() if self.batch_rng is not None else None
        return RunPosition(self.global_rng, batch, self.method_rng.cpu(), start, self.batches_done, self.streams)

    @staticmethod
    def from_dict(d: dict) -> RunPosition:
        return RunPosition(d["global_rng"], d["batch_rng"], d["method_rng"], d["epoch_start_rng"], d["batches_done"],
                           d.get("streams"))


def epoch_batches(
    split: Split, batch_size: int, generator: torch.Generator, position: RunPosition
) -> Iterator[MaskedBatch] | None:
    """The current epoch's batch iterator with ``position.batches_done`` batches already taken.

    ``None`` when the epoch has not started (the next epoch's order is drawn as usual).
    """
    if position.epoch_start_rng is None:
        generator.set_state(position.batch_rng)
        return None
    generator.set_state(position.epoch_start_rng)
    batches = split.batches(batch_size, shuffle=True, generator=generator, with_mask=True)
    if position.batches_done == 0:  # the order is drawn lazily, at the first batch: nothing to skip
        return batches
    for _ in range(position.batches_done):
        next(batches)
    generator.set_state(position.batch_rng)
    return batches


def record_continuation(history: History, optimizer: torch.optim.Optimizer, changes: dict[str, tuple], step: int,
                        old_file: bool) -> None:
    """A checkpoint continued with new settings (``Trainer.load(continue_with=...)``): the new lr goes into the
    optimiser; every change becomes a note and replaces its value in ``meta["config"]``."""
    for name, (before, after) in changes.items():
        if name == "lr":
            for group in optimizer.param_groups:
                group["lr"] = after
        history.add_note({"step": step, "note": f"continued with {name} {before} → {after}"})
        with history.lock:
            history.meta.setdefault("config", {})[name] = after
    if old_file:
        history.add_note({"step": step, "note": "checkpoint saved without its settings (an older file): only its "
                          "identity and model shapes were checked"})
