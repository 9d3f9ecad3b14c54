"""MGDA and MGDA-UB: step along the min-norm point of the convex hull of the task gradients.

Paper: Ozan Sener and Vladlen Koltun, "Multi-Task Learning as Multi-Objective Optimization",
NeurIPS 2018 (the multiple-gradient descent algorithm itself is Désidéri's, 2012).

Update rule. Among the convex combinations of the task gradients take the one of least norm::

    w* = argmin_{w ≥ 0, Σ_t w_t = 1} ‖Σ_t w_t g_t‖²        d = Σ_t w*_t g_t = Gᵀw*

Either ``d = 0`` — the parameters are Pareto-stationary, no direction improves every task at once — or
``g_t·d ≥ ‖d‖² > 0`` for every task, so a small step along ``−d`` lowers every loss. For two tasks the
minimiser has a closed form (the paper's Algorithm 1)::

    γ = clip((g_2 − g_1)·g_2 / ‖g_1 − g_2‖², 0, 1)        w = (γ, 1 − γ)

for more tasks the paper runs Frank–Wolfe (Algorithm 2). Only the Gramian ``K = GGᵀ`` is needed.

MGDA-UB (registry name ``mgda_ub``) is the paper's cheaper "upper bound" variant: the same problem on
the gradients ``Z`` of the shared *representation* (one backward pass through the task heads instead of
the whole trunk per task), justified by ``‖Σ_t w_t ∇_θ L_t‖ ≤ ‖∂z/∂θ‖·‖Σ_t w_t ∇_z L_t‖``. The weights
found on ``Z`` then weight the task losses, so the shared parameters move along ``Σ_t w_t g_t``.
The Trainer's ``rep_grads=True`` option (:mod:`mtl_lab.rep_grad`) feeds ``Z`` to any gradient method;
``mgda`` with it is exactly ``mgda_ub``, which keeps its name.

Defaults and their origin:

* ``solver="active_set"``: Wolfe's exact minimum-norm-point method (``solvers.min_norm_weights``),
  tol 1e-10 on the duality gap, at most 250 solves. ``solver="frank_wolfe"`` runs the paper's
  Algorithm 2 (tol 1e-3, 1000 iterations by default: it converges slowly, see the solver's docstring).
* The weights sum to 1 (a convex combination), as in the paper and TorchJD's ``MGDA``; the step is
  therefore on the scale of one task gradient, not of their sum.
* Gradients are used as given. The paper's code can first normalise each gradient ("l2", "loss",
  "loss+"); LibMTL's default is "none", as here.
"""

from __future__ import annotations

import torch

from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import MIN_NORM_SOLVERS, check_gramian, check_options, min_norm_weights, report_info


class MGDA(Weighting):
    """Min-norm point of the convex hull of the task gradients (weights sum to 1)."""

    name = "mgda"
    description = "MGDA: the least-norm convex combination of the task gradients (no task gets worse)."
    requires = "gramian"

    def __init__(self, solver: str = "active_set", tol: float | None = None, max_iter: int | None = None) -> None:
        super().__init__()
        if solver not in MIN_NORM_SOLVERS:
            raise ValueError(f"{self.name}: unknown solver {solver!r}; choose from {list(MIN_NORM_SOLVERS)}")
        default_tol, default_max_iter = MIN_NORM_SOLVERS[solver]
        check_options(
            self.name,
            default_tol if tol is None else tol,
            default_max_iter if max_iter is None else max_iter,
        )
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter

    def gramian(self, grads: torch.Tensor) -> torch.Tensor:
        """The Gramian the min-norm problem is solved on (here given as is)."""
        check_gramian(self.name, grads)
        return grads

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        w, report = min_norm_weights(self.gramian(grads), self.solver, self.tol, self.max_iter)
        return Combination(torch.from_numpy(w).to(grads), info=report_info(self.name, report))

    def config(self) -> dict:
        return {"name": self.name, "solver": self.solver, "tol": self.tol, "max_iter": self.max_iter}


class MGDAUB(MGDA):
    """MGDA on the gradients of the shared representation (the paper's MGDA-UB)."""

    name = "mgda_ub"
    description = "MGDA-UB: MGDA's min-norm weights computed on the shared representation's gradients (cheaper)."
    requires = "rep_grads"

    def gramian(self, grads: torch.Tensor) -> torch.Tensor:
        """``Z Zᵀ`` of the representation gradients ``Z[T, B·D]``."""
        return grads @ grads.T
