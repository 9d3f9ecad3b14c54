"""Every start × every method of the CAGrad toy problem, integrated at once (vectorised).

Same problem, same methods and the same optimiser as :func:`mtl_lab.toy.method_paths`, which follows one
method at a time and calls the method's own solver at every step. Here all trajectories are a batch of
points ``x[N, 2]`` moved together, and each step costs a fixed, small number of array operations
(independent of the number of trajectories), which is what makes the paper's 100 000 steps fast enough
for a notebook:

* **Gradients in closed form.** With ``u1 = −x1/2 − 7/2 + tanh x2`` and ``u2 = −x1/2 + 7/2 − tanh x2``
  the valley terms are ``a_t = log|u_t| + 6`` (``|u_t|`` floored at 5e-6, where the gradient is 0), so
  ``∂a1 = (−½, 1 − tanh² x2)/u1`` and ``∂a2 = (−½, −(1 − tanh² x2))/u2``; the bowls give
  ``∂b1 = ((x1 − 7)/5, (x2 + 8)/50)`` and ``∂b2 = ((x1 + 7)/5, (x2 + 8)/50)``; the blend
  ``up = max(tanh(x2/2), 0)`` has ``∂up/∂x2 = ½(1 − tanh²(x2/2))`` where ``x2 ≥ 0`` (``down`` mirrors it;
  at ``x2 = 0`` both count, as in autograd).
  Then ``∇L_t = up·∇a_t + a_t·∇up + down·∇b_t + b_t·∇down``.
* **Two-task combinations in closed form**, from the three numbers of the Gramian ``k11 = ‖g1‖²``,
  ``k12 = g1·g2``, ``k22 = ‖g2‖²``; the direction is ``d = w1·g1 + w2·g2`` with the weights each method
  returns in training:

  - ``equal``: ``w = (1, 1)``.
  - ``mgda`` (Sener & Koltun, NeurIPS 2018, Algorithm 1): ``γ = clip((k22 − k12)/(k11 − 2k12 + k22), 0, 1)``,
    ``w = (γ, 1 − γ)`` (½ each when ``g1 = g2``).
  - ``pcgrad`` (Yu et al., NeurIPS 2020): when ``k12 < 0`` each gradient loses its component along the
    other, ``w = (1 − k12/k22, 1 − k12/k11)``; else ``w = (1, 1)``. With two tasks the random order
    of the paper's algorithm does not matter.
  - ``cagrad`` (Liu et al., NeurIPS 2021): the dual over the simplex, ``w = (α, 1 − α)``,
    ``F(α) = g_α·g0 + r‖g_α‖`` with ``g_α = g2 + α e``, ``e = g1 − g2``, ``r = c‖g0‖``. With
    ``A = ‖e‖², B = g2·e, C = ‖g2‖², p = e·g0`` and ``κ = p²/r²``, ``F′(α) = 0`` is
    ``(B + αA)² = κ(C + 2Bα + Aα²)`` with ``B + αA`` of the sign opposite to ``p``; its root is
    (``AC − B² = (g1 × g2)²``, taken from the gradients, not the Gramian, which cancels there)
    ``α = −B/A − sign(p)·√(κ(AC − B²) / (A²(A − κ)))`` when ``A > κ``; F is convex, so clipping the
    root to [0, 1] gives the minimiser (when ``A ≤ κ``, F is monotone and the minimiser is the end
    ``α = 0`` if ``p > 0``, else 1). The weights are ``(½ + r α/‖g_α‖, ½ + r (1 − α)/‖g_α‖)``
    divided by the method's ``rescale`` divisor. Where the gradients are opposed (Pareto-stationary,
    by the solver's own test: ``(1 + cos)/2 ≤ 1e-12``) and α falls inside (0, 1), ``g_α`` vanishes and
    the optimum is not unique; those points are handed to the method's own solver, so that both paths
    agree. (On the toy with ``c = 0.5`` the opposed gradients along the Pareto set give α = 0 or 1.)
* **Adam written out on the batch**, operation for operation as ``torch.optim.Adam`` (Kingma & Ba,
  ICLR 2015; β = (0.9, 0.999), ε = 1e-8, no weight decay): ``m ← m + (1 − β1)(d − m)``,
  ``v ← β2 v + (1 − β2) d²``, ``x ← x − (lr/(1 − β1^k))·m / (√v/√(1 − β2^k) + ε)``; or plain SGD,
  ``x ← x − lr·d``.

Everything is float64 NumPy (a few dozen numbers per step: far below what an accelerator or torch's
per-call cost would pay off). :func:`mtl_lab.toy.method_paths` uses this path for the methods and
options in :data:`VECTORISED` and the per-step path for every other method; the two agree to rounding
(``tests/test_toy.py`` checks it on 2 000 steps).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mtl_lab.weighting import create
from mtl_lab.weighting.cagrad import RESCALE_DIVISORS
from mtl_lab.weighting.solvers import rank_tolerance

LOWER = 5e-6  # the floor under the logarithms' arguments (as in mtl_lab.toy)
BETAS = (0.9, 0.999)
EPS = 1e-8
RANK = rank_tolerance(np.dtype(np.float64), 2)  # the solvers' cut-off for a Gramian's small eigenvalues
PROGRESS_EVERY = 500  # steps between two progress calls (well under 0.5 s)
# the methods this module combines in closed form, and the options each accepts here; other options
# (e.g. MGDA's normalisations) make the caller use the per-step path
VECTORISED: dict[str, tuple[str, ...]] = {
    "equal": (),
    "mgda": ("solver", "tol", "max_iter"),
    "pcgrad": (),
    "cagrad": ("c", "rescale", "tol", "max_iter"),
}


def can_vectorise(method: str, options: dict | None) -> bool:
    """Whether ``method`` with these ``options`` has a closed form here."""
    return method in VECTORISED and all(k in VECTORISED[method] for k in (options or {}))


TASK_SIGN = np.array([[-1.0], [1.0]])  # u_t = −x1/2 ∓ (7/2 − tanh x2): task 1 takes −, task 2 +
SHIFT = np.array([[-7.0], [7.0]])  # the bowls' centres: b_t = (x1 ∓ 7)²/10 + …


def losses_and_gradients(x1: np.ndarray, x2: np.ndarray, losses: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The losses ``L[2, N]`` (or ``None``) and the gradients ``G[2, 2, N]`` (task, coordinate, point).

    Stacked over the two tasks, so that each line below is one array operation for both.
    """
    th = np.tanh(x2)
    u = -0.5 * x1 + TASK_SIGN * (3.5 - th)  # [2, N]
    size = np.abs(u)
    a = np.log(np.maximum(size, LOWER)) + 6.0
    inv = (size >= LOWER) / u  # d log|u| / du, 0 on the floor
    half = np.tanh(0.5 * x2)
    slope = 0.5 - 0.5 * half * half
    above = x2 >= 0  # at the kink x2 = 0 both one-sided slopes count, as autograd's clamp takes them
    up = half * above  # max(tanh(x2/2), 0)
    down = up - half  # max(−tanh(x2/2), 0)
    dup = slope * above
    ddown = slope * (x2 <= 0) * -1.0
    lifted = x2 + 8.0
    centred = x1 + SHIFT
    b = 0.1 * centred * centred + (0.01 * lifted * lifted - 20.0)
    G = np.empty((2, 2, x1.shape[0]))
    G[:, 0] = -0.5 * up * inv + 0.2 * down * centred
    G[:, 1] = (-TASK_SIGN * (up * (1.0 - th * th))) * inv + dup * a + ddown * b + 0.02 * down * lifted
    return (up * a + down * b if losses else None), G


def mgda_weights(
    k11: np.ndarray, k12: np.ndarray, k22: np.ndarray, cross2: np.ndarray, options: dict
) -> tuple[np.ndarray, np.ndarray]:
    """γ of the min-norm point; NaN where ``g1 = g2`` (the solver's ½ then applies)."""
    denom = k11 - 2.0 * k12 + k22
    t = np.minimum(np.maximum((k11 - k12) / np.where(denom > 1e-14 * (k11 + k22), denom, np.nan), 0.0), 1.0)
    return 1.0 - t, t


def pcgrad_weights(
    k11: np.ndarray, k12: np.ndarray, k22: np.ndarray, cross2: np.ndarray, options: dict
) -> tuple[np.ndarray, np.ndarray]:
    """Each gradient projected off the other when they conflict (``k12 < 0``)."""
    conflict = np.minimum(k12, 0.0)
    return 1.0 - conflict / k11, 1.0 - conflict / k22


def cagrad_weights(
    k11: np.ndarray, k12: np.ndarray, k22: np.ndarray, cross2: np.ndarray, options: dict
) -> tuple[np.ndarray, np.ndarray]:
    """The dual's closed form (module docstring); NaN where the method's own solver must decide.

    ``cross2 = (g1 × g2)² = k11·k22 − k12²``, given from the gradients themselves: computed from the
    Gramian it cancels to 0 near the balanced point, where the two gradients are almost opposed.
    """
    c = float(options.get("c", 0.5))
    divisor = RESCALE_DIVISORS[options.get("rescale", 1)](c)
    total, cross = k11 + k22, 2.0 * k12
    A = total - cross  # ‖e‖²
    r2 = (0.25 * c * c) * (total + cross)  # r² = c²‖g0‖²
    B = k12 - k22  # g2·e
    p = 0.5 * (k11 - k22)  # e·g0
    kappa = p * p / r2
    room = A - kappa
    # s² = κ(AC − B²) / (A²(A − κ)) with AC − B² = (g1 × g2)²; A ≤ κ: s = inf, so that the clip picks
    # F's lower end
    s = np.sqrt(np.where(room > 0, kappa * cross2 / (A * A * room), np.inf))
    nearest = -B / A  # the least-norm point of the segment (unclipped)
    alpha = np.minimum(np.maximum(nearest - np.sign(p) * s, 0.0), 1.0)
    norm2 = cross2 / A + A * (alpha - nearest) ** 2  # ‖g_α‖², without cancellation
    # Pareto-stationary as the solver decides it, on the unit gradients: ‖(ĝ1 + ĝ2)/2‖² = (1 + cos)/2 ≤ 1e-12,
    # with 1 + cos = (1 − cos²)/(1 − cos) = (g1 × g2)²/(k11·k22·(1 − cos)). With α inside (0, 1) the dual's
    # g_α then vanishes and the optimum is not unique: the solver's choice is taken there
    # (or where the solver's Gramian, cleaned of eigenvalues below RANK·λ_max, has rank 1: λ_min ≈ (g1 × g2)²/tr K)
    cosine = k12 / np.sqrt(k11 * k22)
    opposed = (cross2 <= 2e-12 * k11 * k22 * (1.0 - cosine)) | (cross2 <= RANK * total * total)
    stationary = (cosine < 0) & opposed & (room > 0)
    lam = np.sqrt(r2 / np.where(stationary, np.nan, norm2))  # r/‖g_α‖
    # and where g_0 is lost in rounding (the gradients cancel, as at the balanced point: r² even comes out
    # ≤ 0), the correction r/‖g_α‖·g_α is rounding noise: the mean's weights, as the solver gives for
    # c‖g_0‖ = 0
    lost = (r2 <= 0) | (stationary & (r2 <= 1e-12 * c * c * total))
    lam, alpha = np.where(lost, 0.0, lam), np.where(lost, 0.5, alpha)
    return (0.5 + lam * alpha) / divisor, (0.5 + lam * (1.0 - alpha)) / divisor


COMBINE = {"mgda": mgda_weights, "pcgrad": pcgrad_weights, "cagrad": cagrad_weights}  # equal: (1, 1) throughout


def solver_fallback(method: str, options: dict, k11: float, k12: float, k22: float) -> tuple[float, float]:
    """The method's own solver at one point (used where the closed form is undefined)."""
    import torch  # local: only these rare points need it

    from mtl_lab.weighting import StepContext

    K = torch.tensor([[k11, k12], [k12, k22]], dtype=torch.float64)
    weighting = create(method, **options)
    weighting.reset(["L1", "L2"])
    w = weighting.combine(torch.ones(2, dtype=torch.float64), K, StepContext()).weights
    return float(w[0]), float(w[1])


def record_stride(steps: int, max_points: int) -> int:
    """Keep every k-th point so that a path has at most about ``max_points`` of them."""
    return max(1, math.ceil(steps / max(1, max_points - 1)))


def integrate(
    methods: list[str],
    starts: list[tuple[float, float]],
    steps: int,
    lr: float,
    optimizer: str,
    options: dict[str, dict],
    every: int,
    progress: Callable[[float], bool] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Move every (method, start) point together for ``steps`` steps; keep every ``every``-th step.

    ``progress`` (optional) is called with the fraction done every :data:`PROGRESS_EVERY` steps; when
    it returns False the run ends there (that step's point is the last one kept).

    Returns, per method, arrays over its starts: ``step[R]`` (the recorded step numbers, the last one
    included), ``points[S, R, 2]``, ``losses[S, R, 2]`` and, for the recorded steps but the last,
    ``weights[S, R−1, 2]`` and ``directions[S, R−1, 2]`` (the weights and ``d`` of the step taken there).
    """
    M, S = len(methods), len(starts)
    N = M * S  # point n = (method n // S, start n % S)
    X = np.tile(np.asarray(starts, dtype=np.float64).T, (1, M))  # [2, N]: x1 and x2 of every point
    m, v = np.zeros((2, N)), np.zeros((2, N))
    W = np.ones((2, N))  # the weights of each point's method ("equal" keeps its ones)
    blocks = [(slice(i * S, (i + 1) * S), COMBINE[name], options.get(name, {}))
              for i, name in enumerate(methods) if name in COMBINE]
    recorded = list(range(0, steps, every)) + [steps]
    R = len(recorded)
    points, losses = np.zeros((R, 2, N)), np.zeros((R, 2, N))
    weights, directions = np.zeros((max(R - 1, 0), 2, N)), np.zeros((max(R - 1, 0), 2, N))
    beta1, beta2 = BETAS
    row = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        for step in range(steps + 1):
            if progress is not None and 0 < step < steps and step % PROGRESS_EVERY == 0 and not progress(step / steps):
                del recorded[row + 1:]
                recorded[row] = step
            keep = step == recorded[row]
            L, G = losses_and_gradients(X[0], X[1], losses=keep)
            if keep:
                points[row], losses[row] = X, L
                if row == len(recorded) - 1:
                    break
            diag = G[:, 0] * G[:, 0] + G[:, 1] * G[:, 1]  # [2, N]: ‖g1‖², ‖g2‖²
            k12 = G[0, 0] * G[1, 0] + G[0, 1] * G[1, 1]
            det = G[0, 0] * G[1, 1] - G[0, 1] * G[1, 0]  # g1 × g2
            cross2 = det * det
            for part, combine, opts in blocks:
                W[0, part], W[1, part] = combine(diag[0, part], k12[part], diag[1, part], cross2[part], opts)
            if blocks and np.isnan(W).any():
                fill_from_solver(W, diag, k12, methods, options, S)
            D = W[0] * G[0] + W[1] * G[1]  # [2, N]: the direction of each point
            if keep:
                weights[row], directions[row] = W, D
                row += 1
            if optimizer == "adam":
                k = step + 1
                m += (1.0 - beta1) * (D - m)
                v *= beta2
                v += (1.0 - beta2) * (D * D)
                X -= (lr / (1.0 - beta1**k)) * (m / (np.sqrt(v) / (1.0 - beta2**k) ** 0.5 + EPS))
            else:
                X -= lr * D
    R = len(recorded)  # fewer when stopped early
    out = {}
    for i, method in enumerate(methods):
        part = slice(i * S, (i + 1) * S)
        out[method] = {
            "step": np.asarray(recorded),
            **{name: np.ascontiguousarray(array[:rows, :, part].transpose(2, 0, 1))
               for name, array, rows in (("points", points, R), ("losses", losses, R), ("weights", weights, R - 1),
                                         ("directions", directions, R - 1))},
        }
    return out


def fill_from_solver(W: np.ndarray, diag: np.ndarray, k12: np.ndarray, methods: list[str],
                     options: dict[str, dict], S: int) -> None:
    """Replace the NaN weights (points the closed forms leave undefined) by the method's own solver's."""
    for n in np.flatnonzero(np.isnan(W[0]) | np.isnan(W[1])):
        method = methods[n // S]
        W[0, n], W[1, n] = solver_fallback(method, options.get(method, {}), float(diag[0, n]), float(k12[n]),
                                           float(diag[1, n]))
