"""Independent extra mini-batches for methods that need several per step (SDMGrad, MoDo).

Some stochastic multi-objective methods are unbiased only when their weights are computed from
gradients of *independent* mini-batches: with ``G_ξ`` and ``G_ξ'`` the per-task gradient matrices of two
batches ``ξ, ξ'`` drawn independently, ``E[G_ξ G_ξ'ᵀ] = E[G] E[G]ᵀ`` — whereas ``E[G_ξ G_ξᵀ]`` adds each
gradient's variance to the diagonal. Such a method says so with ``requires = "cross_gramian"`` (see
:mod:`mtl_lab.weighting.base`): it gets the ``[T, T]`` matrix ``A = G_ξ G_ξ'ᵀ`` and returns weights, which
the Trainer applies to the losses of the step's own batch ``ζ`` — **three** batches per step.

:class:`ExtraBatches` draws ``ξ`` and ``ξ'`` from the training split with its own seeded generator
(``seed + 2``), reshuffled whenever it runs out, so the Trainer's own batch order — and with it the epochs,
the records and every other method's run — is unchanged. The price: each step does two more forward
and ``T`` backward passes through the model per extra batch, about 3× the work of a loss-weighted step.
The training augmentation is not applied to the extra batches. Like the Trainer's own batches, they carry the
label masks (:mod:`mtl_lab.training.masks`): each task's loss on an extra batch is the mean over its labelled rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from mtl_lab.data.base import MaskedBatch, Split
from mtl_lab.gradients import task_gradients

EXTRA_SEED_OFFSET = 2  # the batch order uses seed, the method's generator seed + 1


class ExtraBatches:
    """A seeded, endless stream of training batches, independent of the Trainer's own."""

    def __init__(self, split: Split, batch_size: int, seed: int) -> None:
        self.split = split
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed + EXTRA_SEED_OFFSET)
        self.iterator: Iterator | None = None
        self.pass_start: torch.Tensor | None = None  # the generator's state when this pass's order was drawn
        self.taken = 0  # batches taken in this pass

    def next(self) -> MaskedBatch:
        """The next batch ``(x, {task: y}, {task: mask})``; a new shuffled pass starts when one ends."""
        for _ in range(2):
            if self.iterator is None:
                self.pass_start, self.taken = self.generator.get_state(), 0
                self.iterator = self.pass_batches()
            try:
                batch = next(self.iterator)
                self.taken += 1
                return batch
            except StopIteration:
                self.iterator = None
        raise ValueError("the training split yields no batches")

    def pass_batches(self) -> Iterator[MaskedBatch]:
        """One shuffled pass over the split, drawn from this stream's generator, with the label masks."""
        return iter(self.split.batches(self.batch_size, shuffle=True, generator=self.generator, with_mask=True))

    def state_dict(self) -> dict:
        """Where the stream stands (for an exact resume): the pass's start state, batches taken, the generator."""
        start = None if self.iterator is None else self.pass_start
        return {"pass_start": start, "taken": self.taken, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where :meth:`state_dict` left off (the pass's order is drawn again, then skipped)."""
        self.iterator, self.taken, self.pass_start = None, 0, None
        if state["pass_start"] is not None:
            self.generator.set_state(state["pass_start"])
            self.pass_start = state["pass_start"]
            self.iterator = self.pass_batches()
            for _ in range(state["taken"]):
                next(self.iterator)
            self.taken = state["taken"]
        self.generator.set_state(state["rng"])

    def gradients(self, model: torch.nn.Module, compute_losses: Callable, shared: list, heads: list) -> torch.Tensor:
        """``G[T, P]``: the per-task gradients of the shared parameters on the next extra batch, each task's
        loss over its labelled rows (``compute_losses(outputs, targets, masks)``)."""
        x, targets, masks = self.next()
        losses = compute_losses(model(x), targets, masks)
        G, _ = task_gradients(losses, shared, heads, retain_graph=False)
        return G

    def cross_gramian(
        self, model: torch.nn.Module, compute_losses: Callable, shared: list, heads: list
    ) -> torch.Tensor:
        """``A = G_ξ G_ξ'ᵀ`` ``[T, T]`` from two independent extra batches."""
        first = self.gradients(model, compute_losses, shared, heads)
        second = self.gradients(model, compute_losses, shared, heads)
        return first @ second.T
