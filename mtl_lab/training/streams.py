"""Endless, seeded batch streams with an exact resume: one over a split, or one per task (multi-input).

:class:`EndlessBatches` goes through a split in shuffled passes, drawing each pass's order from its own
seeded generator when the pass's first batch is taken, and starts a new pass when one runs out. Its
:meth:`~EndlessBatches.state_dict` holds the generator's state at the start of the pass, the batches taken
in it and the generator's state now, so :meth:`~EndlessBatches.load_state_dict` redraws the same order,
skips the batches taken (indexing only; a streamed split reads and drops them) and continues with the
same random numbers — the augmentation's too, when the stream applies one (``augment(x, targets, g)``
draws from the stream's generator after each batch).

Uses: the extra batches of SDMGrad/MoDo and the validation batches of Auto-λ (independent of the
Trainer's own order, :mod:`mtl_lab.training.extra_batches`), and in multi-input mode every task's own
training batches (:class:`TaskStreams`, :mod:`mtl_lab.training.inputs`). Task ``k`` of a
:class:`TaskStreams` seeded with ``s`` draws from ``s + TASK_SEED_STRIDE · k``: the streams of different
uses (training ``seed``, extra batches ``seed + 2``, look-ahead ``seed + 3``) never share a generator.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from mtl_lab.data.base import Augment, MaskedBatch, Split
from mtl_lab.data.multi_input import TaskSplits

TASK_SEED_STRIDE = 1000


class EndlessBatches:
    """A seeded, endless stream of shuffled ``(x, {task: y}, {task: mask})`` batches of one split."""

    def __init__(self, split: Split, batch_size: int, seed: int, augment: Augment | None = None) -> None:
        self.split = split
        self.batch_size = batch_size
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed)
        self.iterator: Iterator | None = None
        self.pass_start: torch.Tensor | None = None  # the generator's state when this pass's order was drawn
        self.taken = 0  # batches taken in this pass

    def next(self) -> MaskedBatch:
        """The next batch; a new shuffled pass starts when one ends."""
        for _ in range(2):
            if self.iterator is None:
                self.pass_start, self.taken = self.generator.get_state(), 0
                self.iterator = self.pass_batches()
            batch = next(self.iterator, None)
            if batch is not None:
                self.taken += 1
                if self.augment is None:
                    return batch
                x, y = self.augment(batch[0], batch[1], self.generator)
                return x, y, batch[2]
            self.iterator = None
        raise ValueError(f"a split of {len(self.split)} rows yields no batches")

    def pass_batches(self) -> Iterator[MaskedBatch]:
        """One shuffled pass over the split, drawn from this stream's generator, with the label masks."""
        return iter(self.split.batches(self.batch_size, shuffle=True, generator=self.generator, with_mask=True))

    def state_dict(self) -> dict:
        """Where the stream stands: the pass's start state, the batches taken in it, the generator now."""
        start = None if self.iterator is None else self.pass_start
        return {"pass_start": start, "taken": self.taken, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where :meth:`state_dict` left off (the pass's order is drawn again, then skipped)."""
        self.iterator, self.taken, self.pass_start = None, 0, None
        if state["pass_start"] is not None:
            self.pass_start = state["pass_start"].cpu()
            self.generator.set_state(self.pass_start)
            self.iterator = self.pass_batches()
            for _ in range(state["taken"]):
                next(self.iterator)
            self.taken = state["taken"]
        self.generator.set_state(state["rng"].cpu())


class TaskStreams:
    """One :class:`EndlessBatches` per task over that task's own rows; a batch is one batch of each task,
    ``({task: x_t}, {task: y_t}, {task: mask_t})`` (masks only where a task's rows miss labels)."""

    def __init__(self, splits: TaskSplits, batch_size: int, seed: int, augment: Augment | None = None) -> None:
        self.streams: dict[str, EndlessBatches] = {}
        for k, (task, split) in enumerate(splits.items()):
            if len(split) == 0:
                raise ValueError(f"task {task!r} has no rows in this split, so it has no batch to draw")
            self.streams[task] = EndlessBatches(split, batch_size, seed + TASK_SEED_STRIDE * k, augment)

    def next(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        xs, ys, masks = {}, {}, {}
        for task, stream in self.streams.items():
            xs[task], y, mask = stream.next()
            ys[task] = y[task]
            if task in mask:
                masks[task] = mask[task]
        return xs, ys, masks

    def generators(self) -> list[torch.Generator]:
        return [s.generator for s in self.streams.values()]

    def state_dict(self) -> dict:
        return {task: s.state_dict() for task, s in self.streams.items()}

    def load_state_dict(self, state: dict) -> None:
        for task, s in self.streams.items():
            s.load_state_dict(state[task])
