"""Every start × every method of the CAGrad toy problem, integrated together in closed form.

Same problem, same methods and the same optimiser as :func:`mtl_lab.toy.method_paths`, which follows one
method at a time with autograd and calls the method's own solver at every step. Here every step of every
(method, start) path is a few dozen float operations — no autograd, no solver — and all paths advance
together, :data:`PROGRESS_EVERY` steps at a time, which is what makes the paper's 100 000 steps fast
enough for a notebook:

* **Gradients in closed form.** With ``u1 = −x1/2 − 7/2 + tanh x2`` and ``u2 = −x1/2 + 7/2 − tanh x2``
  the valley terms are ``a_t = log|u_t| + 6`` (``|u_t|`` floored at 5e-6, where the gradient is 0), so
  ``∂a1 = (−½, 1 − tanh² x2)/u1`` and ``∂a2 = (−½, −(1 − tanh² x2))/u2``; the bowls give
  ``∂b1 = ((x1 − 7)/5, (x2 + 8)/50)`` and ``∂b2 = ((x1 + 7)/5, (x2 + 8)/50)``; the blend
  ``up = max(tanh(x2/2), 0)`` has ``∂up/∂x2 = ½(1 − tanh²(x2/2))`` where ``x2 ≥ 0`` (``down`` mirrors it;
  at ``x2 = 0`` both count, as in autograd).
  Then ``∇L_t = up·∇a_t + a_t·∇up + down·∇b_t + b_t·∇down``: above the axis only the valley terms are
  computed (``down = 0``), below it only the bowl terms (``up = 0``), at ``x2 = 0`` both.
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
  - Where a closed form divides by zero (a zero gradient, ``g1 = g2``) the method's own solver decides too.
* **Adam written out per path**, operation for operation as ``torch.optim.Adam`` (Kingma & Ba,
  ICLR 2015; β = (0.9, 0.999), ε = 1e-8, no weight decay): ``m ← m + (1 − β1)(d − m)``,
  ``v ← β2 v + (1 − β2) d²``, ``x ← x − (lr/(1 − β1^k))·m / (√v/√(1 − β2^k) + ε)``; or plain SGD,
  ``x ← x − lr·d``.

Everything is plain Python floats (IEEE float64, the same numbers a float64 array holds), one path at a
time within each block of steps. A step of all paths is only a few dozen numbers: as NumPy arrays it
would cost ~150 calls at 0.5–1.5 µs of per-call overhead each, five times the plain arithmetic, which
also does only what each path needs (its own method's weights; the valley or the bowl side); an
accelerator or torch's per-call cost would not pay off at this size either. :func:`mtl_lab.toy.method_paths` uses this
path for the methods and options in :data:`VECTORISED` and the per-step path for every other method; the
two agree to rounding (``tests/test_toy.py`` checks it on 2 000 steps; over longer runs rounding
differences grow where paths cross the valley floors, for either path against the other).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mtl_lab.weighting import create
from mtl_lab.weighting.cagrad import RESCALE_DIVISORS
from mtl_lab.weighting.solvers import rank_tolerance

LOWER = 5e-6  # the floor under the logarithms' arguments (as in mtl_lab.toy)
BETAS = (0.9, 0.999)
EPS = 1e-8
RANK = rank_tolerance(np.dtype(np.float64), 2)  # the solvers' cut-off for a Gramian's small eigenvalues
PROGRESS_EVERY = 500  # steps between two progress calls (~20 ms for 12 paths: Stop stays prompt)
# the methods this module combines in closed form, and the options each accepts here; other options
# (e.g. MGDA's normalisations) make the caller use the per-step path
VECTORISED: dict[str, tuple[str, ...]] = {
    "equal": (),
    "mgda": ("solver", "tol", "max_iter"),
    "pcgrad": (),
    "cagrad": ("c", "rescale", "tol", "max_iter"),
}

Weights = Callable[[float, float, float, float], tuple[float, float]]  # (k11, k12, k22, (g1 × g2)²) → (w1, w2)
NAN = float("nan")


def can_vectorise(method: str, options: dict | None) -> bool:
    """Whether ``method`` with these ``options`` has a closed form here."""
    return method in VECTORISED and all(k in VECTORISED[method] for k in (options or {}))


def losses_and_gradients(x1: float, x2: float) -> tuple[float, float, float, float, float, float]:
    """``(L1, L2, g1[0], g1[1], g2[0], g2[1])`` at the point ``(x1, x2)``.

    Above the axis only the valleys count (``down = 0``), below it only the bowls (``up = 0``); at
    ``x2 = 0`` both one-sided slopes count, as autograd's clamp takes them.
    """
    L1 = L2 = g11 = g12 = g21 = g22 = 0.0
    if x2 >= 0.0:  # L_t = up·a_t, up = tanh(x2/2)
        th = math.tanh(x2)
        up = math.tanh(0.5 * x2)
        dup = 0.5 - 0.5 * up * up
        u1 = -0.5 * x1 - (3.5 - th)
        u2 = -0.5 * x1 + (3.5 - th)
        size1, size2 = abs(u1), abs(u2)
        a1 = math.log(size1 if size1 > LOWER else LOWER) + 6.0
        a2 = math.log(size2 if size2 > LOWER else LOWER) + 6.0
        inv1 = 1.0 / u1 if size1 >= LOWER else 0.0  # d log|u| / du, 0 on the floor
        inv2 = 1.0 / u2 if size2 >= LOWER else 0.0
        slope = up * (1.0 - th * th)
        L1, L2 = up * a1, up * a2
        g11, g21 = -0.5 * up * inv1, -0.5 * up * inv2
        g12, g22 = slope * inv1 + dup * a1, -slope * inv2 + dup * a2
    if x2 <= 0.0:  # L_t = down·b_t, down = −tanh(x2/2)
        half = math.tanh(0.5 * x2)
        down = -half
        ddown = -(0.5 - 0.5 * half * half)
        lifted = x2 + 8.0
        centred1, centred2 = x1 - 7.0, x1 + 7.0
        base = 0.01 * lifted * lifted - 20.0
        b1, b2 = 0.1 * centred1 * centred1 + base, 0.1 * centred2 * centred2 + base
        rise = 0.02 * down * lifted
        L1, L2 = L1 + down * b1, L2 + down * b2
        g11, g21 = g11 + 0.2 * down * centred1, g21 + 0.2 * down * centred2
        g12, g22 = g12 + ddown * b1 + rise, g22 + ddown * b2 + rise
    return L1, L2, g11, g12, g21, g22


def mgda_weights(options: dict) -> Weights:
    """γ of the min-norm point; NaN where ``g1 = g2`` (the solver's ½ then applies)."""

    def weights(k11: float, k12: float, k22: float, cross2: float) -> tuple[float, float]:
        denom = k11 - 2.0 * k12 + k22
        if not denom > 1e-14 * (k11 + k22):
            return NAN, NAN
        t = min(max((k11 - k12) / denom, 0.0), 1.0)
        return 1.0 - t, t

    return weights


def pcgrad_weights(options: dict) -> Weights:
    """Each gradient projected off the other when they conflict (``k12 < 0``)."""

    def weights(k11: float, k12: float, k22: float, cross2: float) -> tuple[float, float]:
        if k12 >= 0.0:
            return 1.0, 1.0
        return 1.0 - k12 / k11, 1.0 - k12 / k22

    return weights


def cagrad_weights(options: dict) -> Weights:
    """The dual's closed form (module docstring); NaN where the method's own solver must decide.

    ``cross2 = (g1 × g2)² = k11·k22 − k12²``, given from the gradients themselves: computed from the
    Gramian it cancels to 0 near the balanced point, where the two gradients are almost opposed.
    """
    c = float(options.get("c", 0.5))
    divisor = RESCALE_DIVISORS[options.get("rescale", 1)](c)
    quarter_c2, tiny = 0.25 * c * c, 1e-12 * c * c
    mean = 0.5 / divisor

    def weights(k11: float, k12: float, k22: float, cross2: float) -> tuple[float, float]:
        total, cross = k11 + k22, 2.0 * k12
        A = total - cross  # ‖e‖²
        r2 = quarter_c2 * (total + cross)  # r² = c²‖g0‖²
        if r2 <= 0.0:  # g_0 lost in rounding (the gradients cancel): the mean's weights, as for c‖g_0‖ = 0
            return mean, mean
        B = k12 - k22  # g2·e
        p = 0.5 * (k11 - k22)  # e·g0
        kappa = p * p / r2
        room = A - kappa
        nearest = -B / A  # the least-norm point of the segment (unclipped)
        if room > 0.0:  # s² = κ(AC − B²) / (A²(A − κ)) with AC − B² = (g1 × g2)²
            s = math.sqrt(kappa * cross2 / (A * A * room))
            alpha = nearest - s if p > 0.0 else nearest + s if p < 0.0 else nearest
            alpha = min(max(alpha, 0.0), 1.0)
        else:  # A ≤ κ: F is monotone, its minimiser the lower end
            alpha = 0.0 if p > 0.0 else 1.0
        gap = alpha - nearest
        norm2 = cross2 / A + A * (gap * gap)  # ‖g_α‖², without cancellation
        # Pareto-stationary as the solver decides it, on the unit gradients: ‖(ĝ1 + ĝ2)/2‖² = (1 + cos)/2 ≤ 1e-12,
        # with 1 + cos = (1 − cos²)/(1 − cos) = (g1 × g2)²/(k11·k22·(1 − cos)). With α inside (0, 1) the dual's
        # g_α then vanishes and the optimum is not unique: the solver's choice is taken there (or where the
        # solver's Gramian, cleaned of eigenvalues below RANK·λ_max, has rank 1: λ_min ≈ (g1 × g2)²/tr K)
        cosine = k12 / math.sqrt(k11 * k22)
        if room > 0.0 and cosine < 0.0 and (cross2 <= 2e-12 * k11 * k22 * (1.0 - cosine)
                                            or cross2 <= RANK * total * total):
            if r2 <= tiny * total:  # the correction r/‖g_α‖·g_α is rounding noise: the mean's weights
                return mean, mean
            return NAN, NAN
        lam = math.sqrt(r2 / norm2)  # r/‖g_α‖
        return (0.5 + lam * alpha) / divisor, (0.5 + lam * (1.0 - alpha)) / divisor

    return weights


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


@dataclass
class Walk:
    """One (method, start) path: where it is, Adam's two moments, and what is kept of it (flat lists)."""

    method: str
    x1: float
    x2: float
    m1: float = 0.0
    m2: float = 0.0
    v1: float = 0.0
    v2: float = 0.0
    points: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    directions: list[float] = field(default_factory=list)


def advance(walk: Walk, schedule: list[tuple[bool, float, float]], weights_of: Weights | None, adam: bool,
            options: dict) -> None:
    """Take the steps of ``schedule`` (per step: keep it?, step size, Adam's √(1 − β2^k)) on one path."""
    x1, x2, m1, m2, v1, v2 = walk.x1, walk.x2, walk.m1, walk.m2, walk.v1, walk.v2
    beta1, beta2 = BETAS
    rate1, rate2 = 1.0 - beta1, 1.0 - beta2  # (the same floats torch.optim.Adam uses)
    sqrt = math.sqrt
    w1 = w2 = 1.0  # "equal" keeps its ones
    for keep, size, root in schedule:
        L1, L2, g11, g12, g21, g22 = losses_and_gradients(x1, x2)
        if weights_of is None:
            d1, d2 = g11 + g21, g12 + g22
        else:
            k11, k22, k12 = g11 * g11 + g12 * g12, g21 * g21 + g22 * g22, g11 * g21 + g12 * g22
            det = g11 * g22 - g12 * g21  # g1 × g2
            try:
                w1, w2 = weights_of(k11, k12, k22, det * det)
            except ZeroDivisionError:  # a zero gradient or g1 = g2: the closed form is undefined
                w1 = w2 = NAN
            if w1 != w1 or w2 != w2:  # NaN: the closed form hands the point to the method's own solver
                w1, w2 = solver_fallback(walk.method, options, k11, k12, k22)
            d1, d2 = w1 * g11 + w2 * g21, w1 * g12 + w2 * g22
        if keep:
            walk.points += (x1, x2)
            walk.losses += (L1, L2)
            walk.weights += (w1, w2)
            walk.directions += (d1, d2)
        if adam:
            m1 += rate1 * (d1 - m1)
            m2 += rate1 * (d2 - m2)
            v1 = v1 * beta2 + rate2 * (d1 * d1)
            v2 = v2 * beta2 + rate2 * (d2 * d2)
            x1 -= size * (m1 / (sqrt(v1) / root + EPS))
            x2 -= size * (m2 / (sqrt(v2) / root + EPS))
        else:
            x1 -= size * d1
            x2 -= size * d2
    walk.x1, walk.x2, walk.m1, walk.m2, walk.v1, walk.v2 = x1, x2, m1, m2, v1, v2


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
    """Move every (method, start) point for ``steps`` steps; keep every ``every``-th step.

    The paths advance together, :data:`PROGRESS_EVERY` steps at a time; ``progress`` (optional) is called
    with the fraction done after each such block, and when it returns False the run ends there (that
    step's point is the last one kept).

    Returns, per method, arrays over its starts: ``step[R]`` (the recorded step numbers, the last one
    included), ``points[S, R, 2]``, ``losses[S, R, 2]`` and, for the recorded steps but the last,
    ``weights[S, R−1, 2]`` and ``directions[S, R−1, 2]`` (the weights and ``d`` of the step taken there).
    """
    walks = [Walk(method, float(a), float(b)) for method in methods for a, b in starts]
    combiners = {name: COMBINE[name](options.get(name, {})) for name in methods if name in COMBINE}
    beta1, beta2 = BETAS
    adam = optimizer == "adam"
    end = steps
    for first in range(0, steps, PROGRESS_EVERY):
        last = min(first + PROGRESS_EVERY, steps)
        # step k (from 1) of Adam: size lr/(1 − β1^k), and √(1 − β2^k); SGD: size lr
        schedule = [(step % every == 0, lr / (1.0 - beta1 ** (step + 1)) if adam else lr,
                     (1.0 - beta2 ** (step + 1)) ** 0.5 if adam else 1.0) for step in range(first, last)]
        for walk in walks:
            advance(walk, schedule, combiners.get(walk.method), adam, options.get(walk.method, {}))
        if progress is not None and last < steps and not progress(last / steps):
            end = last
            break
    for walk in walks:  # the last point kept
        L1, L2, *_ = losses_and_gradients(walk.x1, walk.x2)
        walk.points += (walk.x1, walk.x2)
        walk.losses += (L1, L2)
    recorded = np.asarray([*range(0, end, every), end])
    out = {}
    for method in methods:
        mine = [walk for walk in walks if walk.method == method]
        out[method] = {"step": recorded, **{name: np.array([getattr(w, name) for w in mine]).reshape(len(mine), rows, 2)
                                            for name, rows in (("points", len(recorded)), ("losses", len(recorded)),
                                                               ("weights", len(recorded) - 1),
                                                               ("directions", len(recorded) - 1))}}
    return out
