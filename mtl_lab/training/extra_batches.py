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
In multi-input mode (:mod:`mtl_lab.training.inputs`) an extra batch is one batch per task, each from the task's
own rows and its own stream (:class:`~mtl_lab.training.streams.TaskStreams`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mtl_lab.data.base import MaskedBatch, Split
from mtl_lab.data.multi_input import TaskSplits
from mtl_lab.gradients import task_gradients
from mtl_lab.training.inputs import SHARED_INPUTS, InputMode

EXTRA_SEED_OFFSET = 2  # the batch order uses seed, the method's generator seed + 1


class ExtraBatches:
    """A seeded, endless stream of training batches, independent of the Trainer's own
    (:mod:`mtl_lab.training.streams`); in multi-input mode one batch per task from that task's rows."""

    def __init__(self, split: Split | TaskSplits, batch_size: int, seed: int,
                 inputs: InputMode = SHARED_INPUTS) -> None:
        self.inputs = inputs
        self.stream = inputs.stream(split, batch_size, seed + EXTRA_SEED_OFFSET)

    def next(self) -> MaskedBatch:
        """The next batch ``(x, {task: y}, {task: mask})``; a new shuffled pass starts when one ends."""
        return self.stream.next()

    def state_dict(self) -> dict:
        """Where the stream stands (for an exact resume; :meth:`EndlessBatches.state_dict`)."""
        return self.stream.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where :meth:`state_dict` left off."""
        self.stream.load_state_dict(state)

    def gradients(self, model: torch.nn.Module, compute_losses: Callable, shared: list, heads: list) -> torch.Tensor:
        """``G[T, P]``: the per-task gradients of the shared parameters on the next extra batch, each task's
        loss over its labelled rows (``compute_losses(outputs, targets, masks)``)."""
        x, targets, masks = self.next()
        losses = compute_losses(self.inputs.outputs(model, x), targets, masks)
        G, _ = task_gradients(losses, shared, heads, retain_graph=False)
        return G

    def cross_gramian(
        self, model: torch.nn.Module, compute_losses: Callable, shared: list, heads: list
    ) -> torch.Tensor:
        """``A = G_ξ G_ξ'ᵀ`` ``[T, T]`` from two independent extra batches."""
        first = self.gradients(model, compute_losses, shared, heads)
        second = self.gradients(model, compute_losses, shared, heads)
        return first @ second.T
