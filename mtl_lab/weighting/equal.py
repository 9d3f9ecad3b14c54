"""Equal weighting: the plain sum of task losses.

Update rule: ``w_t = 1`` for every task, so the shared parameters move along
``∇ Σ_t L_t = Σ_t g_t``. This is the baseline every other method is compared with
(called "EW" in LibMTL and "Mean"/"Sum" in TorchJD, up to the factor ``1/T``).
"""

from __future__ import annotations

import torch

from mtl_lab.weighting.base import Combination, StepContext, Weighting


class Equal(Weighting):
    """``w_t = 1``: minimise the unweighted sum of task losses."""

    name = "equal"
    description = "Sum of the task losses, every weight 1 (the baseline)."
    options = {}  # no hyper-parameters: the weights are all 1

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        return Combination(torch.ones_like(losses))
