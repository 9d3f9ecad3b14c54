"""Small optimisation solvers shared by the gradient-manipulation methods.

Every problem here lives in *task space*: its unknowns are one number per task (T of them, a handful),
and the gradients enter only through the Gramian ``K = G Gᵀ`` (``K_ij = g_i·g_j``). The solvers are:

* :func:`min_norm_weights` — the min-norm point of the convex hull of the gradients (MGDA):
  ``min_w ½ wᵀKw`` subject to ``w ≥ 0, Σ w = 1``. Closed form for T = 2; for T > 2 Wolfe's (1976)
  active-set "minimum-norm-point" algorithm (exact, finite) or the Frank–Wolfe iteration of the MGDA
  paper (Algorithm 2).
* :func:`nonneg_qp` — ``min_z ½ zᵀKz + qᵀz`` subject to ``z ≥ 0``, by the active-set method of
  Lawson & Hanson (1974, NNLS written on the Gramian). :func:`dual_cone_weights` uses it to project
  onto the dual cone ``{x : g_i·x ≥ 0 for all i}`` (UPGrad, DualProj).
* :func:`nash_weights` — the Nash bargaining system ``(Kα)_i = 1/α_i``, ``α > 0`` (Nash-MTL), by a
  damped Newton method on a strictly convex potential.
* :func:`least_squares_fit` — the weights ``w`` with ``Gᵀw`` closest to a direction ``d``, and the residual.
* :func:`simplex_lp` — ``max cᵀα`` over the simplex with extra rows ``Aα ≤ b`` (EPO's two linear
  programs): every vertex tried at once when there are few (exact, ~50 µs at T = 3), HiGHS otherwise.

Conventions:

* The solvers work on float64 NumPy arrays on the CPU: a T×T problem is far too small for an
  accelerator (an iterative loop on one would synchronise with it at every step), and on a handful
  of numbers each NumPy call costs a few microseconds where a torch call costs several times more —
  the solvers run once per training step, so that overhead is what a user waits for. They accept a
  torch tensor or an array (:func:`as_float64`) and return arrays; the methods turn the final weights
  back into a tensor on the caller's device and dtype.
* Each solver first divides K by its mean diagonal ``s = tr(K)/T`` (the mean squared gradient norm),
  so that tolerances mean the same at gradient scales 1e-6 and 1e6. Each function says how its answer
  depends on ``s`` (most are scale-free). Eigenvalues of K below the precision of its dtype are set to
  0 first (:func:`normalized_gramian`): rounding must not make K indefinite or fake extra rank.
* Each returns its answer and a :class:`SolverReport`. When the iteration budget runs out before the
  tolerance is met, the report says ``converged=False``; the method then warns with
  :class:`ConvergenceWarning` and records the report in ``Combination.info`` — the last iterate is
  used and nothing falls back silently to other weights.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linprog

# default (tol, max_iter) of each min-norm solver; Frank–Wolfe's loose tolerance is explained in min_norm_weights
MIN_NORM_SOLVERS = {"active_set": (1e-10, 250), "frank_wolfe": (1e-3, 1000)}


class ConvergenceWarning(UserWarning):
    """A solver stopped at its iteration limit before reaching its tolerance."""


@dataclass(frozen=True)
class SolverReport:
    """How a solver ended: its name, whether it met its tolerance, its iterations and final residual."""

    solver: str
    converged: bool
    iterations: int
    residual: float

    def as_info(self) -> dict:
        """JSON-friendly form for ``Combination.info`` (and so for the run's History)."""
        return {
            "solver": self.solver,
            "converged": self.converged,
            "iterations": self.iterations,
            "residual": float(self.residual),
        }


def merge_reports(reports: Sequence[SolverReport]) -> SolverReport:
    """One report for several solves (converged only if all did; the worst residual, the most iterations)."""
    return SolverReport(
        solver=reports[0].solver,
        converged=all(r.converged for r in reports),
        iterations=max(r.iterations for r in reports),
        residual=max(r.residual for r in reports),
    )


def report_info(method: str, report: SolverReport) -> dict:
    """Warn if the solver did not converge, and return the report as a dict for ``Combination.info``."""
    if not report.converged:
        warnings.warn(
            f"{method}: the {report.solver} solver stopped after {report.iterations} iterations without reaching "
            "its tolerance; its last iterate is used (info['residual'] says how far it was)",
            ConvergenceWarning,
            stacklevel=3,
        )
    return report.as_info()


def check_gramian(method: str, K: torch.Tensor) -> None:
    """A method that ``requires="gramian"`` gets a square T×T matrix."""
    if K.dim() != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"{method}: the Gramian must be a square [T, T] matrix, got shape {tuple(K.shape)}")


def as_float64(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """A task-space matrix or vector as a float64 NumPy array on the CPU (tensors are detached first).

    The result may share memory with ``values``; the solvers never write into their inputs.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.dtype not in (torch.float32, torch.float64):  # bfloat16 and others that NumPy lacks
            values = values.to(torch.float64)
        values = values.numpy()  # a view; NumPy's conversion below is the cheaper call
    return np.asarray(values, dtype=np.float64)


def rank_tolerance(dtype: torch.dtype | np.dtype, T: int) -> float:
    """Relative size below which an eigenvalue of a (normalised) Gramian counts as zero.

    Set from the precision the gradients came in (a float32 Gramian carries ~1e-7 relative noise), ten
    times the usual ``T·eps`` cut-off so that identical float32 gradients are recognised as such.
    """
    eps = torch.finfo(dtype).eps if isinstance(dtype, torch.dtype) else float(np.finfo(dtype).eps)
    return 10.0 * T * eps


def normalized_gramian(K: torch.Tensor | np.ndarray) -> tuple[np.ndarray, float]:
    """``K / s`` as a float64 array, with ``s = tr(K)/T``; ``(zeros, 0.0)`` when every gradient is zero.

    A Gramian computed in finite precision can have slightly negative eigenvalues, and rounding noise
    where it should have zeros (e.g. float32 gradients with fewer parameters than tasks). Eigenvalues
    below ``λ_max ·`` :func:`rank_tolerance` of the input's dtype are set to 0, so that the solvers
    always see an exactly positive semi-definite matrix of the right rank.
    """
    T = K.shape[0]
    tolerance = rank_tolerance(K.dtype, T)
    A = as_float64(K)
    A = (A + A.T) / 2
    eigenvalues = np.linalg.eigvalsh(A)  # ascending; the eigenvectors only when some must be cleaned
    if eigenvalues[0] <= eigenvalues[-1] * tolerance:  # some are rounding noise or negative
        eigenvalues, V = np.linalg.eigh(A)
        eigenvalues = np.where(eigenvalues > eigenvalues[-1] * tolerance, eigenvalues, 0.0)
        A = (V * eigenvalues) @ V.T
    scale = float(np.trace(A)) / T
    if not scale > 0:
        return np.zeros_like(A), 0.0
    return A / scale, scale


ZERO_GRADIENTS = SolverReport("none (every gradient is zero)", True, 0, 0.0)


# --------------------------------------------------------------------------- min-norm point (MGDA)


def closest_on_segment(aa: float, ab: float, bb: float) -> float:
    """The ``t ∈ [0, 1]`` for which ``(1 − t)·a + t·b`` has the least norm, given ``a·a``, ``a·b``, ``b·b``.

    ``t = (a·a − a·b) / ‖a − b‖²`` clipped to [0, 1] (MGDA paper, Algorithm 1); 0.5 when ``a = b``.
    """
    denom = aa - 2 * ab + bb
    if denom <= 1e-14 * (aa + bb):
        return 0.5
    return min(max((aa - ab) / denom, 0.0), 1.0)


def min_norm_weights(
    K: torch.Tensor | np.ndarray,
    solver: str = "active_set",
    tol: float | None = None,
    max_iter: int | None = None,
) -> tuple[np.ndarray, SolverReport]:
    """Weights ``w`` of the min-norm point ``Gᵀw`` of the convex hull of the rows of G.

    Solves ``min ½ wᵀKw`` subject to ``w ≥ 0, Σ w = 1`` on the normalised Gramian (``w`` does not
    depend on the scale of K). T = 1 and T = 2 are solved in closed form. For T > 2, ``solver`` picks
    ``"active_set"`` (Wolfe's minimum-norm-point algorithm: exact up to rounding in a few iterations;
    defaults tol 1e-10, max_iter 250) or ``"frank_wolfe"`` (the MGDA paper's Algorithm 2; defaults
    tol 1e-3, max_iter 1000). Both stop when the duality gap ``wᵀKw − min_i (Kw)_i`` — an upper bound
    on the sub-optimality of ``½ wᵀKw``, in units of the mean squared gradient norm — is at most ``tol``.
    Frank–Wolfe gains about one digit of that gap per ten times more iterations, so its default is
    loose: it is there to watch the paper's algorithm at work, and its direction can be a few per cent
    (more when the min-norm point is small) away from the exact one.
    """
    if solver not in MIN_NORM_SOLVERS:
        raise ValueError(f"unknown min-norm solver {solver!r}; choose from {list(MIN_NORM_SOLVERS)}")
    default_tol, default_max_iter = MIN_NORM_SOLVERS[solver]
    tol = default_tol if tol is None else tol
    max_iter = default_max_iter if max_iter is None else max_iter
    Kn, scale = normalized_gramian(K)
    T = Kn.shape[0]
    if scale == 0:  # every point of the hull is 0: any weights are optimal
        return np.full(T, 1.0 / T), ZERO_GRADIENTS
    if T == 1:
        return np.ones(1), SolverReport("closed form (T = 1)", True, 0, 0.0)
    if T == 2:
        t = closest_on_segment(Kn[0, 0], Kn[0, 1], Kn[1, 1])
        w = np.array([1.0 - t, t])
        return w, SolverReport("closed form (T = 2)", True, 0, duality_gap(Kn, w))
    if solver == "frank_wolfe":
        return min_norm_frank_wolfe(Kn, tol, max_iter)
    return min_norm_active_set(Kn, tol, max_iter)


def duality_gap(K: np.ndarray, w: np.ndarray) -> float:
    """Frank–Wolfe gap ``wᵀKw − min_i (Kw)_i`` of the min-norm problem (0 exactly at the optimum)."""
    Kw = K @ w
    return float(w @ Kw - Kw.min())


def min_norm_frank_wolfe(K: np.ndarray, tol: float, max_iter: int) -> tuple[np.ndarray, SolverReport]:
    """MGDA paper, Algorithm 2: from the mean, step towards the vertex ``g_t`` with the smallest ``g_t·x``."""
    T = K.shape[0]
    w = np.full(T, 1.0 / T)
    for it in range(1, max_iter + 1):
        Kw = K @ w
        t = int(np.argmin(Kw))
        gap = float(w @ Kw - Kw[t])
        if gap <= tol:
            return w, SolverReport("frank_wolfe", True, it - 1, gap)
        gamma = closest_on_segment(float(w @ Kw), float(Kw[t]), float(K[t, t]))  # exact line search
        w = (1 - gamma) * w
        w[t] += gamma
    gap = duality_gap(K, w)
    return w, SolverReport("frank_wolfe", gap <= tol, max_iter, gap)


def affine_minimizer(K_S: np.ndarray) -> np.ndarray:
    """Coefficients ``a`` (summing to 1) of the least-norm point of the affine hull of a few gradients.

    When ``K_S`` is comfortably invertible, ``a = K_S⁻¹1 / (1ᵀK_S⁻¹1)`` (one small solve). Otherwise
    the KKT system ``[[K_S, 1], [1ᵀ, 0]] [a; −μ] = [0; 1]`` is solved by least squares, which also
    copes with gradients that are linearly (but not affinely) dependent.
    """
    n = K_S.shape[0]
    try:
        u = np.linalg.solve(K_S, np.ones(n))
        total = float(u.sum())
        # accept only a well-conditioned answer: K_S u = 1 to rounding, and no huge cancelling entries
        if total > 0 and np.abs(u).sum() <= 1e6 * total and np.abs(K_S @ u - 1).max() <= 1e-10:
            return u / total
    except np.linalg.LinAlgError:
        pass
    A = np.zeros((n + 1, n + 1))
    A[:n, :n] = K_S
    A[:n, n] = 1.0
    A[n, :n] = 1.0
    rhs = np.zeros(n + 1)
    rhs[n] = 1.0
    return np.linalg.lstsq(A, rhs, rcond=None)[0][:n]


def min_norm_active_set(K: np.ndarray, tol: float, max_iter: int) -> tuple[np.ndarray, SolverReport]:
    """Wolfe's minimum-norm-point algorithm on the Gramian (P. Wolfe, Math. Programming 11, 1976).

    Keep a support set S of gradients and the current point ``x = Σ_S w_s g_s``.
    Major step: add the gradient ``g_j`` with the smallest ``g_j·x``, unless the gap ``‖x‖² − g_j·x ≤ tol``.
    Minor steps: move x to the least-norm point of the affine hull of S; if that point leaves the simplex
    (a coefficient ≤ 0), stop at the boundary, drop the gradients whose weight hit zero, and repeat.
    ``max_iter`` counts the linear solves.
    """
    T = K.shape[0]
    w = np.zeros(T)
    support = [int(np.argmin(np.diag(K)))]
    w[support[0]] = 1.0
    solves = 0
    while solves < max_iter:
        Kw = K @ w
        j = int(np.argmin(Kw))
        gap = float(w @ Kw - Kw[j])
        if gap <= tol or j in support:  # j in support: the gap is rounding noise
            return w, SolverReport("active_set", gap <= tol, solves, gap)
        support.append(j)
        while solves < max_iter:  # minor cycle
            solves += 1
            a = affine_minimizer(K[np.ix_(support, support)])
            if (a > 0).all():
                w = np.zeros(T)
                w[support] = a
                break
            w_S = w[support]
            blocking = np.flatnonzero(a <= 0)
            ratios = w_S[blocking] / (w_S[blocking] - a[blocking])
            k = int(blocking[np.argmin(ratios)])
            w_S = w_S + ratios.min() * (a - w_S)
            keep = [i for i in range(len(support)) if i != k and w_S[i] > 0]
            w = np.zeros(T)
            w[[support[i] for i in keep]] = w_S[keep] / w_S[keep].sum()
            support = [support[i] for i in keep]
    gap = duality_gap(K, w)
    return w, SolverReport("active_set", gap <= tol, solves, gap)


# --------------------------------------------------------------------------- linear program on the simplex

MAX_VERTEX_CANDIDATES = 400  # beyond this many active sets, HiGHS is faster than trying every vertex
LP_FEASIBILITY_TOL = 1e-9  # on rows of order 1 (EPO's Gramian is divided by its mean diagonal first)


def simplex_lp(objective: np.ndarray, A_ub: np.ndarray, b_ub: np.ndarray) -> np.ndarray | None:
    """``argmax objectiveᵀα`` over ``α ≥ 0, Σα = 1, A_ub α ≤ b_ub``; ``None`` when no ``α`` is feasible.

    The feasible set is a bounded polytope, so when it is not empty a vertex is optimal. A vertex is where
    ``T − 1`` independent inequalities (rows of ``A_ub``, or ``α_i ≥ 0``) hold with equality together with
    ``Σα = 1``. When there are at most :data:`MAX_VERTEX_CANDIDATES` ways to choose them (T ≤ 5 in EPO),
    :func:`lp_by_vertices` solves every such ``T × T`` system at once and keeps the best feasible point —
    exact, and 20× faster than a call to ``scipy.optimize.linprog``, whose set-up costs about 1 ms however
    small the problem. Larger problems go to ``linprog`` (HiGHS). Both give the same optimum (tested on
    random programs, infeasible and degenerate ones included); when several vertices tie, either may be
    returned.
    """
    T = objective.shape[0]
    if math.comb(T + len(b_ub), T - 1) <= MAX_VERTEX_CANDIDATES:
        return lp_by_vertices(objective, A_ub, b_ub)
    return lp_by_highs(objective, A_ub, b_ub)


def lp_by_vertices(objective: np.ndarray, A_ub: np.ndarray, b_ub: np.ndarray) -> np.ndarray | None:
    """:func:`simplex_lp` by trying every vertex: all choices of ``T − 1`` tight inequalities, solved together."""
    T = objective.shape[0]
    rows = np.vstack([np.asarray(A_ub, dtype=np.float64).reshape(-1, T), -np.eye(T)])  # every inequality, ≤ form
    bounds = np.concatenate([np.asarray(b_ub, dtype=np.float64).reshape(-1), np.zeros(T)])
    combos = list(itertools.combinations(range(rows.shape[0]), T - 1))
    chosen = np.array(combos, dtype=np.intp).reshape(len(combos), T - 1)
    systems = np.concatenate([rows[chosen], np.ones((len(chosen), 1, T))], axis=1)  # [n, T, T]
    rhs = np.concatenate([bounds[chosen], np.ones((len(chosen), 1))], axis=1)  # [n, T]
    independent = np.abs(np.linalg.det(systems)) > 1e-12
    if not independent.any():
        return None
    points = np.linalg.solve(systems[independent], rhs[independent][..., None])[..., 0]  # [m, T]
    slack = points @ rows.T - bounds  # ≤ 0 where feasible
    feasible = np.all(slack <= LP_FEASIBILITY_TOL * (1.0 + np.abs(bounds)), axis=1)
    if not feasible.any():
        return None
    candidates = points[feasible]
    best = candidates[int(np.argmax(candidates @ objective))]
    best = np.maximum(best, 0.0)  # a tight α_i = 0 solved to −1e-17 is 0
    return best / best.sum()


def lp_by_highs(objective: np.ndarray, A_ub: np.ndarray, b_ub: np.ndarray) -> np.ndarray | None:
    """:func:`simplex_lp` by ``scipy.optimize.linprog`` (HiGHS)."""
    T = objective.shape[0]
    result = linprog(-objective, A_ub=A_ub if len(b_ub) else None, b_ub=b_ub if len(b_ub) else None,
                     A_eq=np.ones((1, T)), b_eq=np.ones(1), bounds=[(0, None)] * T, method="highs")
    if result.status == 2:  # infeasible
        return None
    if result.status != 0:
        raise RuntimeError(f"simplex_lp: the linear program ended with status {result.status}: {result.message}")
    return result.x / result.x.sum()  # HiGHS keeps α ≥ 0; the division removes rounding in Σα


# --------------------------------------------------------------------------- non-negative QP / dual cone


def solve_on(K: np.ndarray, q: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Minimiser of ``½ zᵀKz + qᵀz`` with the coordinates outside ``free`` held at 0 (least squares)."""
    z = np.zeros_like(q)
    idx = np.flatnonzero(free)
    if len(idx):
        z[idx] = np.linalg.lstsq(K[np.ix_(idx, idx)], -q[idx], rcond=None)[0]
    return z


def nonneg_qp(
    K: np.ndarray,
    q: np.ndarray,
    tol: float = 1e-10,
    max_iter: int = 100,
    free: np.ndarray | None = None,
) -> tuple[np.ndarray, SolverReport]:
    """``min_z ½ zᵀKz + qᵀz`` subject to ``z ≥ 0`` (K positive semi-definite), by Lawson–Hanson's active set.

    Coordinates are either held at 0 or "free". Repeat: if no held coordinate has a gradient
    ``(Kz + q)_j < −tol``, stop (the KKT conditions hold); else free the most negative one and solve the
    unconstrained problem on the free set; while that solution has a free coordinate ≤ 0, move from z
    towards it up to the first coordinate that reaches 0, and hold that coordinate again.
    ``max_iter`` counts the linear solves. K and q are used as given (callers normalise K).

    ``free`` (optional, a boolean mask) is a guess of the coordinates that end up positive, e.g. the
    answer to a neighbouring problem: if the minimiser on that set is positive there, the method starts
    from it (often the answer itself: one solve instead of one per coordinate); otherwise from z = 0.

    The method terminates after finitely many solves when ``q`` lies in the range of K (it is then the
    NNLS problem ``min ‖Gᵀz + c‖²`` that Lawson & Hanson solve; UPGrad's ``q = Ku`` is) or when K is
    positive definite; CAGrad, whose ``q`` has a constant term, adds a tiny ridge to K for that reason.
    """
    T = q.shape[0]
    z = np.zeros_like(q)
    solves = 0
    if free is not None and free.any():
        solves += 1
        s = solve_on(K, q, free)
        if (s[free] > 0).all():
            z = s
        else:
            free = None
    free = np.zeros(T, dtype=bool) if free is None else free.copy()
    while solves < max_iter:
        grad = K @ z + q
        blocked = ~free & (grad < -tol)
        if not blocked.any():
            return z, SolverReport("active_set", True, solves, kkt_residual(K, q, z))
        free[int(np.argmin(np.where(blocked, grad, np.inf)))] = True
        while solves < max_iter:
            solves += 1
            s = solve_on(K, q, free)
            if (s[free] > 0).all():
                z = s
                break
            blocking = np.flatnonzero(free & (s <= 0))
            ratios = z[blocking] / (z[blocking] - s[blocking])
            z = z + ratios.min() * (s - z)
            free[int(blocking[np.argmin(ratios)])] = False
            free &= z > 0
            z = np.where(free, z, 0.0)
    residual = kkt_residual(K, q, z)
    return z, SolverReport("active_set", residual <= tol, solves, residual)


def kkt_residual(K: np.ndarray, q: np.ndarray, z: np.ndarray) -> float:
    """Largest violation of the optimality conditions ``Kz + q ≥ 0`` and ``z_j (Kz + q)_j = 0``."""
    grad = K @ z + q
    return float(np.maximum(np.clip(-grad, 0.0, None), np.abs(z * grad)).max())


def dual_cone_weights(
    K: torch.Tensor | np.ndarray,
    U: torch.Tensor | np.ndarray,
    tol: float = 1e-10,
    max_iter: int = 100,
    reg: float = 0.0,
) -> tuple[np.ndarray, SolverReport]:
    """For each row ``u`` of ``U``, the ``v`` with ``Gᵀv`` = the projection of ``Gᵀu`` onto the dual cone.

    The dual cone of the gradients is ``{x : g_i·x ≥ 0 for all i}``: the directions that conflict with
    no task. By Quinton & Rey (2024, Proposition 1), projecting ``Gᵀu`` onto it amounts to the small QP
    ``min_v ½ vᵀKv`` subject to ``v ≥ u``. With ``v = u + z`` this is :func:`nonneg_qp` with ``q = Ku``.
    ``v`` does not depend on the scale of K. ``reg`` adds ``reg·I`` to ``K/tr(K)`` (TorchJD adds 1e-4 so
    that its QP solver sees a positive-definite matrix; 0 solves the exact problem).
    """
    Kn, _ = normalized_gramian(K)
    T = Kn.shape[0]
    Kn = Kn + (reg * T) * np.eye(T)  # Kn = K/(tr K/T): reg·I on K/tr K is reg·T·I here
    U = as_float64(U).reshape(-1, T)
    rows, reports = [], []
    for u in U:
        z, report = nonneg_qp(Kn, Kn @ u, tol, max_iter)
        rows.append(u + z)
        reports.append(report)
    return np.stack(rows), merge_reports(reports)


# --------------------------------------------------------------------------- Nash bargaining (Nash-MTL)


def nash_weights(
    K: torch.Tensor | np.ndarray,
    start: np.ndarray | None = None,
    tol: float = 1e-12,
    max_iter: int = 100,
    reg: float = 1e-8,
) -> tuple[np.ndarray, SolverReport]:
    """The ``α > 0`` with ``α_i (Kα)_i = 1`` for every task: the Nash bargaining solution of Nash-MTL.

    The system is the stationarity condition ``Kα − 1/α = 0`` of the strictly convex potential
    ``φ(α) = ½ αᵀKα − Σ_i log α_i``. φ is self-concordant, so the damped Newton method
    ``α ← α − Δ/(1 + λ)`` (Newton step ``Δ = H⁻¹∇φ``, decrement ``λ² = ∇φᵀΔ``) stays in ``α > 0`` and
    converges from any start, quadratically near the solution; it stops after a step whose ``λ²/2``
    (about ``φ(α) − min φ``) is at most ``tol``.

    On the normalised Gramian ``K/s`` the solution is ``α̂``, and ``α = α̂/√s``. ``reg·I`` is added to
    ``K/s`` so that a solution exists when some gradients vanish or cancel (the exact system then has
    none: such α grow like ``1/√reg`` and the report's ``residual``, ``max_i |α_i (Kα)_i − 1|`` on the
    un-regularised K, shows it). ``start`` (e.g. the previous step's α, any scale) is rescaled so that
    the mean of ``α_i (Kα)_i`` is 1 and used as the starting point; the default start is all ones.
    """
    Kn, scale = normalized_gramian(K)
    T = Kn.shape[0]
    if scale == 0:  # no gradient information at all: the system has no solution; α = 1 gives d = 0 anyway
        return np.ones(T), SolverReport("none (every gradient is zero)", True, 0, 1.0)
    A = Kn + reg * np.eye(T)
    alpha = nash_start(A, start, scale)
    converged, iterations = False, 0
    while iterations < max_iter:
        iterations += 1
        grad = A @ alpha - 1 / alpha
        hessian = A + np.diag(1 / alpha**2)
        step = np.linalg.solve(hessian, grad)
        decrement = max(float(grad @ step), 0.0) ** 0.5
        alpha = alpha - step / (1 + decrement)
        if decrement**2 / 2 <= tol:  # the step just taken was (nearly) a full Newton step
            converged = True
            break
    residual = float(np.abs(alpha * (Kn @ alpha) - 1).max())
    return alpha / scale**0.5, SolverReport("damped_newton", converged, iterations, residual)


def nash_start(A: np.ndarray, start: np.ndarray | None, scale: float) -> np.ndarray:
    """A positive starting point whose mean Nash product ``α_i (Aα)_i`` is 1."""
    T = A.shape[0]
    alpha = np.ones(T)
    if start is not None:
        candidate = as_float64(start).reshape(-1) * scale**0.5
        if candidate.shape[0] == T and (candidate > 0).all() and np.isfinite(candidate).all():
            alpha = candidate
    product = float((alpha * (A @ alpha)).mean())
    return alpha / product**0.5 if product > 0 else alpha


# --------------------------------------------------------------------------- weights of a given direction


def least_squares_fit(G: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The weights ``w`` with ``Gᵀw`` closest to ``d``, and the relative residual ``‖Gᵀw − d‖ / ‖d‖``.

    Solves the normal equations ``K w = G d`` through the Gramian (so the [P, T] matrix is never
    factorised), with eigenvalues below :func:`rank_tolerance` treated as zero: for dependent gradients
    this gives the least-norm ``w``. A residual near 0 means ``d`` lies in the span of the gradients.
    ``G`` and ``d`` stay where they are; only the T×T system goes to the CPU.

    The residual comes from the same small numbers, ``‖Gᵀw − d‖² = wᵀKw − 2wᵀ(Gd) + ‖d‖²``, without
    another pass over the ``P`` coordinates. That difference cancels when ``d`` is (nearly) in the span;
    below a relative residual of 1e-2 it is recomputed from the vectors.
    """
    T = G.shape[0]
    dd = float(d @ d)
    K = as_float64(G @ G.T)
    Gd = as_float64(G @ d)
    scale = float(np.trace(K)) / T
    if scale == 0 or dd == 0:
        return torch.zeros(T, dtype=G.dtype, device=G.device), 0.0 if dd == 0 else 1.0
    rcond = rank_tolerance(G.dtype, T)
    w = np.linalg.lstsq(K / scale, Gd / scale, rcond=rcond)[0]
    residual = max(float(w @ K @ w - 2 * w @ Gd + dd), 0.0) ** 0.5 / dd**0.5
    w = torch.from_numpy(w).to(device=G.device, dtype=G.dtype)
    if residual < 1e-2:
        residual = float((w @ G - d).norm()) / dd**0.5
    return w, residual
