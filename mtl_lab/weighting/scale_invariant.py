"""Scale-invariant loss: minimise ``Σ_t log L_t``, so that no task wins by the units of its loss.

Source: the "scale-invariant" (SI) baseline of Aviv Navon et al., "Multi-Task Learning as a Bargaining
Game", ICML 2022 (Section 6), also used as the warm-up objective of STCH's official code.

Update rule. ``∇ Σ_t log L_t = Σ_t g_t / L_t``, so the effective weights are::

    w_t = 1 / L_t

Multiplying one loss by a constant ``c`` adds ``log c`` to the objective and leaves its gradient — the
step — unchanged: the method is invariant to the scale of each loss (not to that of its gradient).
Unlike ``inverse_loss`` (which rescales the weights to sum to ``T``), the weights are not normalised:
this is exactly the gradient of the objective, and the step grows as the losses shrink.

Guards: losses must be finite and ``≥ 0`` (``ValueError`` naming the task otherwise); a loss below
``eps`` is raised to ``eps`` (default ``1e-8``, the constant FAMO's and LibMTL's code add inside their
logarithms), so a solved task gets the finite weight ``1/eps``.
"""

from __future__ import annotations

import torch

from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses


class ScaleInvariant(Weighting):
    """``w_t = 1/L_t``: the gradient of ``Σ_t log L_t``."""

    name = "scale_invariant"
    description = "Scale-invariant loss Σ log L_t: weights 1/L_t, no task wins by its loss's units (SI)."
    uses_losses = True
    options = {
        "eps": Number(low=0, low_open=True),
    }

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__(eps=eps)
        self.eps = float(eps)

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        values = checked_losses(self.name, losses, self.task_names)
        weights = 1.0 / values.clamp(min=self.eps)
        return Combination(weights.to(device=losses.device, dtype=losses.dtype))

    def config(self) -> dict:
        return {"name": self.name, "eps": self.eps}
