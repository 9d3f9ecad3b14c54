"""DualProj: project the mean gradient onto the dual cone of the task gradients.

Origin: the projection step of David Lopez-Paz and Marc'Aurelio Ranzato, "Gradient Episodic Memory for
Continual Learning", NeurIPS 2017 (their Eq. 11), used as a multi-task aggregator by TorchJD and in
Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization" (2024), as the one-projection
counterpart of UPGrad.

Update rule. With ``C* = {x : g_i·x ≥ 0 for every task i}`` the directions that conflict with no task::

    d = π_{C*}( (1/T) Σ_i g_i )

the closest non-conflicting direction to the mean gradient. The projection is ``Gᵀv`` with
``v = argmin_{v ≥ 1/T} vᵀKv`` (``solvers.dual_cone_weights``), so the weights are ``v``; they equal
``1/T`` when the mean already conflicts with no task.

Conventions: the mean (not the sum) is projected, as in TorchJD's ``DualProj`` with its default
preference vector; ``reg`` and the solver options are as in :mod:`mtl_lab.weighting.upgrad`
(``reg=1e-4`` reproduces TorchJD's numbers, 0 solves the exact QP).
"""

from __future__ import annotations

import numpy as np
import torch

from mtl_lab.validate import Integer, Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import check_gramian, dual_cone_weights, report_info


class DualProj(Weighting):
    """The mean gradient projected onto the cone of directions that conflict with no task."""

    name = "dualproj"
    description = "DualProj: the mean gradient, projected onto the cone of non-conflicting directions."
    requires = "gramian"
    options = {
        "reg": Number(low=0),  # ridge on the normalised Gramian
        "tol": Number(low=0, low_open=True),
        "max_iter": Integer(low=1),
    }

    def __init__(self, reg: float = 0.0, tol: float = 1e-10, max_iter: int = 100) -> None:
        super().__init__(reg=reg, tol=tol, max_iter=max_iter)
        self.reg = float(reg)
        self.tol = tol
        self.max_iter = max_iter

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        check_gramian(self.name, grads)
        T = grads.shape[0]
        mean = np.full((1, T), 1.0 / T)
        V, report = dual_cone_weights(grads, mean, self.tol, self.max_iter, self.reg)
        return Combination(torch.from_numpy(V[0]).to(grads), info=report_info(self.name, report))

    def config(self) -> dict:
        return {"name": self.name, "reg": self.reg, "tol": self.tol, "max_iter": self.max_iter}
