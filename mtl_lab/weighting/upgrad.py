"""UPGrad (Unconflicting Projection of Gradients): average the task gradients after projecting each onto the dual cone.

Paper: Pierre Quinton and Valérian Rey, "Jacobian Descent for Multi-Objective Optimization", arXiv
2406.16232, 2024.

Update rule. The *dual cone* of the task gradients is the set of directions that conflict with none of
them, ``C* = {x : g_i·x ≥ 0 for every task i}``. UPGrad projects every task gradient onto it and
averages the projections::

    d = (1/T) Σ_i π_{C*}(g_i)

Because ``C*`` is a convex cone, the average stays in it: ``g_i·d ≥ 0`` for every task, so no task gets
worse to first order. A gradient that conflicts with no other is its own projection. By the paper's
Proposition 1 the projection of ``g_i`` is ``Gᵀv_i`` with ``v_i = argmin_{v ≥ e_i} vᵀKv``, a T×T QP
(``solvers.dual_cone_weights``, an exact active-set solver); so ``d = Gᵀw`` with ``w = (1/T) Σ_i v_i``
and only the Gramian is needed.

Conventions and their origin:

* Mean of the projections, as in the paper and TorchJD (``UPGrad`` with its default uniform preference
  vector). The weights do not sum to 1: for ``J = [[-4, 1, 1], [6, 1, 1]]`` the exact weights are
  ``[1.1111, 0.7895]``.
* ``reg = 0`` solves the exact QP. TorchJD adds ``1e-4·I`` to the Gramian divided by its trace before its
  QP solver (``QuadprogProjector(reg_eps=1e-4)``); ``reg=1e-4`` here reproduces TorchJD's numbers,
  e.g. ``[1.1109, 0.7894]`` for the matrix above (the gap is about 2e-4 relative).
* ``tol = 1e-10`` on the optimality conditions (in units of the mean squared gradient norm) and
  ``max_iter = 100`` linear solves per projection.
"""

from __future__ import annotations

import numpy as np
import torch

from mtl_lab.validate import Integer, Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import check_gramian, dual_cone_weights, report_info


class UPGrad(Weighting):
    """Mean of the projections of the task gradients onto their dual cone (conflicts with no task)."""

    name = "upgrad"
    description = "UPGrad: average of each task gradient projected onto the cone of non-conflicting directions."
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
        V, report = dual_cone_weights(grads, np.eye(T), self.tol, self.max_iter, self.reg)
        return Combination(torch.from_numpy(V.mean(axis=0)).to(grads), info=report_info(self.name, report))

    def config(self) -> dict:
        return {"name": self.name, "reg": self.reg, "tol": self.tol, "max_iter": self.max_iter}
