"""Where a step's inputs come from: rows all tasks share, or each task its own (multi-input mode).

The Trainer picks one of two strategies when it is built (:func:`input_mode`, from the data's form):

================  ===========================================  ========================================================
                  :class:`SharedInputs` (``MultiTaskData``)    :class:`PerTaskInputs` (``MultiInputData``)
================  ===========================================  ========================================================
a step's batch    ``B`` rows of the training split, each with  ``B`` rows of **each task's own** training rows,
                  every task's label (or a label mask)         ``({t: x_t}, {t: y_t}, masks)``
order             one shuffled order per epoch                 each task its own endless stream, its own seeded
                  (:class:`SharedEpochs`)                      order, a new pass when it runs out (:class:`TaskEpochs`)
an epoch          ``⌈N / B⌉`` steps                            ``max_t ⌈N_t / B⌉`` steps (the largest task's pass;
                                                               smaller tasks' streams restart)
outputs           ``model(x)``: one forward pass               ``model(x_t)[t]`` for each task ``t``: task ``t``'s
                                                               loss reads only its own forward pass
data parallelism  each rank its rows of the batch              each rank its rows of every task's batch
evaluation        the split's rows, every task                 each task on its own rows of the split
================  ===========================================  ========================================================

In multi-input mode (LibMTL's ``multi_input``; Lin and Zhang, "LibMTL", JMLR 2023) ``L_t`` depends only on
task ``t``'s own forward pass, so the per-task gradient engine (``G[T, P]``, one backward pass per task) and
every path built on it work unchanged: loss weighting, gradient methods, the extra batches of SDMGrad/MoDo
(one batch per task from the task's own stream) and Auto-λ's look-ahead (one validation batch per task).
Refused up front (:func:`mtl_lab.validate.check_multi_input`): the representation gradients and the
linear-layer Gramian, which need one forward pass over rows every task shares. Each task's forward pass
computes every head on ``x_t`` (any architecture works, soft sharing included); only head ``t``'s output is
kept, so task ``t``'s loss reaches task ``t``'s head and the shared parameters only.

The exact resume of each: :class:`SharedEpochs` stores the order generator's state at the epoch's start
and the batches taken (:mod:`mtl_lab.training.resume`); :class:`TaskEpochs` stores every task stream's
state (:mod:`mtl_lab.training.streams`) under ``position["streams"]`` of ``Trainer.state_dict``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeAlias

import torch

from mtl_lab import validate
from mtl_lab.data.base import Augment, MaskedBatch, MultiTaskData, Split
from mtl_lab.data.multi_input import MultiInputData, TaskSplits
from mtl_lab.models.base import MultiTaskModel
from mtl_lab.tasks import Task
from mtl_lab.training.evaluation import evaluate_rows
from mtl_lab.training.parallel import Parallel
from mtl_lab.training.resume import RunPosition, epoch_batches
from mtl_lab.training.streams import EndlessBatches, TaskStreams

Forward = Callable[[torch.Tensor], dict[str, torch.Tensor]]  # the model, or the model at other parameters
Tensors = dict[str, torch.Tensor]


class SharedEpochs:
    """The training batches of shared rows: one shuffled order per epoch, drawn from ``generator``."""

    def __init__(self, split: Split, batch_size: int, seed: int, augment: Augment | None) -> None:
        self.split = split
        self.batch_size = batch_size
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed)
        self.iterator = None
        self.epoch_start: torch.Tensor | None = None  # the generator's state when this epoch's order was drawn
        self.steps_per_epoch = math.ceil(len(split) / batch_size)

    def next(self) -> MaskedBatch | None:
        """The epoch's next batch (the order is drawn at its first); ``None`` when the epoch has none left."""
        if self.iterator is None:
            self.epoch_start = self.generator.get_state()
            self.iterator = self.split.batches(self.batch_size, shuffle=True, generator=self.generator,
                                               with_mask=True)
        batch = next(self.iterator, None)
        if batch is None or self.augment is None:
            return batch
        x, y = self.augment(batch[0], batch[1], self.generator)
        return x, y, batch[2]

    def end_epoch(self) -> None:
        self.iterator, self.epoch_start = None, None

    def generators(self) -> list[torch.Generator]:
        return [self.generator]

    def position(self) -> dict:
        """This source's part of :class:`~mtl_lab.training.resume.RunPosition`."""
        return {"batch_rng": self.generator.get_state(), "epoch_start_rng": self.epoch_start, "streams": None}

    def resume(self, position: RunPosition) -> None:
        self.epoch_start = position.epoch_start_rng
        self.iterator = epoch_batches(self.split, self.batch_size, self.generator, position)


class TaskEpochs:
    """The training batches of multi-input data: one batch from each task's own endless stream; an epoch is
    ``max_t ⌈N_t / B⌉`` steps (LibMTL's rule), and a stream that runs out starts a new pass at once."""

    def __init__(self, splits: TaskSplits, batch_size: int, seed: int, augment: Augment | None) -> None:
        self.streams = TaskStreams(splits, batch_size, seed, augment)
        self.steps_per_epoch = max(math.ceil(n / batch_size) for n in splits.sizes().values())

    def next(self) -> MaskedBatch:
        return self.streams.next()

    def end_epoch(self) -> None:
        """Nothing to reset: every stream goes on where it stands."""

    def generators(self) -> list[torch.Generator]:
        return self.streams.generators()

    def position(self) -> dict:
        return {"batch_rng": None, "epoch_start_rng": None, "streams": self.streams.state_dict()}

    def resume(self, position: RunPosition) -> None:
        self.streams.load_state_dict(position.streams)


BatchSource: TypeAlias = "SharedEpochs | TaskEpochs"


class SharedInputs:
    """Every task reads the same rows: one forward pass per batch (the ordinary form)."""

    name = "shared"

    def check(self, method: str, requires: str, rep_grads: bool, gradient_path: str) -> None:
        """Every path applies."""

    def train_sizes(self, data: MultiTaskData) -> list[int]:
        """The rows of each training stream (``--nproc`` checks that every batch can be shared out)."""
        return [len(data.train)]

    def source(self, data: MultiTaskData, batch_size: int, seed: int, augment: Augment | None) -> SharedEpochs:
        return SharedEpochs(data.train, batch_size, seed, augment)

    def stream(self, split: Split, batch_size: int, seed: int) -> EndlessBatches:
        """An endless stream of a split (extra batches, the look-ahead's validation batches)."""
        return EndlessBatches(split, batch_size, seed)

    def outputs(self, forward: Forward, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return forward(x)

    def shard(self, parallel: Parallel, x: torch.Tensor, targets: Tensors, masks: Tensors | None) -> MaskedBatch:
        """This rank's rows of the batch (:mod:`mtl_lab.training.parallel`)."""
        return parallel.shard(x, targets, masks)

    def evaluate(self, model: MultiTaskModel, data: MultiTaskData, tasks: list[Task], split: str, batch_size: int,
                 pixel_batch_size: int | None) -> tuple[dict[str, float], dict[str, float]]:
        return evaluate_rows(model, getattr(data, split), tasks, batch_size, pixel_batch_size)


class PerTaskInputs:
    """Each task reads its own rows: one forward pass per task (multi-input mode; see the module docstring)."""

    name = "multi_input"

    def check(self, method: str, requires: str, rep_grads: bool, gradient_path: str) -> None:
        validate.check_multi_input(method, requires, rep_grads, gradient_path)

    def train_sizes(self, data: MultiInputData) -> list[int]:
        return list(data.train.sizes().values())

    def source(self, data: MultiInputData, batch_size: int, seed: int, augment: Augment | None) -> TaskEpochs:
        return TaskEpochs(data.train, batch_size, seed, augment)

    def stream(self, splits: TaskSplits, batch_size: int, seed: int) -> TaskStreams:
        return TaskStreams(splits, batch_size, seed)

    def outputs(self, forward: Forward, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Task ``t``'s output on its own inputs ``x[t]``, for every task."""
        return {task: forward(rows)[task] for task, rows in x.items()}

    def shard(self, parallel: Parallel, x: Tensors, targets: Tensors, masks: Tensors | None) -> MaskedBatch:
        """This rank's rows of every task's batch."""
        return parallel.shard_tasks(x, targets, masks)

    def evaluate(self, model: MultiTaskModel, data: MultiInputData, tasks: list[Task], split: str, batch_size: int,
                 pixel_batch_size: int | None) -> tuple[dict[str, float], dict[str, float]]:
        """Each task's loss and metric on its own rows of ``split`` (``nan`` for a task with none there)."""
        losses, metrics = {}, {}
        for task in tasks:
            loss, metric = evaluate_rows(model, getattr(data, split)[task.name], [task], batch_size, pixel_batch_size)
            losses[task.name], metrics[task.name] = loss.get(task.name, math.nan), metric.get(task.name, math.nan)
        return losses, metrics


InputMode: TypeAlias = "SharedInputs | PerTaskInputs"
SHARED_INPUTS = SharedInputs()


def input_mode(data: MultiTaskData | MultiInputData) -> SharedInputs | PerTaskInputs:
    """The strategy for ``data``'s form: per-task inputs for :class:`MultiInputData`, shared rows otherwise."""
    return PerTaskInputs() if isinstance(data, MultiInputData) else SHARED_INPUTS
