"""Inverse-loss weighting: give each task a weight inversely proportional to its current loss.

Source: no single paper; dividing each loss by its own value is a folk baseline for losses of very
different scales. It is worth having because of two methods in this folder: with ``α = 1`` it is,
up to the positive factor of the normalisation, the gradient of ``Σ_t log L_t`` — the loss-scale
balancing of DB-MTL (Lin et al., 2023, "Dual-Balancing for Multi-Task Learning", arXiv:2308.12029)
and the weights IMTL-L (Liu et al., ICLR 2021) reaches when its learned scales sit at their optimum.

Update rule, for losses ``L_t`` and an exponent ``α > 0``::

    w_t = T · L_t^(−α) / Σ_k L_k^(−α)

so the weights sum to ``T`` (equal losses give every weight 1, like ``equal``) and the task with the
smallest loss gets the largest weight. The shared parameters move along ``Σ_t w_t g_t``; the
weights are recomputed every step from the detached losses and carry no state.

Computed as ``T · softmax(−α log L)``, which stays finite for losses of any scale (1e-30 next to 1e30).

Guard for ``L_t ≤ 0`` (the rule needs ``1/L_t``):

* a negative or non-finite loss raises ``ValueError`` — the rule has no meaning for it;
* a loss below ``eps`` (default ``1e-8``, zero included) is raised to ``eps``. This is the limit of
  the rule: a solved task takes almost all of the weight ``T``. Its gradient is then (nearly) zero,
  so the other tasks barely move — a known weakness of inverse weighting, visible in the lab.

Defaults: ``α = 1`` (the plain inverse, the case tied to ``Σ log L_t`` above); ``eps = 1e-8``, the
constant LibMTL and FAMO's code add inside their logarithms.
"""

from __future__ import annotations

import torch

from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses


class InverseLoss(Weighting):
    """``w_t ∝ 1 / L_t^α``, scaled so that the weights sum to the number of tasks."""

    name = "inverse_loss"
    description = "Weights ∝ 1/L_t^α, summing to T: the task with the smallest loss weighs most."
    uses_losses = True
    options = {
        "alpha": Number(low=0, low_open=True),  # power of the inverse loss
        "eps": Number(low=0, low_open=True),
    }

    def __init__(self, alpha: float = 1.0, eps: float = 1e-8) -> None:
        super().__init__(alpha=alpha, eps=eps)
        self.alpha = float(alpha)
        self.eps = float(eps)

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        values = checked_losses(self.name, losses, self.task_names).clamp(min=self.eps)
        weights = self.n_tasks * torch.softmax(-self.alpha * values.log(), dim=0)
        return Combination(weights.to(device=losses.device, dtype=losses.dtype))

    def config(self) -> dict:
        return {"name": self.name, "alpha": self.alpha, "eps": self.eps}
