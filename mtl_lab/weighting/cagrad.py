"""CAGrad (Conflict-Averse Gradient descent): the best worst-case direction near the mean gradient.

Paper: Bo Liu, Xingchao Liu, Xiaojie Jin, Peter Stone and Qiang Liu, "Conflict-Averse Gradient Descent
for Multi-task Learning", NeurIPS 2021.

Update rule. With ``g_0 = (1/T) Σ_t g_t`` the mean gradient, CAGrad takes the direction that most
improves the *worst* task while staying in a ball around ``g_0``::

    d* = argmax_d  min_t g_t·d      subject to  ‖d − g_0‖ ≤ c‖g_0‖

The paper solves it through its dual, a problem over the simplex (with ``g_w = Σ_t w_t g_t``)::

    w* = argmin_{w ≥ 0, Σ w = 1}  g_w·g_0 + c‖g_0‖·‖g_w‖        d* = g_0 + (c‖g_0‖ / ‖g_w*‖) g_w*

``c = 0`` gives the mean gradient; as ``c`` grows the direction approaches MGDA's conflict-free one.

How it is solved here (same answer, exact steps). For a level ``t``, project ``g_0`` onto the set
``H_t = {d : g_i·d ≥ t for every task}``; the projection is ``g_0 + Gᵀλ`` where ``λ ≥ 0`` solves the
non-negative QP ``min ½ λᵀKλ + λᵀ(Kw_0 − t·1)`` (``w_0 = 1/T``; solved exactly by
``solvers.nonneg_qp``, the solver UPGrad uses). Its distance ``‖Gᵀλ‖`` to ``g_0`` grows with ``t``;
``d*`` is the projection at the largest ``t`` whose distance is still at most ``c‖g_0‖``: the root of
the convex, increasing ``h(t) = ‖Gᵀλ(t)‖² − c²‖g_0‖²``, found by Newton's method (``h′ = 2 Σ λ``)
safeguarded by bisection. Then ``d* = Gᵀ(w_0 + λ)`` — the paper's ``λ = c‖g_0‖ w*/‖g_w*‖``. Only the
Gramian is needed, normalised by its mean diagonal (the weights do not depend on the gradients' scale).
When the gradients are Pareto-stationary (a convex combination of them vanishes, found with MGDA's
min-norm solver) no ``d`` has all ``g_i·d > 0``, so the search stops at ``t = 0``. The QPs are solved
with ``1e-10·I`` added to the normalised Gramian: when K is singular (more tasks than independent
gradients) the linear term ``−t·1`` leaves the range of K and the active-set steps would be ill-defined;
the ridge makes each QP strictly convex and moves the answer by about 1e-10 relative.

Defaults and conventions:

* ``c = 0.5``: LibMTL's default; the paper tunes ``c`` per benchmark (moderate values below 1).
* ``rescale`` (as in the paper's official code, default 1): ``0`` returns ``d*``, ``1`` divides it by
  ``1 + c²`` and ``2`` by ``1 + c``, keeping the step comparable to gradient descent on the mean loss
  as ``c`` grows. TorchJD's ``CAGrad(c)`` does not rescale: it equals ``rescale=0`` here.
* The weights are ``(w_0 + λ)/divisor``: the mean's ``1/T`` plus the correction; with ``rescale=0``
  they sum to more than 1 when ``c > 0``.
* ``tol`` (1e-12): the search stops when ``|h(t)| ≤ tol·c²‖g_0‖²``; ``max_iter`` (100) bounds its steps
  (each one solves a T×T non-negative QP; Newton needs a handful).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import (
    ZERO_GRADIENTS,
    SolverReport,
    check_gramian,
    check_options,
    min_norm_weights,
    nonneg_qp,
    normalized_gramian,
    report_info,
)

RESCALE_DIVISORS = {0: lambda c: 1.0, 1: lambda c: 1.0 + c**2, 2: lambda c: 1.0 + c}
RIDGE = 1e-10  # makes the QPs strictly convex when the Gramian is singular (see the module docstring)


class CAGrad(Weighting):
    """Maximise the worst task's improvement within a ball of radius ``c‖g_0‖`` around the mean gradient."""

    name = "cagrad"
    description = "CAGrad: improve the worst-off task the most, staying close to the mean gradient (radius c)."
    requires = "gramian"

    def __init__(self, c: float = 0.5, rescale: int = 1, tol: float = 1e-12, max_iter: int = 100) -> None:
        super().__init__()
        if not (isinstance(c, (int, float)) and math.isfinite(c) and c >= 0):
            raise ValueError(f"{self.name}: c must be a finite number ≥ 0, got {c!r}")
        if rescale not in RESCALE_DIVISORS:
            raise ValueError(f"{self.name}: rescale must be one of {sorted(RESCALE_DIVISORS)}, got {rescale!r}")
        check_options(self.name, tol, max_iter)
        self.c = float(c)
        self.rescale = rescale
        self.tol = tol
        self.max_iter = max_iter

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        check_gramian(self.name, grads)
        weights, report = self.solve(grads)
        info = report_info(self.name, report)
        weights = torch.from_numpy(weights / RESCALE_DIVISORS[self.rescale](self.c))
        return Combination(weights.to(grads), info=info)

    def solve(self, K: torch.Tensor) -> tuple[np.ndarray, SolverReport]:
        """The un-rescaled weights ``w_0 + λ`` of ``d*`` for the Gramian ``K``, and the solver's report."""
        Kn, scale = normalized_gramian(K)
        T = Kn.shape[0]
        w0 = np.full(T, 1.0 / T)
        Kg0 = Kn @ w0  # (g_t·g_0)_t
        radius = self.c * max(float(w0 @ Kg0), 0.0) ** 0.5  # c‖g_0‖
        if scale == 0 or radius == 0:
            return w0, ZERO_GRADIENTS if scale == 0 else SolverReport("none (c‖g_0‖ = 0)", True, 0, 0.0)

        Kr = Kn + RIDGE * np.eye(T)
        free = None  # the previous level's positive λ: a warm start for the next QP (often exact)

        def project(t: float) -> tuple[np.ndarray, float, SolverReport]:
            """λ of the projection of g_0 onto H_t, and the squared distance ‖Gᵀλ‖² to g_0."""
            lam, report = nonneg_qp(Kr, Kg0 - t, max_iter=10 * T, free=free)
            return lam, float(lam @ Kr @ lam), report

        low = float(Kg0.min())  # g_0 itself is in H_low: distance 0
        # in the ball, g_t·d ≤ g_t·g_0 + c‖g_0‖‖g_t‖: no higher level is reachable
        high = float((Kg0 + radius * np.sqrt(np.diag(Kn))).min())
        w_mgda, _ = min_norm_weights(Kn)
        if float(w_mgda @ Kn @ w_mgda) <= 1e-12:  # Pareto-stationary: H_t is empty for t > 0
            high = min(high, 0.0)
        lam_low, excess_low = np.zeros(T), -(radius**2)  # at `low`: inside the ball
        t, converged, steps, qp_ok = high, False, 0, True
        while steps < self.max_iter:
            steps += 1
            lam, distance2, qp_report = project(t)
            qp_ok = qp_ok and qp_report.converged
            free = lam > 0
            excess = distance2 - radius**2  # > 0: H_t is out of reach, t is too high
            if excess <= self.tol * radius**2 and (excess >= -self.tol * radius**2 or t == high):
                converged = True
                break
            if excess < 0:
                low, lam_low, excess_low = t, lam, excess
            else:
                high = t
            if high - low <= 1e-15 * max(1.0, abs(low), abs(high)):  # t is pinned down to rounding
                lam, excess, converged = lam_low, excess_low, True
                break
            slope = 2 * float(lam.sum())  # d‖Gᵀλ‖²/dt on the current active set
            t = t - excess / slope if slope > 0 else math.nan
            if not low < t < high:  # keep Newton's step inside the bracket, else bisect
                t = (low + high) / 2
        residual = abs(excess) / radius**2
        return w0 + lam, SolverReport("newton-bisection over active-set QPs", converged and qp_ok, steps, residual)

    def config(self) -> dict:
        return {"name": self.name, "c": self.c, "rescale": self.rescale, "tol": self.tol, "max_iter": self.max_iter}
