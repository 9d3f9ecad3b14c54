"""Geometric Loss Strategy (GLS): minimise the geometric mean of the task losses.

Paper: Sumanth Chennupati, Ganesh Sistu, Senthil Yogamani, Samir A. Rawashdeh, "MultiNet++:
Multi-Stream Feature Aggregation and Geometric Loss Strategy for Multi-Task Learning", CVPR
Workshops (WAD) 2019.

Objective: ``(Π_t L_t)^(1/T)``. Its gradient is a weighted sum of the task gradients, with the
**effective weights**::

    w_t = ∂(Π_k L_k)^(1/T) / ∂L_t = (Π_k L_k)^(1/T) / (T · L_t)

So a task with a small loss gets a large weight (like inverse-loss weighting) and all weights
shrink with the geometric mean. Multiplying one task's loss by a constant ``c`` only multiplies the
whole update by ``c^(1/T)``: the direction does not depend on the loss scales — the point of the
paper. The update is that of ``Σ_t log L_t`` (weights ``1/L_t``) scaled by ``(Π L)^(1/T) / T``.

Computed in log space, ``w_t = exp(mean_k log L_k − log L_t) / T``, which stays finite for losses of
very different scales. No state.

Guards: a negative or non-finite loss raises ``ValueError`` (the geometric mean needs ``L_t ≥ 0``).
A loss below ``eps`` (default ``1e-8``, zero included) is raised to ``eps``: at ``L_t = 0`` the true
gradient is infinite for that task and zero for the others; with the floor the solved task takes a
large weight and the others a small one — the known fragility of GLS near a zero loss. A weight that
does not fit the losses' dtype raises ``ValueError`` instead of returning ``inf``.

TorchJD's ``scalarization.GeometricMean`` is the same objective (tests compare the weights with
its gradient); it has no floor, so a zero loss gives it a NaN gradient where this gives finite weights.

Defaults: ``eps = 1e-8``, the constant LibMTL and FAMO's code add inside their logarithms.
"""

from __future__ import annotations

import math

import torch

from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses


class GLS(Weighting):
    """Gradient of the geometric mean of the losses: ``w_t = (Π L)^(1/T) / (T L_t)``."""

    name = "gls"
    description = "Geometric Loss Strategy: minimise (Π_t L_t)^(1/T), scale-free (Chennupati et al. 2019)."
    uses_losses = True
    options = {
        "eps": Number(low=0, low_open=True),
    }

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__(eps=eps)
        self.eps = float(eps)

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        log_losses = checked_losses(self.name, losses, self.task_names).clamp(min=self.eps).log()
        weights = torch.exp(log_losses.mean() - log_losses) / self.n_tasks
        out = weights.to(device=losses.device, dtype=losses.dtype)
        if not bool(torch.isfinite(out).all()):
            raise ValueError(
                f"gls: the weights {weights.tolist()} overflow {losses.dtype} (loss scales too far apart); "
                "use float64 losses or a larger eps"
            )
        info = {"geometric_mean": math.exp(log_losses.mean().item())}
        return Combination(out, info=info)

    def config(self) -> dict:
        return {"name": self.name, "eps": self.eps}
