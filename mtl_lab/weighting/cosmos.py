"""COSMOS scalarisation: a preference-weighted sum of the losses, rewarded for pointing along the preference.

Paper: Michael Ruchte and Josif Grabocka, "Scalable Pareto Front Approximation for Deep Multi-Objective
Learning", ICDM 2021 (arXiv:2103.13392), the objective of their Equation 3.

Update rule. With the preference ``r[T]`` (numbers ≥ 0) and penalty ``λ``::

    minimise  s(L) = rᵀL − λ cos(r, L) = rᵀL − λ rᵀL / (‖r‖ ‖L‖)

The shared parameters move along ``∇s = Σ_t w_t g_t`` with the effective weights (the chain rule)::

    w = ∂s/∂L = r − λ [ r / (‖r‖ ‖L‖) − (rᵀL) L / (‖r‖ ‖L‖³) ]

The cosine term pulls the loss vector towards the direction ``r``, which a linear scalarisation alone
does not do on a non-convex front. The full COSMOS method also feeds ``r`` to the model as an extra
input and draws a fresh ``r`` from a Dirichlet distribution each step, so that one model learns the whole
front; this module is the objective for one fixed ``r`` (the preference-conditioned model is Pareto-set
learning, a model choice rather than a weighting).

Defaults and their origin: ``preference = None`` is ``r = (1, …, 1)``. ``penalty = 1.0``: the paper
tunes λ per data set (between 0.01 and 8) and gives no general default; 1 is this lab's middle choice.
TorchJD 0.18's ``scalarization.COSMOS(lambda_, weights)`` is the same ``s``; its autograd gradient at
``L`` is our ``w`` (tested). Losses must be ≥ 0 and not all 0 (the cosine needs ``‖L‖ > 0``).
"""

from __future__ import annotations

import torch

from mtl_lab.validate import Number, TaskWeights
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses, preference_vector


def cosmos_weights(losses: torch.Tensor, r: torch.Tensor, penalty: float) -> torch.Tensor:
    """``∂/∂L [rᵀL − λ rᵀL/(‖r‖‖L‖)]`` at ``losses`` (float64 vectors)."""
    norm_r, norm_L = torch.linalg.norm(r), torch.linalg.norm(losses)
    cosine_gradient = r / (norm_r * norm_L) - (r @ losses) * losses / (norm_r * norm_L**3)
    return r - penalty * cosine_gradient


class COSMOS(Weighting):
    """Preference-weighted sum of the losses minus λ × their cosine with the preference."""

    name = "cosmos"
    description = "COSMOS: preference-weighted loss sum minus λ·cos(preference, losses) (Ruchte & Grabocka 2021)."
    uses_losses = True
    options = {
        "preference": TaskWeights(),  # r: one number ≥ 0 per task, not all 0 (None: all 1)
        "penalty": Number(low=0),  # λ on the cosine; 0 is the linear scalarisation rᵀL
    }

    def __init__(self, preference: list[float] | None = None, penalty: float = 1.0) -> None:
        super().__init__(preference=preference, penalty=penalty)
        self.preference = None if preference is None else list(preference)
        self.penalty = float(penalty)
        self.r: torch.Tensor | None = None

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.r = preference_vector(self.name, self.preference, self.task_names)

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        values = checked_losses(self.name, losses, self.task_names)
        if not bool((values > 0).any()):
            raise ValueError(f"{self.name} needs the cosine of the losses with the preference: not every loss may be 0")
        weights = cosmos_weights(values, self.r, self.penalty)
        return Combination(weights.to(device=losses.device, dtype=losses.dtype))

    def config(self) -> dict:
        return {"name": self.name, "preference": self.preference, "penalty": self.penalty}
