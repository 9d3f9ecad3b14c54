"""PBI scalarisation: distance along the preference direction plus θ × the distance from it.

Paper: Qingfu Zhang and Hui Li, "MOEA/D: A Multiobjective Evolutionary Algorithm Based on
Decomposition", IEEE Transactions on Evolutionary Computation 11(6), 2007 — the penalty-based boundary
intersection (PBI) approach of its Section II-C.

Update rule. With the unit preference direction ``ŵ = r/‖r‖`` and the ideal point ``z* = 0`` (losses
are ≥ 0, so 0 is a lower bound)::

    d₁ = Lᵀŵ                      (how far along the preference ray the loss vector is)
    d₂ = ‖L − d₁ ŵ‖               (how far it is from the ray)
    minimise  d₁ + θ d₂

The shared parameters move along ``Σ_t w_t g_t`` with the effective weights ``w = ∂/∂L (d₁ + θ d₂)``::

    w = ŵ + θ (L − d₁ŵ) / d₂

The second term can make a weight negative: PBI raises a loss that is below the ray to bring the loss
vector back onto it — the penalty θ sets how hard. On the ray (``d₂ = 0``) the norm has no gradient;
as in TorchJD a constant ``ε = 1e-12`` is added under the square root, ``d₂ = √(‖L − d₁ŵ‖² + ε)``.

Defaults and their origin: ``theta = 5.0`` (the paper's experiments); ``preference = None`` is
``r = (1, …, 1)``. TorchJD 0.18's ``scalarization.PBI(theta, weights)`` is the same function; its
autograd gradient at ``L`` is our ``w`` (tested).
"""

from __future__ import annotations

import torch

from mtl_lab.validate import Number, TaskWeights
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses, preference_vector

EPSILON = 1e-12  # under the square root of d₂, as in TorchJD: a finite gradient on the ray


def pbi_weights(losses: torch.Tensor, r: torch.Tensor, theta: float) -> torch.Tensor:
    """``∂/∂L [d₁ + θ d₂]`` at ``losses`` (float64 vectors)."""
    direction = r / torch.linalg.norm(r)
    perpendicular = losses - (losses @ direction) * direction
    d2 = torch.sqrt(perpendicular @ perpendicular + EPSILON)
    return direction + theta * perpendicular / d2


class PBI(Weighting):
    """Penalty-based boundary intersection: reach the preference ray, then go down along it."""

    name = "pbi"
    description = "PBI: distance along the preference ray plus θ × the distance from it (Zhang & Li 2007)."
    uses_losses = True
    options = {
        "preference": TaskWeights(),  # r: one number ≥ 0 per task, not all 0 (None: all 1)
        "theta": Number(low=0),  # penalty on the distance from the ray; 0 is the projection on it
    }

    def __init__(self, preference: list[float] | None = None, theta: float = 5.0) -> None:
        super().__init__(preference=preference, theta=theta)
        self.preference = None if preference is None else list(preference)
        self.theta = float(theta)
        self.r: torch.Tensor | None = None

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.r = preference_vector(self.name, self.preference, self.task_names)

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        values = checked_losses(self.name, losses, self.task_names)
        weights = pbi_weights(values, self.r, self.theta)
        return Combination(weights.to(device=losses.device, dtype=losses.dtype))

    def config(self) -> dict:
        return {"name": self.name, "preference": self.preference, "theta": self.theta}
