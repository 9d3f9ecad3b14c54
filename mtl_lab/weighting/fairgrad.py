"""FairGrad: share the step between the tasks by α-fairness of their improvements.

Paper: Hao Ban and Kaiyi Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024
(arXiv:2402.15638).

Update rule. Each task's utility is its first-order improvement ``u_t = g_t·d`` along the step ``d``;
FairGrad maximises the α-fair sum ``Σ_t u_t^(1−α)/(1−α)`` (``Σ_t log u_t`` for ``α = 1``) over a ball.
The paper's Theorem 3.1 gives the answer as a combination ``d = Gᵀw`` whose weights ``w > 0`` solve::

    K w = w^(−1/α)      element-wise, i.e.  (Kw)_t = g_t·d = w_t^(−1/α)   (K = GGᵀ)

so every task improves (``g_t·d > 0``) and a task with a small gradient gets a large weight.
``α`` moves along the classic family of fairness notions:

* ``α = 0``: utilitarian — the plain sum of improvements; the paper and TorchJD then take equal
  weights, here ``w_t = 1/T``;
* ``α = 1``: proportional fairness, ``(Kw)_t = 1/w_t`` — **exactly Nash-MTL's system** (Navon et al.,
  ICML 2022; see ``nash_mtl.py``), without Nash-MTL's norm clipping;
* ``α = 2``: minimum potential delay; ``α → ∞``: max–min fairness (the worst task's improvement).

Solved exactly here (:func:`fair_weights`): the system is the stationarity condition of the strictly
convex potential ``φ(w) = ½ wᵀKw + Σ_t f(w_t)`` with ``f′(w) = −w^(−1/α)`` (``f = −log`` for α = 1), so
a damped Newton method with a backtracking line search that keeps ``w > 0`` converges from any start;
once the Newton decrement ``λ²/2`` (about ``φ(w) − min φ``) is at most ``tol`` it takes a last full
Newton step (the line search cannot see progress below the rounding of φ) and stops.
As in Nash-MTL, ``K`` is first divided by its mean diagonal ``s``; the solution ``ŵ`` of the normalised
system gives ``w = s^(−α/(1+α)) ŵ``, and a ridge ``reg·I`` makes a solution exist when the gradients are
Pareto-stationary (a zero gradient, two opposite ones). ``info["residual"]`` is
``max_t |w_t^(1/α) (Kw)_t − 1|`` on the un-regularised system, in normalised units.

Defaults and their origin:

* ``alpha = 1.0``: LibMTL's default; the paper's experiments use α ∈ {0.5, 1, 2, 5, 8} depending on
  the benchmark. TorchJD requires α to be given.
* ``reg = 1e-8``, ``tol = 1e-12``, ``max_iter = 100``: as Nash-MTL here.
* No norm clipping: the authors' code, LibMTL and TorchJD use ``d = Gᵀw`` as it is.

TorchJD's ``FairGrad`` solves the same system with ``scipy.optimize.least_squares`` started at ``1/T``
(tolerances ~1e-8); the tests compare the two and check the defining system directly.
"""

from __future__ import annotations

import numpy as np
import torch

from mtl_lab.validate import Integer, Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import (
    SolverReport,
    check_gramian,
    normalized_gramian,
    report_info,
)


def fair_potential(A: np.ndarray, w: np.ndarray, p: float) -> float:
    """``φ(w) = ½ wᵀAw + Σ f(w_t)`` with ``f′(w) = −w^(−p)`` (``p = 1/α``)."""
    barrier = -np.log(w).sum() if p == 1 else -(w ** (1 - p)).sum() / (1 - p)
    return 0.5 * float(w @ A @ w) + float(barrier)


def fair_weights(
    K: torch.Tensor | np.ndarray,
    alpha: float,
    tol: float = 1e-12,
    max_iter: int = 100,
    reg: float = 1e-8,
) -> tuple[np.ndarray, SolverReport]:
    """The ``w > 0`` with ``(Kw)_t = w_t^(−1/α)`` for every task (FairGrad's system); ``1/T`` for ``α = 0``."""
    Kn, scale = normalized_gramian(K)
    T = Kn.shape[0]
    if alpha == 0:
        return np.full(T, 1.0 / T), SolverReport("none (alpha = 0: equal weights)", True, 0, 0.0)
    if scale == 0:  # every gradient is zero: no solution; any w gives d = 0
        return np.ones(T), SolverReport("none (every gradient is zero)", True, 0, 1.0)
    p = 1.0 / alpha
    A = Kn + reg * np.eye(T)
    # start on the ray w = c·1 where the mean of w^p (Aw) is 1
    w = np.full(T, max(float(A.sum()) / T, 1e-300) ** (-1.0 / (1.0 + p)))
    value = fair_potential(A, w, p)
    converged, iterations = False, 0
    while iterations < max_iter:
        iterations += 1
        grad = A @ w - w ** (-p)
        hessian = A + np.diag(p * w ** (-p - 1))
        step = np.linalg.solve(hessian, grad)
        decrement2 = max(float(grad @ step), 0.0)
        if decrement2 / 2 <= tol and np.all(w - step > 0):  # at the minimum to rounding: a last full step
            w = w - step
            converged = True
            break
        t = 1.0
        while np.any(w - t * step <= 0):  # stay inside w > 0
            t /= 2
        candidate = w - t * step
        new_value = fair_potential(A, candidate, p)
        while new_value > value - 0.25 * t * decrement2 and t > 1e-12:  # Armijo backtracking
            t /= 2
            candidate = w - t * step
            new_value = fair_potential(A, candidate, p)
        w, value = candidate, new_value
    residual = float(np.abs(w**p * (Kn @ w) - 1).max())
    return w * scale ** (-1.0 / (1.0 + p)), SolverReport("damped_newton", converged, iterations, residual)


class FairGrad(Weighting):
    """Weights w > 0 with (Kw)_t = w_t^(−1/α): the α-fair allocation of the step between the tasks."""

    name = "fairgrad"
    description = "FairGrad: α-fair share of the step; weights solve (Kw)_t = w_t^(−1/α) (α = 1: Nash-MTL)."
    requires = "gramian"
    options = {
        "alpha": Number(low=0),  # 0 = equal weights
        "reg": Number(low=0),  # ridge on the Gramian
        "tol": Number(low=0, low_open=True),
        "max_iter": Integer(low=1),
    }

    def __init__(self, alpha: float = 1.0, reg: float = 1e-8, tol: float = 1e-12, max_iter: int = 100) -> None:
        super().__init__(alpha=alpha, reg=reg, tol=tol, max_iter=max_iter)
        self.alpha = float(alpha)
        self.reg = float(reg)
        self.tol = tol
        self.max_iter = max_iter

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        check_gramian(self.name, grads)
        w, report = fair_weights(grads, self.alpha, self.tol, self.max_iter, self.reg)
        return Combination(torch.from_numpy(w).to(grads), info=report_info(self.name, report))

    def config(self) -> dict:
        return {"name": self.name, "alpha": self.alpha, "reg": self.reg, "tol": self.tol, "max_iter": self.max_iter}
