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

Gradients of very different lengths (norms from 1e-3 to 1e3 in one step) need care, because the QPs'
numbers then span twelve orders of magnitude. Three steps keep the answer exact:

* the QPs are solved on the cosines ``C = D⁻¹KD⁻¹`` (``D = diag(‖g_i‖)``, ``λ = D⁻¹μ``), whose diagonal is
  1. A ridge ``1e-10·I`` is added there: when K is singular (more tasks than independent gradients) the
  linear term ``−t·1`` leaves the range of K and the active-set steps would be ill-defined; the ridge
  makes each QP strictly convex. (Added to K itself, a ridge of that size is larger than a short
  gradient's squared norm and left the answer 10 % inside the ball.)
* Pareto stationarity (a convex combination of the gradients vanishes, found with MGDA's min-norm
  solver) is decided on the unit gradients, where it does not depend on their lengths. Then no ``d``
  has all ``g_i·d > 0``, and the search stops at ``t = 0``.
* **Polish**: on the active set ``A`` the search ends with (``λ_A > 0``), the exact answer solves
  ``K_AA λ_A = t·1 − (Kg_0)_A`` with ``λ_AᵀK_AAλ_A = r²`` — a quadratic equation in ``t``, solved without the
  ridge. The result is checked against the problem's optimality (KKT) conditions: every task gains at
  least ``t``, exactly ``t`` where ``λ_i > 0``, and ``d`` lies on the ball's boundary (unless ``t`` is capped).
  ``info["residual"]`` is the largest relative violation; ``info["converged"]`` is true only when it is
  below ``1e-8`` (and the search itself converged).

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

from mtl_lab.validate import MAX_ITERATIONS, Integer, Number, OneOf
from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import (
    ZERO_GRADIENTS,
    SolverReport,
    check_gramian,
    min_norm_weights,
    nonneg_qp,
    normalized_gramian,
    report_info,
)

RESCALE_DIVISORS = {0: lambda c: 1.0, 1: lambda c: 1.0 + c**2, 2: lambda c: 1.0 + c}
RIDGE = 1e-10  # makes the search's QPs strictly convex when the Gramian is singular (see the module docstring)
KKT_TOL = 1e-8  # the answer must meet the optimality conditions to this (relative) accuracy to count as converged


class CAGrad(Weighting):
    """Maximise the worst task's improvement within a ball of radius ``c‖g_0‖`` around the mean gradient."""

    name = "cagrad"
    description = "CAGrad: improve the worst-off task the most, staying close to the mean gradient (radius c)."
    requires = "gramian"
    options = {
        "c": Number(low=0, high=1e6),  # the ball's radius, relative to ‖g_0‖ (larger: c² overflows)
        "rescale": OneOf(tuple(RESCALE_DIVISORS)),  # d* divided by 1, 1 + c² or 1 + c
        "tol": Number(low=0, low_open=True),  # the search's relative tolerance on h(t)
        "max_iter": Integer(low=1, high=MAX_ITERATIONS),  # the search's steps
    }

    def __init__(self, c: float = 0.5, rescale: int = 1, tol: float = 1e-12, max_iter: int = 100) -> None:
        super().__init__(c=c, rescale=rescale, tol=tol, max_iter=max_iter)
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

        norms = np.sqrt(np.diag(Kn))
        D = np.where(norms > 0, norms, 1.0)  # λ = μ/D: the QPs are solved on the cosines C = D⁻¹KD⁻¹
        Cr = Kn / np.outer(D, D) + RIDGE * np.eye(T)
        free = None  # the previous level's positive λ: a warm start for the next QP (often exact)

        def project(t: float) -> tuple[np.ndarray, float, SolverReport]:
            """λ of the projection of g_0 onto H_t, and the squared distance ‖Gᵀλ‖² to g_0."""
            mu, report = nonneg_qp(Cr, (Kg0 - t) / D, max_iter=10 * T, free=free)
            return mu / D, float(mu @ Cr @ mu), report

        low = float(Kg0.min())  # g_0 itself is in H_low: distance 0
        # in the ball, g_t·d ≤ g_t·g_0 + c‖g_0‖‖g_t‖: no higher level is reachable
        high = float((Kg0 + radius * norms).min())
        if pareto_stationary(Kn, norms):  # H_t is empty for t > 0
            high = min(high, 0.0)
        lam_low, excess_low = np.zeros(T), -(radius**2)  # at `low`: inside the ball
        cap = high
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
                lam, excess, converged, t = lam_low, excess_low, True, low
                break
            slope = 2 * float(lam.sum())  # d‖Gᵀλ‖²/dt on the current active set
            t = t - excess / slope if slope > 0 else math.nan
            if not low < t < high:  # keep Newton's step inside the bracket, else bisect
                t = (low + high) / 2
        on_ball = not (t == cap and excess < 0)  # on the boundary unless the level reached its cap inside
        lam, t = polish(Kn, Kg0, D, radius, lam, t, on_ball)
        residual = kkt_residual(Kn, Kg0, D, radius, lam, t, on_ball)
        ok = converged and qp_ok and residual <= KKT_TOL
        return w0 + lam, SolverReport("newton-bisection over active-set QPs, polished", ok, steps, residual)

    def config(self) -> dict:
        return {"name": self.name, "c": self.c, "rescale": self.rescale, "tol": self.tol, "max_iter": self.max_iter}


def pareto_stationary(Kn: np.ndarray, norms: np.ndarray) -> bool:
    """Whether some convex combination of the gradients vanishes (a zero gradient, or 0 in their hull).

    Decided on the unit gradients ``g_t/‖g_t‖`` (the answer does not depend on the gradients' lengths),
    so that a short gradient next to long ones is not taken for a zero one.
    """
    if (norms == 0).any():
        return True
    w, _ = min_norm_weights(Kn / np.outer(norms, norms))
    return float(w @ (Kn / np.outer(norms, norms)) @ w) <= 1e-12


def polish(
    Kn: np.ndarray, Kg0: np.ndarray, D: np.ndarray, radius: float, lam: np.ndarray, t: float, on_ball: bool
) -> tuple[np.ndarray, float]:
    """Remove the ridge: the exact λ and level t on the active set the search found.

    On the active set A (``λ_A > 0``) the projection satisfies ``K_AA λ_A = t·1 − (Kg_0)_A``, so
    ``λ_A = t·u − v`` with ``K_AA u = 1`` and ``K_AA v = (Kg_0)_A`` (solved on the cosines, as the search);
    on the ball's boundary ``(tu − v)ᵀK_AA(tu − v) = r²``, a quadratic in t whose larger root is the level
    (the distance grows with t). The polished answer is kept when its λ_A stays positive and it meets
    the optimality conditions at least as well as the search's answer.
    """
    A = np.flatnonzero(lam > 0)
    if not len(A):
        return lam, t
    C = Kn[np.ix_(A, A)] / np.outer(D[A], D[A])
    u = np.linalg.lstsq(C, 1.0 / D[A], rcond=None)[0] / D[A]
    v = np.linalg.lstsq(C, Kg0[A] / D[A], rcond=None)[0] / D[A]
    K_AA = Kn[np.ix_(A, A)]
    level = t
    if on_ball:
        a, b, c = float(u @ K_AA @ u), float(u @ K_AA @ v), float(v @ K_AA @ v) - radius**2
        disc = b * b - a * c
        if not (a > 0 and disc >= 0):
            return lam, t
        level = (b + math.sqrt(disc)) / a
    candidate = np.zeros_like(lam)
    candidate[A] = level * u - v
    if not (candidate[A] > 0).all():
        return lam, t
    before = kkt_residual(Kn, Kg0, D, radius, lam, t, on_ball)
    after = kkt_residual(Kn, Kg0, D, radius, candidate, level, on_ball)
    return (candidate, level) if after <= before else (lam, t)


def kkt_residual(
    Kn: np.ndarray, Kg0: np.ndarray, D: np.ndarray, radius: float, lam: np.ndarray, t: float, on_ball: bool = True
) -> float:
    """Largest violation of the optimality conditions of ``d = g_0 + Gᵀλ`` at level t, relative.

    Every task gains at least t (``g_i·d ≥ t``), exactly t where ``λ_i > 0``, ``λ ≥ 0``, and d is in the
    ball (on its boundary when ``on_ball``, i.e. unless the level is capped). Each task's gain is measured
    in units of ``‖g_i‖·(Σ_j λ_j‖g_j‖ + r)``, the size of the terms it is a sum of (so a short gradient's
    condition counts as much as a long one's, and rounding is not taken for a violation), the distance
    in units of ``r²``.
    """
    # a gain g_i·d = Σ_j λ_j g_i·g_j + g_i·g_0 is known to the size of its terms, ‖g_i‖(Σ_j λ_j‖g_j‖ + ‖g_0‖)
    size = float(np.abs(lam) @ D) + radius
    gains = (Kn @ lam + Kg0 - t) / (D * (size if size > 0 else 1.0))
    violated = np.maximum(-gains, 0.0)
    slack = np.where(lam > 0, np.abs(gains), 0.0)
    distance = (float(lam @ Kn @ lam) - radius**2) / radius**2
    inside = max(-distance, 0.0) if on_ball else 0.0
    return float(max(violated.max(), slack.max(), max(distance, 0.0), inside))
