"""The validation lookahead of bilevel weighting methods (Auto-λ): ``∂ L_val(θ − α∇Σ_t w_t L_t) / ∂w``.

A method with ``requires = "lookahead"`` (see :mod:`mtl_lab.weighting.base`) learns its task weights ``w``
so that one training step with them lowers the **validation** loss. At every step the Trainer takes a
batch ``v`` from the validation split (:class:`~mtl_lab.training.extra_batches.ExtraBatches` over ``data.val``,
its own seeded order) and computes, at the method's current weights::

    θ'      = θ − α Σ_t w_t ∇_θ L_t(θ)                 (a virtual SGD step on the training batch, α = the lr)
    H_t     = ∂ L_val(θ') / ∂w_t = −α ∇_θ L_t(θ) · ∇_θ' L_val(θ')      (chain rule; exact)
    L_val   = Σ_t L_t^val                               (every task is a primary task)

with ``θ`` every trainable parameter (shared and task-specific). The Auto-λ paper approximates the
mixed second derivative by finite differences (the DARTS trick: ``(L_t(θ + εu) − L_t(θ − εu))/2ε``
with ``u = ∇_θ' L_val``); since ``∂/∂w_t ∇_θ Σ w L = ∇_θ L_t``, the term is exactly ``G u``, computed
here from the per-task gradients ``G`` of the training batch.

Extra cost per step, on top of the training step: ``T`` backward passes for ``G`` (over all parameters),
one forward and one backward pass on the validation batch at ``θ'`` — about ``T + 2`` times the
backward work of a loss-weighted step. The validation batches are read every step, so the
validation split also steers training: its epoch-end numbers are no longer an independent check
(keep the test split for that). The validation batches carry their label masks, as every batch stream does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import functional_call

from mtl_lab.data.base import MaskedBatch
from mtl_lab.gradients import task_gradients
from mtl_lab.training.extra_batches import ExtraBatches
from mtl_lab.training.inputs import SHARED_INPUTS, InputMode


def lookahead_hypergradient(
    model: torch.nn.Module,
    compute_losses: Callable,
    losses: list[torch.Tensor],
    weights: torch.Tensor,
    lr: float,
    validation: MaskedBatch,
    inputs: InputMode = SHARED_INPUTS,
    whole_gradients: Callable[[torch.Tensor], torch.Tensor] = lambda G: G,
) -> torch.Tensor:
    """``H[T]``, ``H_t = −α ∇_θ L_t(θ) · ∇_θ' L_val(θ')`` (see the module docstring); ``losses`` keep their graph.
    ``inputs``: how the validation batch's outputs are computed (one forward pass per task in multi-input mode);
    ``whole_gradients``: the whole batch's ``G`` from this rank's share (data parallelism: the average over the
    ranks, so that every rank takes the same virtual step and gets the one-process ``H``)."""
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    params = [p for p in model.parameters() if p.requires_grad]
    T = len(losses)
    G, _ = task_gradients(losses, params, [[] for _ in range(T)], retain_graph=True)  # [T, P] over all parameters
    G = whole_gradients(G)
    step = weights.detach().to(G.dtype) @ G
    virtual, offset = {}, 0
    for name, p in zip(names, params):
        virtual[name] = (p.detach() - lr * step[offset : offset + p.numel()].view_as(p)).requires_grad_(True)
        offset += p.numel()
    x, targets, masks = validation  # each task's validation loss over its labelled rows
    outputs = inputs.outputs(lambda rows: functional_call(model, virtual, (rows,)), x)
    val_loss = torch.stack(compute_losses(outputs, targets, masks)).sum()
    u = torch.autograd.grad(val_loss, list(virtual.values()), allow_unused=True)
    u = torch.cat([torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1) for p, g in zip(params, u)])
    return -lr * (G @ u)


class Lookahead:
    """The validation batches of a lookahead method, and its hypergradient at each step."""

    def __init__(self, validation_split, batch_size: int, seed: int, inputs: InputMode = SHARED_INPUTS) -> None:
        if len(validation_split) < 1:
            raise ValueError("a lookahead method (auto_lambda) needs a non-empty validation split")
        self.inputs = inputs
        # its own order, not the extra batches'; multi-input: one validation batch per task
        self.batches = ExtraBatches(validation_split, batch_size, seed + 1, inputs)

    def hypergradient(self, model, compute_losses, losses, weights: torch.Tensor, lr: float,
                      whole_gradients: Callable[[torch.Tensor], torch.Tensor] = lambda G: G) -> torch.Tensor:
        return lookahead_hypergradient(model, compute_losses, losses, weights, lr, self.batches.next(), self.inputs,
                                       whole_gradients)
