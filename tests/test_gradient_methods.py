"""Gradient-manipulation methods: published check values, agreement with TorchJD, defining properties.

Check values use the matrix of TorchJD's documentation, ``J = [[-4, 1, 1], [6, 1, 1]]`` (two
conflicting tasks, ``g_1·g_2 = -22``). Conventions that differ from TorchJD, and how each comparison
accounts for them:

* PCGrad sums the projected gradients (paper, LibMTL, TorchJD) — same numbers, and the same random
  order when TorchJD's global generator gets the seed of our ``ctx.generator``.
* UPGrad and DualProj solve the exact QP; ``reg=1e-4`` adds TorchJD's ridge ``1e-4·I`` on ``K/tr K``
  and then reproduces TorchJD's numbers (``[1.1109, 0.7894]``; the exact ones are ``[10/9, 15/19]``).
* CAGrad's default ``rescale=1`` divides by ``1 + c²`` like the paper's code; TorchJD's ``CAGrad(c)``
  equals ``rescale=0``.
* Aligned-MTL sums the aligned gradients (official code); TorchJD averages them: ours = T × theirs.
* MGDA is solved exactly here; TorchJD runs Frank–Wolfe, which converges slowly for T > 2, so for
  T > 2 the comparison checks that our min-norm point is no longer than theirs and close to it.
* Nash-MTL is solved exactly (damped Newton); TorchJD runs the paper's sequence of convex problems
  with cvxpy/ECOS, which sometimes stops early. Where its answer fails the Nash condition, ours is
  only required to satisfy it. The comparison runs only when cvxpy and ecos are installed.
* GradVac: same update, order and EMA; TorchJD adds ``eps=1e-8`` to denominators (≈1e-8 differences).

In CI (``CI=true``) the TorchJD comparisons must run: a missing optional package fails the test
instead of skipping it. UPGrad/DualProj need ``torchjd[quadprog_projector]``, CAGrad ``torchjd[cagrad]``.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import json
import math
import os
import sys
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mtl_lab.weighting import METHODS, StepContext, aggregate, combination_for, create
from mtl_lab.weighting.gradvac import vaccine_coefficient
from mtl_lab.weighting.solvers import ConvergenceWarning, nash_weights, nonneg_qp
from mtl_lab.weighting.torchjd_interop import from_torchjd

J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]], dtype=torch.float64)
GRADIENT_METHODS = [
    "mgda",
    "mgda_ub",
    "pcgrad",
    "gradvac",
    "cagrad",
    "imtl_g",
    "nash_mtl",
    "aligned_mtl",
    "upgrad",
    "dualproj",
    "graddrop",
]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SHAPES = [(2, 3), (3, 5), (4, 10), (5, 20), (6, 50), (6, 4), (3, 30), (5, 7)]
PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def combine(method: str, G: torch.Tensor, seed: int = 0, **options):
    """A fresh method's Combination for the gradient matrix G (as ``aggregate`` builds it)."""
    weighting = create(method, **options)
    weighting.reset([f"task{i}" for i in range(G.shape[0])])
    return combination_for(weighting, G, None, StepContext(generator=torch.Generator().manual_seed(seed)))


def direction(method: str, G: torch.Tensor, seed: int = 0, **options) -> torch.Tensor:
    comb = combine(method, G, seed, **options)
    return comb.direction if comb.direction is not None else comb.weights @ G


def random_matrix(T: int, P: int, seed: int) -> torch.Tensor:
    """Gaussian rows with norms spread over [0.5, 1.5]·√P."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(T, P, generator=g, dtype=torch.float64)
    return rows * (0.5 + torch.rand(T, 1, generator=g, dtype=torch.float64))


def need(*modules: str) -> None:
    """Optional test dependencies: skipped without them locally, a failure without them in CI."""
    for name in modules:
        if IN_CI:
            importlib.import_module(name)
        else:
            pytest.importorskip(name)


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).abs().max() / theirs.abs().max().clamp(min=1e-12))


# --------------------------------------------------------------------------- check values


def test_mean_and_equal_on_the_check_matrix():
    assert torch.allclose(combine("cagrad", J, c=0.0).weights, torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert torch.allclose(combine("equal", J).weights, torch.ones(2, dtype=torch.float64))


def test_mgda_check_values():
    comb = combine("mgda", J)
    assert torch.allclose(comb.weights, torch.tensor([0.6, 0.4], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(comb.weights @ J, torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64), atol=1e-12)
    assert comb.info["converged"]


def test_pcgrad_check_values():
    d = direction("pcgrad", J)
    assert torch.allclose(d, torch.tensor([0.5848, 3.8012, 3.8012], dtype=torch.float64), atol=1e-4)


def test_imtl_g_check_values():
    w = combine("imtl_g", J).weights
    assert torch.allclose(w, torch.tensor([0.5923, 0.4077], dtype=torch.float64), atol=1e-4)


def test_upgrad_check_values_with_torchjd_ridge_and_exact():
    torchjd_convention = combine("upgrad", J, reg=1e-4).weights
    assert torch.allclose(torchjd_convention, torch.tensor([1.1109, 0.7894], dtype=torch.float64), atol=1e-4)
    exact = combine("upgrad", J).weights
    assert torch.allclose(exact, torch.tensor([10 / 9, 15 / 19], dtype=torch.float64), atol=1e-12)


def test_reference_values_from_torchjd_documentation_matrix():
    """Directions TorchJD 0.18.0 gives for J, in our conventions (see the module docstring)."""
    expected = {
        ("cagrad", (("rescale", 0),)): [0.1835, 1.2041, 1.2041],
        ("nash_mtl", ()): [0.0542, 0.7061, 0.7061],
        ("aligned_mtl", ()): [2 * 0.2133, 2 * 0.9673, 2 * 0.9673],
        ("dualproj", (("reg", 1e-4),)): [0.5563, 1.1109, 1.1109],
    }
    for (method, options), values in expected.items():
        d = direction(method, J, **dict(options))
        assert torch.allclose(d, torch.tensor(values, dtype=torch.float64), atol=2e-4), (method, d)


# --------------------------------------------------------------------------- agreement with TorchJD


@pytest.fixture(scope="module")
def jd():
    need("torchjd")
    return importlib.import_module("torchjd.aggregation")


def matrices():
    return [random_matrix(T, P, seed=100 + k) for k, (T, P) in enumerate(SHAPES)]


def test_mgda_against_torchjd(jd):
    for G in matrices():
        ours, theirs = direction("mgda", G), jd.MGDA(epsilon=1e-12, max_iters=1000)(G)
        if G.shape[0] == 2:  # Frank–Wolfe is exact in one step for two tasks
            assert relative_error(ours, theirs) < 1e-12
        else:  # exact min-norm point: never longer than Frank–Wolfe's, and close to it
            assert float(ours.norm()) <= float(theirs.norm()) + 1e-12
            assert relative_error(ours, theirs) < 0.1


def test_pcgrad_against_torchjd_same_random_order(jd):
    for seed, G in enumerate(matrices()):
        torch.manual_seed(seed)
        theirs = jd.PCGrad()(G)
        assert relative_error(direction("pcgrad", G, seed=seed), theirs) < 1e-12


def test_imtl_g_against_torchjd(jd):
    for G in matrices():
        assert relative_error(direction("imtl_g", G), jd.IMTLG()(G)) < 1e-9


def test_aligned_mtl_against_torchjd_sum_vs_mean(jd):
    for G in matrices():
        for mode in ("min", "median", "rmse"):
            ours = direction("aligned_mtl", G, scale_mode=mode) / G.shape[0]
            assert relative_error(ours, jd.AlignedMTL(scale_mode=mode)(G)) < 1e-9


def test_graddrop_against_torchjd_same_random_draws(jd):
    for seed, G in enumerate(matrices()):
        torch.manual_seed(seed)
        theirs = jd.GradDrop()(G)
        assert relative_error(direction("graddrop", G, seed=seed), theirs) < 1e-12


def test_gradvac_against_torchjd_over_several_steps(jd):
    for seed, G in enumerate(matrices()):
        T = G.shape[0]
        ours = create("gradvac", beta=0.5)
        ours.reset([f"t{i}" for i in range(T)])
        ctx = StepContext(generator=torch.Generator().manual_seed(seed))
        theirs = jd.GradVac(beta=0.5)
        torch.manual_seed(seed)
        for step in range(3):  # the EMA targets carry over from step to step
            G_step = G * (1 + 0.3 * step) + 0.2 * step * torch.roll(G, 1, dims=0)
            d = ours.combine(torch.ones(T), G_step @ G_step.T, ctx).weights @ G_step
            assert relative_error(d, theirs(G_step)) < 1e-6


def test_upgrad_and_dualproj_against_torchjd(jd):
    need("qpsolvers", "quadprog")
    for G in matrices():
        assert relative_error(direction("upgrad", G, reg=1e-4), jd.UPGrad()(G)) < 1e-7
        assert relative_error(direction("dualproj", G, reg=1e-4), jd.DualProj()(G)) < 1e-6


def test_cagrad_against_torchjd_and_rescale(jd):
    need("cvxpy", "clarabel")
    for G in matrices():
        for c in (0.25, 0.5, 0.9):
            theirs = jd.CAGrad(c=c)(G)
            assert relative_error(direction("cagrad", G, c=c, rescale=0), theirs) < 1e-3
            assert relative_error(direction("cagrad", G, c=c), theirs / (1 + c**2)) < 1e-3


def test_nash_mtl_against_torchjd(jd):
    need("cvxpy", "ecos")  # installed by mtl-lab[torchjd]
    compared = 0
    for G in matrices():
        T = G.shape[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cvxpy's DPP notice
            theirs = jd.NashMTL(n_tasks=T)(G)
        ours = direction("nash_mtl", G)
        if relative_error(ours, theirs) < 1e-6:
            compared += 1
        else:  # TorchJD's inner solver stopped early: ours must still meet the Nash condition
            alpha, report = nash_weights(G @ G.T)
            assert report.residual < 1e-6
    assert compared >= len(SHAPES) // 2


def test_from_torchjd_upgrad_equals_our_upgrad(jd):
    need("qpsolvers", "quadprog")
    wrapped = from_torchjd(jd.UPGrad())
    for G in matrices():
        comb = combine(wrapped, G)
        ours = combine("upgrad", G, reg=1e-4)
        assert relative_error(comb.direction, ours.weights @ G) < 1e-7
        if G.shape[0] <= G.shape[1]:  # full row rank: the least-squares weights are unique
            assert torch.allclose(comb.weights, ours.weights, atol=1e-6)
        assert comb.info["lstsq_residual"] < 1e-8


def test_from_torchjd_random_aggregator_is_reproducible_by_seed(jd):
    G = random_matrix(4, 6, seed=1)
    first = aggregate(from_torchjd(jd.PCGrad()), G, seed=3)
    again = aggregate(from_torchjd(jd.PCGrad()), G, seed=3)
    assert torch.equal(first, again)


def test_from_torchjd_rejects_a_non_aggregator(jd):
    with pytest.raises(TypeError, match="Aggregator"):
        from_torchjd(lambda G: G.mean(0))


def test_from_torchjd_without_torchjd_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchjd", None)
    monkeypatch.setitem(sys.modules, "torchjd.aggregation", None)
    with pytest.raises(ImportError, match=r"pip install mtl-lab\[torchjd\]"):
        from_torchjd(object())


# --------------------------------------------------------------------------- defining properties

matrix_shapes = st.tuples(st.integers(2, 5), st.integers(1, 8), st.integers(0, 2**31 - 1))


@functools.lru_cache(maxsize=4)
def simplex_grid(T: int, n: int) -> torch.Tensor:
    """All points of the simplex in dimension T ≤ 3 with coordinates in multiples of 1/n."""
    if T == 2:
        t = torch.linspace(0, 1, n + 1, dtype=torch.float64)
        return torch.stack([t, 1 - t], dim=1)
    points = [(i / n, j / n, (n - i - j) / n) for i in range(n + 1) for j in range(n + 1 - i)]
    return torch.tensor(points, dtype=torch.float64)


@PROPERTY_SETTINGS
@given(shape=st.tuples(st.integers(2, 3), st.integers(1, 6), st.integers(0, 2**31 - 1)))
def test_mgda_is_the_min_norm_point_brute_force(shape):
    T, P, seed = shape
    G = random_matrix(T, P, seed)
    w = combine("mgda", G).weights
    assert bool((w >= 0).all()) and math.isclose(float(w.sum()), 1.0, abs_tol=1e-12)
    grid = simplex_grid(T, 2000 if T == 2 else 150)
    brute = float(((grid @ G) ** 2).sum(dim=1).min())
    scale = float((G**2).sum(dim=1).mean())
    assert float((w @ G).norm() ** 2) <= brute + 1e-10 * scale


@PROPERTY_SETTINGS
@given(shape=matrix_shapes)
def test_mgda_optimality_and_no_conflict(shape):
    T, P, seed = shape
    G = random_matrix(T, P, seed)
    d, scale = direction("mgda", G), float((G**2).sum(dim=1).mean())
    # KKT of min ‖Gᵀw‖² on the simplex: every g_i·d is at least ‖d‖² (equality on the support)
    assert float((G @ d).min()) >= float(d @ d) - 1e-9 * scale
    assert float((G @ d).min()) >= -1e-9 * scale


def test_mgda_frank_wolfe_gap_bounds_its_suboptimality():
    for seed in range(5):
        G = random_matrix(4, 6, seed)
        comb = combine("mgda", G, solver="frank_wolfe")
        assert comb.info["converged"] and comb.info["residual"] <= 1e-3
        exact, approx, scale = direction("mgda", G), comb.weights @ G, float((G**2).sum(dim=1).mean())
        # gap ≥ ½‖d‖² − ½‖d*‖² in units of the mean squared gradient norm
        assert 0 <= float(approx @ approx - exact @ exact) <= 2 * comb.info["residual"] * scale + 1e-12


@PROPERTY_SETTINGS
@given(shape=matrix_shapes)
def test_upgrad_and_dualproj_do_not_conflict(shape):
    T, P, seed = shape
    G = random_matrix(T, P, seed)
    scale = float((G**2).sum(dim=1).mean())
    for method in ("upgrad", "dualproj"):
        d = direction(method, G)
        assert float((G @ d).min()) >= -1e-9 * scale, method


@PROPERTY_SETTINGS
@given(shape=matrix_shapes)
def test_imtl_g_equal_projections_on_unit_gradients(shape):
    T, P, seed = shape
    G = random_matrix(T, P + T, seed)  # full row rank
    comb = combine("imtl_g", G)
    projections = G @ (comb.weights @ G) / G.norm(dim=1)
    assert torch.allclose(projections, projections.mean().expand(T), rtol=1e-7, atol=1e-9)
    assert math.isclose(float(comb.weights.sum()), 1.0, abs_tol=1e-12)


@PROPERTY_SETTINGS
@given(shape=matrix_shapes, c=st.floats(0.05, 2.0))
def test_cagrad_zero_c_is_the_mean_and_positive_c_helps_the_worst_task(shape, c):
    T, P, seed = shape
    G = random_matrix(T, P, seed)
    assert torch.allclose(direction("cagrad", G, c=0.0), G.mean(dim=0), atol=1e-12)
    g0 = G.mean(dim=0)
    d = direction("cagrad", G, c=c, rescale=0)
    assert float((d - g0).norm()) <= c * float(g0.norm()) * (1 + 1e-9) + 1e-12
    assert float((G @ d).min()) >= float((G @ g0).min()) - 1e-9 * float(g0.norm() ** 2)


@PROPERTY_SETTINGS
@given(shape=matrix_shapes)
def test_nash_mtl_satisfies_the_bargaining_condition(shape):
    T, P, seed = shape
    G = random_matrix(T, P + T, seed)  # full row rank, so the system has a solution
    K = G @ G.T
    alpha = combine("nash_mtl", G, max_norm=0.0, reg=0.0).weights  # the exact system
    assert torch.allclose(alpha * (K @ alpha), torch.ones(T, dtype=torch.float64), atol=1e-6)
    assert math.isclose(float((alpha @ G).norm()), math.sqrt(T), rel_tol=1e-6)  # ‖d‖ = √T
    clipped = direction("nash_mtl", G)  # default max_norm = 1
    assert math.isclose(float(clipped.norm()), 1.0, rel_tol=1e-9)


@PROPERTY_SETTINGS
@given(shape=st.tuples(st.integers(1, 8), st.integers(0, 2**31 - 1)))
def test_pcgrad_two_conflicting_tasks_leave_no_negative_inner_product(shape):
    P, seed = shape
    G = random_matrix(2, P, seed)
    if float(G[0] @ G[1]) > 0:
        G[1] = -G[1]
    d = direction("pcgrad", G)
    assert float((G @ d).min()) >= -1e-12 * float((G**2).sum())


@PROPERTY_SETTINGS
@given(shape=matrix_shapes)
def test_gradvac_on_the_gramian_equals_the_papers_vector_algorithm(shape):
    """Our GradVac works on K = GGᵀ; the paper's loop works on the vectors. Same random orders, same d."""
    T, P, seed = shape
    # cosines of ±1 (P = 1) make sin φ = √(1 − φ²) infinitely sensitive to rounding: no pair of algorithms agrees
    assume(P > T)
    G = random_matrix(T, P, seed)
    beta, targets = 0.5, torch.zeros(T, T, dtype=torch.float64)
    method = create("gradvac", beta=beta)
    method.reset([f"task{i}" for i in range(T)])
    ours_generator, paper_generator = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    for step in range(3):  # the targets carry over: later steps make corrections
        G_step = G * (1 + 0.3 * step) + 0.2 * step * torch.roll(G, 1, dims=0)
        expected = torch.zeros(P, dtype=G.dtype)
        for i in range(T):
            g = G_step[i].clone()
            others = [j for j in range(T) if j != i]
            for k in torch.randperm(T - 1, generator=paper_generator).tolist():
                j = others[k]
                g_j = G_step[j]
                if float(g.norm()) == 0:
                    continue
                phi = float(g @ g_j) / float(g.norm() * g_j.norm())
                target = float(targets[i, j])
                if phi < target < 1.0:
                    g = g + vaccine_coefficient(float(g.norm()), float(g_j.norm()), phi, target) * g_j
                targets[i, j] = (1 - beta) * target + beta * phi
            expected += g
        comb = method.combine(torch.ones(T), G_step @ G_step.T, StepContext(generator=ours_generator))
        assert torch.allclose(comb.weights @ G_step, expected, atol=1e-9 * float(expected.abs().max()))


@PROPERTY_SETTINGS
@given(shape=matrix_shapes)
def test_pcgrad_on_the_gramian_equals_the_papers_vector_algorithm(shape):
    """Our PCGrad works on K = GGᵀ; the paper's loop works on the vectors. Same random orders, same d."""
    T, P, seed = shape
    G = random_matrix(T, P, seed)
    generator = torch.Generator().manual_seed(seed)
    expected = torch.zeros(P, dtype=G.dtype)
    for i in range(T):
        g = G[i].clone()
        for j in torch.randperm(T, generator=generator).tolist():
            if j != i and float(g @ G[j]) < 0:
                g = g - (g @ G[j]) / (G[j] @ G[j]) * G[j]
        expected += g
    got = aggregate("pcgrad", G, seed=seed)
    assert torch.allclose(got, expected, atol=1e-9 * float(G.abs().max()) * T)


def test_graddrop_keeps_one_sign_per_coordinate():
    G = random_matrix(4, 200, seed=5)
    comb = combine("graddrop", G, seed=2)
    positive, negative = G.clamp(min=0).sum(dim=0), G.clamp(max=0).sum(dim=0)
    d = comb.direction
    assert bool((torch.isclose(d, positive) | torch.isclose(d, negative)).all())
    assert not comb.info["in_span"]  # P > T: a sign-masked sum is not a combination of the rows


def graddrop_paper_loop(G: torch.Tensor, U: torch.Tensor, leak: list[float]) -> torch.Tensor:
    """The paper's Algorithm 1 written out: purity, one mask per task, leaky masked sum."""
    purity = 0.5 * (1 + G.sum(dim=0) / G.abs().sum(dim=0))
    d = torch.zeros_like(G[0])
    for i in range(G.shape[0]):
        mask = ((purity > U) & (G[i] > 0)) | ((purity < U) & (G[i] < 0))
        d += (leak[i] + (1 - leak[i]) * mask.to(G.dtype)) * G[i]
    return d


@pytest.mark.parametrize("leak", [0.0, 0.3, [0.0, 0.5, 1.0]])
def test_graddrop_equals_the_papers_per_task_loop(leak):
    G = random_matrix(3, 400, seed=11)
    U = torch.rand(400, generator=torch.Generator().manual_seed(4), dtype=G.dtype)
    leaks = leak if isinstance(leak, list) else [leak] * 3
    ours = direction("graddrop", G, seed=4, leak=leak)
    assert torch.allclose(ours, graddrop_paper_loop(G, U, leaks), rtol=0, atol=1e-12)


def test_graddrop_drops_both_signs_on_an_exact_tie():
    """Purity exactly equal to the draw U keeps neither sign (the paper's strict inequalities)."""
    U = torch.rand(1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    u = float(U)  # the draw of seed 0: make the purity S⁺/A equal to it
    G = torch.tensor([[u], [u - 1.0]], dtype=torch.float64)  # S⁺ = u, A = 1
    assert float(direction("graddrop", G, seed=0)) == 0.0
    assert float(direction("graddrop", G * torch.tensor([[1.0], [0.5]], dtype=torch.float64), seed=0)) != 0.0


def test_aligned_mtl_makes_the_gradients_orthogonal_with_equal_norms():
    G = random_matrix(4, 9, seed=3)
    method = create("aligned_mtl")
    B, rank, _ = method.balance_matrix(G @ G.T)
    aligned = torch.from_numpy(B) @ G
    gram = aligned @ aligned.T
    assert rank == 4
    assert torch.allclose(gram, gram[0, 0] * torch.eye(4, dtype=torch.float64), atol=1e-9 * float(gram[0, 0]))


def test_mgda_ub_is_mgda_on_the_representation_gradients():
    Z = random_matrix(3, 12, seed=4)
    assert torch.allclose(combine("mgda_ub", Z).weights, combine("mgda", Z).weights)


# --------------------------------------------------------------------------- degenerate inputs


def degenerate_cases() -> dict[str, torch.Tensor]:
    base = random_matrix(3, 5, seed=11)
    g = base[0]
    return {
        "one task": base[:1],
        "zero row": torch.stack([base[0], torch.zeros(5, dtype=torch.float64), base[2]]),
        "all zero": torch.zeros(3, 5, dtype=torch.float64),
        "identical rows": torch.stack([g, g, g]),
        "opposite collinear": torch.stack([g, -3 * g]),
        "same-direction collinear": torch.stack([g, 2 * g, base[1]]),
        "scale 1e6": 1e6 * base,
        "scale 1e-6": 1e-6 * base,
        "float32": base.float(),
        "more tasks than parameters": random_matrix(6, 2, seed=12),
    }


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_degenerate_inputs_give_finite_results(method):
    for case, G in degenerate_cases().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            comb = combine(method, G)
        d = comb.direction if comb.direction is not None else comb.weights @ G
        assert comb.weights.shape == (G.shape[0],), (method, case)
        assert bool(torch.isfinite(comb.weights).all()) and bool(torch.isfinite(d).all()), (method, case)
        assert comb.weights.dtype == G.dtype, (method, case)
        json.dumps(comb.info)  # the trainer stores info in the History


@pytest.mark.parametrize("method", [m for m in GRADIENT_METHODS if m != "nash_mtl"])
def test_directions_scale_with_the_gradients(method):
    G = random_matrix(3, 5, seed=11)
    d = direction(method, G)
    for s in (1e6, 1e-6):
        assert torch.allclose(direction(method, s * G) / s, d, rtol=1e-6, atol=1e-9 * float(d.abs().max())), s


def test_nash_mtl_step_norm_does_not_depend_on_the_gradient_scale():
    G = random_matrix(3, 5, seed=11)
    for s in (1e6, 1.0, 1e-6):
        assert math.isclose(float(direction("nash_mtl", s * G, max_norm=0.0).norm()), math.sqrt(3), rel_tol=1e-6)


# --------------------------------------------------------------------------- solvers stopped early


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("mgda", {"max_iter": 1}),
        ("mgda", {"solver": "frank_wolfe", "max_iter": 1}),
        ("upgrad", {"max_iter": 1}),
        ("dualproj", {"max_iter": 1}),
        ("cagrad", {"max_iter": 1}),
        ("nash_mtl", {"max_iter": 1}),
    ],
)
def test_a_solver_stopped_early_warns_and_reports_it(method, options):
    G = random_matrix(6, 4, seed=9) if method in ("upgrad", "dualproj") else random_matrix(5, 8, seed=8)
    with pytest.warns(ConvergenceWarning, match=method):
        comb = combine(method, G, **options)
    assert comb.info["converged"] is False
    assert bool(torch.isfinite(comb.weights).all())


# --------------------------------------------------------------------------- registry, state, errors


def test_registry_entries_and_configs():
    for name in GRADIENT_METHODS:
        cls = METHODS[name]
        assert cls.name == name and cls.description and cls.requires in ("grads", "rep_grads", "gramian")
        config = create(name).config()
        assert config["name"] == name
        json.dumps(config)
    assert METHODS["mgda_ub"].requires == "rep_grads"
    assert METHODS["graddrop"].requires == "grads"
    assert {METHODS[n].requires for n in ("pcgrad", "gradvac")} == {"gramian"}  # they need only dot products


def test_gradvac_reset_forgets_the_targets():
    G = random_matrix(3, 6, seed=2)
    method = create("gradvac", beta=0.5)
    names = ["a", "b", "c"]
    method.reset(names)
    first = method.combine(torch.ones(3), G @ G.T, StepContext(generator=torch.Generator().manual_seed(1))).weights
    assert abs(method.targets).sum() > 0
    method.load_state_dict(json.loads(json.dumps(method.state_dict())))
    method.reset(names)
    assert bool((method.targets == 0).all())
    again = method.combine(torch.ones(3), G @ G.T, StepContext(generator=torch.Generator().manual_seed(1))).weights
    assert torch.equal(first, again)


def test_nash_mtl_warm_start_reuse_and_reset():
    G = random_matrix(3, 6, seed=2)
    method = create("nash_mtl", update_weights_every=2)
    method.reset(["a", "b", "c"])
    K = G @ G.T
    ctx = StepContext()
    first = method.combine(torch.ones(3), K, ctx)
    second = method.combine(torch.ones(3), 4 * K, ctx)
    assert not first.info["reused"] and second.info["reused"]
    third = method.combine(torch.ones(3), K, ctx)
    assert not third.info["reused"] and third.info["iterations"] <= 2  # warm start from the previous α
    method.reset(["a", "b", "c"])
    assert method.alpha is None and method.calls == 0


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        ("mgda", {"solver": "simplex"}, "simplex"),
        ("mgda", {"tol": 0.0}, "tol"),
        ("cagrad", {"c": -1.0}, "c must be"),
        ("cagrad", {"rescale": 3}, "rescale"),
        ("gradvac", {"beta": 2.0}, "beta"),
        ("aligned_mtl", {"scale_mode": "max"}, "scale_mode"),
        ("nash_mtl", {"update_weights_every": 0}, "update_weights_every"),
        ("upgrad", {"reg": -1.0}, "reg"),
        ("graddrop", {"leak": 1.5}, "leak"),
    ],
)
def test_bad_options_name_the_value(method, options, message):
    with pytest.raises(ValueError, match=message):
        create(method, **options)


def test_gramian_methods_check_the_gramian_shape():
    for name in ("mgda", "upgrad", "cagrad", "nash_mtl", "imtl_g", "aligned_mtl"):
        method = create(name)
        method.reset(["a", "b"])
        with pytest.raises(ValueError, match="square"):
            method.combine(torch.ones(2), torch.ones(2, 5), StepContext())


def test_aggregate_rejects_unknown_options():
    with pytest.raises(ValueError, match="no option"):
        aggregate("pcgrad", J, beta=0.5)


def test_all_pairs_of_check_matrix_rows_are_handled_by_every_method():
    """Every method on every 2-row sub-problem of a small bank of rows (identical, opposite, orthogonal)."""
    rows = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 0.0], [2.0, 2.0]], dtype=torch.float64)
    for (i, j), method in itertools.product(itertools.combinations(range(5), 2), GRADIENT_METHODS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            d = direction(method, rows[[i, j]])
        assert bool(torch.isfinite(d).all()), (method, i, j)


@PROPERTY_SETTINGS
@given(shape=matrix_shapes)
def test_nonneg_qp_warm_start_gives_the_cold_answer(shape):
    """A guess of the positive coordinates (CAGrad's previous level) changes the path, never the answer."""
    T, P, seed = shape
    G = random_matrix(T, P, seed).numpy()
    K = G @ G.T + 1e-8 * np.eye(T)
    q = K @ np.random.default_rng(seed).standard_normal(T)
    cold, report = nonneg_qp(K, q)
    assert report.converged
    for guess in (cold > 0, ~(cold > 0), np.ones(T, dtype=bool)):
        warm, warm_report = nonneg_qp(K, q, free=guess)
        assert warm_report.converged
        assert np.allclose(warm, cold, atol=1e-8 * max(1.0, np.abs(cold).max()))
