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
The Trainer's ``rep_grads=True`` option (:mod:`mtl_lab.training.rep_grad`) feeds ``Z`` to any gradient method;
``mgda`` with it is exactly ``mgda_ub``, which keeps its name.

Defaults and their origin:

* ``solver="active_set"``: Wolfe's exact minimum-norm-point method (``solvers.min_norm_weights``),
  tol 1e-10 on the duality gap, at most 250 solves. ``solver="frank_wolfe"`` runs the paper's
  Algorithm 2 (tol 1e-3, 1000 iterations by default: it converges slowly, see the solver's docstring).
* The weights sum to 1 (a convex combination), as in the paper and TorchJD's ``MGDA``; the step is
  therefore on the scale of one task gradient, not of their sum.
* ``normalization="none"``: the min-norm problem is solved on the gradients as given (LibMTL's default
  too). The paper's official code, and LibMTL after it, can first divide each gradient by a number
  ``n_t`` (their ``gradient_normalizers``): ``"l2"`` — its norm ``‖g_t‖``; ``"loss"`` — its loss ``L_t``;
  ``"loss+"`` — both, ``L_t·‖g_t‖``. The weights ``w*`` are then found for the gradients ``g_t/n_t``
  (only the Gramian changes: ``K_ij/(n_i n_j)``). The losses must be positive for ``"loss"``/``"loss+"``;
  a zero gradient keeps ``n_t = 1`` under ``"l2"`` (it stays zero).
* ``weights_on="raw"``: the official MGDA code applies those weights to the *raw* losses, so the step is
  ``Σ_t w*_t g_t``. LibMTL applies them to the normalised gradients, ``Σ_t w*_t g_t/n_t`` (in its
  variant on the representation's gradients, to the raw ones):
  ``weights_on="normalized"`` does that (the effective weights are then ``w*_t/n_t``). With
  ``normalization="none"`` the two are the same.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import MIN_NORM_SOLVERS, check_gramian, check_options, min_norm_weights, report_info

Solver = Literal["active_set", "frank_wolfe"]  # the keys of MIN_NORM_SOLVERS (a test checks they agree)
Normalization = Literal["none", "l2", "loss", "loss+"]  # the gradient normalisers of the paper's code and LibMTL
WeightsOn = Literal["raw", "normalized"]
NORMALIZATIONS = get_args(Normalization)
WEIGHTS_ON = get_args(WeightsOn)


class MGDA(Weighting):
    """Min-norm point of the convex hull of the task gradients (weights sum to 1)."""

    name = "mgda"
    description = "MGDA: the least-norm convex combination of the task gradients (no task gets worse)."
    requires = "gramian"

    def __init__(
        self,
        solver: Solver = "active_set",
        tol: float | None = None,
        max_iter: int | None = None,
        normalization: Normalization = "none",
        weights_on: WeightsOn = "raw",
    ) -> None:
        super().__init__()
        if solver not in MIN_NORM_SOLVERS:
            raise ValueError(f"{self.name}: unknown solver {solver!r}; choose from {list(MIN_NORM_SOLVERS)}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"{self.name}: normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        if weights_on not in WEIGHTS_ON:
            raise ValueError(f"{self.name}: weights_on must be one of {WEIGHTS_ON}, got {weights_on!r}")
        default_tol, default_max_iter = MIN_NORM_SOLVERS[solver]
        check_options(
            self.name,
            default_tol if tol is None else tol,
            default_max_iter if max_iter is None else max_iter,
        )
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.normalization = normalization
        self.weights_on = weights_on
        self.uses_losses = normalization in ("loss", "loss+")  # this instance reads the loss values

    def gramian(self, grads: torch.Tensor) -> torch.Tensor:
        """The Gramian the min-norm problem is solved on (here given as is)."""
        check_gramian(self.name, grads)
        return grads

    def normalizers(self, K: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        """``n_t`` of each task's gradient for ``self.normalization`` (ones for ``"none"``)."""
        if self.normalization == "none":
            return torch.ones_like(losses, dtype=K.dtype)
        if self.normalization in ("loss", "loss+"):
            if not bool(torch.isfinite(losses).all()) or not bool((losses > 0).all()):
                raise ValueError(f"{self.name}: normalization {self.normalization!r} divides by the losses, which "
                                 f"must be finite and > 0, got {[round(float(v), 6) for v in losses]}")
        norms = K.diagonal().clamp_min(0).sqrt()
        norms = torch.where(norms > 0, norms, torch.ones_like(norms))  # a zero gradient stays zero
        if self.normalization == "l2":
            return norms
        losses = losses.to(K.dtype)
        return losses if self.normalization == "loss" else losses * norms

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        K = self.gramian(grads)
        n = self.normalizers(K, losses)
        w, report = min_norm_weights(K / torch.outer(n, n), self.solver, self.tol, self.max_iter)
        weights = torch.from_numpy(w).to(grads)
        if self.weights_on == "normalized":
            weights = weights / n.to(weights)
        return Combination(weights, info=report_info(self.name, report))

    def config(self) -> dict:
        return {"name": self.name, "solver": self.solver, "tol": self.tol, "max_iter": self.max_iter,
                "normalization": self.normalization, "weights_on": self.weights_on}


class MGDAUB(MGDA):
    """MGDA on the gradients of the shared representation (the paper's MGDA-UB)."""

    name = "mgda_ub"
    description = "MGDA-UB: MGDA's min-norm weights computed on the shared representation's gradients (cheaper)."
    requires = "rep_grads"

    def gramian(self, grads: torch.Tensor) -> torch.Tensor:
        """``Z Zᵀ`` of the representation gradients ``Z[T, B·D]``."""
        return grads @ grads.T
