"""CAGrad exact on badly scaled gradients; MGDA's gradient normalisations.

CAGrad's answer is checked against the problem itself, not against the solver's own numbers:

* weak duality: for any ``d`` in the ball and any ``w`` on the simplex, ``min_i g_i·d ≤ F(w) =
  g_w·g_0 + r‖g_w‖`` — so a ``d`` whose worst-task gain equals ``F`` at some ``w`` is optimal;
* an independent solve: SciPy's SLSQP minimises ``F`` over the simplex (several starts); the solver's
  worst-task gain must match that minimum.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_lab.weighting import aggregate, create
from mtl_lab.weighting.base import StepContext

scipy_optimize = pytest.importorskip("scipy.optimize")


def badly_scaled(seed: int, T: int, P: int, low: float = -3.0, high: float = 3.0) -> np.ndarray:
    """``G[T, P]``: random directions, norms 10^U(low, high)."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((T, P))
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    return G * 10.0 ** rng.uniform(low, high, (T, 1))


def cagrad_direction(G: np.ndarray, c: float) -> tuple[np.ndarray, dict]:
    """``d*`` (rescale 0) and the solver's info."""
    weighting = create("cagrad", c=c, rescale=0)
    weighting.reset([f"t{i}" for i in range(G.shape[0])])
    K = torch.from_numpy(G @ G.T)
    comb = weighting.combine(torch.ones(G.shape[0], dtype=torch.float64), K, StepContext())
    return comb.weights.numpy() @ G, comb.info


def dual_value(G: np.ndarray, c: float, w: np.ndarray) -> float:
    g0 = G.mean(0)
    gw = w @ G
    return float(gw @ g0 + c * np.linalg.norm(g0) * np.linalg.norm(gw))


def slsqp_dual_minimum(G: np.ndarray, c: float) -> float:
    """min over the simplex of F(w), by SLSQP from the centre and every vertex (the smallest found)."""
    T = G.shape[0]
    scale = float(np.abs(G @ G.mean(0)).max()) or 1.0  # bring F to order 1 for the solver's tolerances
    best = np.inf
    for start in [np.full(T, 1.0 / T), *np.eye(T) * 0.98 + 0.02 / T]:
        res = scipy_optimize.minimize(
            lambda w: dual_value(G, c, w) / scale, start, method="SLSQP", bounds=[(0, 1)] * T,
            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}], options={"ftol": 1e-15, "maxiter": 1000},
        )
        best = min(best, dual_value(G, c, np.clip(res.x, 0, None) / np.clip(res.x, 0, None).sum()))
    return best


@settings(max_examples=150, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1), T=st.integers(2, 4), extra=st.integers(0, 3),
       c=st.floats(0.1, 5.0))
def test_cagrad_is_optimal_for_gradient_norms_from_1e_minus_3_to_1e3(seed, T, extra, c):
    G = badly_scaled(seed, T, T + extra)
    d, info = cagrad_direction(G, c)
    g0 = G.mean(0)
    r = c * np.linalg.norm(g0)
    gains = G @ d
    worst = float(gains.min())
    assert info["converged"] and info["residual"] <= 1e-8
    assert np.linalg.norm(d - g0) == pytest.approx(r, rel=1e-9)  # on the ball's boundary, not inside
    # zero duality gap at the solver's own dual point λ/Σλ: d is optimal (weak duality)
    lam = d - g0  # = Gᵀλ; its weights come from the least-squares fit below
    coef = np.linalg.lstsq(G.T, lam, rcond=None)[0]
    w = np.clip(coef, 0, None) / np.clip(coef, 0, None).sum()
    size = float(np.abs(G @ g0).max()) + r * float(np.linalg.norm(G, axis=1).max())
    assert dual_value(G, c, w) - worst <= 1e-8 * size
    # an independent solve of the dual: nothing beats the solver's worst-task gain
    reference = slsqp_dual_minimum(G, c)
    assert worst <= reference + 1e-9 * size  # weak duality (a sanity check of the reference)
    assert worst >= reference - 1e-6 * size


def test_cagrad_with_norms_400_07_0007_before_and_after():
    """The reported kind of case: norms 400, 0.7 and 0.007. Before the fix (a 1e-10 ridge on the raw
    normalised Gramian) this d lay 13.5 % inside the ball (‖d − g0‖/r = 0.8654), with a worst-task gain
    of 0.0659 against the optimum 0.1017 and d 7.4 % away from d*, while `converged` said True."""
    rng = np.random.default_rng(1)
    G = rng.standard_normal((3, 5))
    G = G / np.linalg.norm(G, axis=1, keepdims=True) * np.array([[400.0], [0.7], [0.007]])
    d, info = cagrad_direction(G, 0.5)
    g0 = G.mean(0)
    assert info["converged"]
    assert np.linalg.norm(d - g0) / (0.5 * np.linalg.norm(g0)) == pytest.approx(1.0, abs=1e-12)
    assert float((G @ d).min()) == pytest.approx(slsqp_dual_minimum(G, 0.5), rel=1e-7)
    assert float((G @ d).min()) == pytest.approx(0.101716396158, rel=1e-9)


def test_cagrad_pareto_stationary_with_a_short_gradient_is_not_mistaken():
    """Two long, nearly opposed gradients and a short third one: stationary only when 0 is in the hull."""
    G = np.array([[1e3, 0.0], [-1e3, 1.0], [0.0, 1e-3]])
    d, info = cagrad_direction(G, 0.5)
    assert info["converged"] and float((G @ d).min()) > 0  # a direction that helps every task exists
    assert float((G @ d).min()) == pytest.approx(slsqp_dual_minimum(G, 0.5), rel=1e-6)
    opposed = np.array([[1e3, 0.0], [-1e-3, 0.0]])  # stationary, and d = 0's side is out of the ball's reach
    d, info = cagrad_direction(opposed, 0.5)
    assert info["converged"] and float((opposed @ d).min()) == pytest.approx(-0.24999975, rel=1e-9)
    assert float((opposed @ d).min()) == pytest.approx(slsqp_dual_minimum(opposed, 0.5), rel=1e-6)


def test_aggregate_matches_the_direction_of_the_fixed_solver():
    G = badly_scaled(7, 3, 6)
    d, _ = cagrad_direction(G, 0.5)
    torch.testing.assert_close(aggregate("cagrad", torch.from_numpy(G), rescale=0), torch.from_numpy(d))


@pytest.mark.parametrize("scale", [0.2, 1.0, 5.0, 30.0])
def test_nash_mtl_unclipped_step_equals_torchjds(scale):
    """No √‖K‖_F factor between TorchJD's Nash-MTL and this one: the same direction, length √T."""
    jd = pytest.importorskip("torchjd.aggregation")
    pytest.importorskip("cvxpy")
    G = torch.randn(3, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * scale
    theirs = jd.NashMTL(n_tasks=3, max_norm=0.0)(G.float()).double()
    ours = aggregate("nash_mtl", G, max_norm=0.0)
    assert float(ours.norm()) == pytest.approx(3**0.5, rel=1e-7)  # (the 1e-8 ridge moves it by ~3e-8)
    assert float(theirs.norm()) == pytest.approx(float(ours.norm()), rel=1e-4)  # TorchJD runs in float32
    assert float(theirs @ ours / (theirs.norm() * ours.norm())) == pytest.approx(1.0, abs=1e-6)


# --------------------------------------------------------------------------- MGDA's gradient normalisations

MGDA_G = torch.tensor([[3.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
MGDA_LOSSES = torch.tensor([2.0, 0.5], dtype=torch.float64)
HAND_NORMALIZERS = {  # n_t written out for g1 = (3, 0), g2 = (1, 2), L = (2, 0.5)
    "none": (1.0, 1.0),
    "l2": (3.0, 5**0.5),
    "loss": (2.0, 0.5),
    "loss+": (2.0 * 3.0, 0.5 * 5**0.5),
}


def segment_min_norm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Weights (1 − t, t) of the least-norm point of the segment [a, b], by hand."""
    t = min(max(float(a @ (a - b)) / float((a - b) @ (a - b)), 0.0), 1.0)
    return np.array([1.0 - t, t])


@pytest.mark.parametrize("normalization", list(HAND_NORMALIZERS))
@pytest.mark.parametrize("weights_on", ["raw", "normalized"])
def test_mgda_normalizations_match_a_hand_computation(normalization, weights_on):
    n = np.array(HAND_NORMALIZERS[normalization])
    g = MGDA_G.numpy() / n[:, None]
    w = segment_min_norm(g[0], g[1])
    expected = w if weights_on == "raw" else w / n
    d = aggregate("mgda", MGDA_G, MGDA_LOSSES, normalization=normalization, weights_on=weights_on)
    np.testing.assert_allclose(d.numpy(), expected @ MGDA_G.numpy(), rtol=1e-12, atol=1e-12)


def test_mgda_l2_normalization_on_three_tasks_against_a_simplex_grid():
    G = torch.tensor([[4.0, 0.0, 1.0], [0.0, 0.5, 0.2], [-1.0, 1.0, 0.0]], dtype=torch.float64)
    d = aggregate("mgda", G, normalization="l2")
    unit = (G / G.norm(dim=1, keepdim=True)).numpy()
    steps = np.linspace(0, 1, 401)
    a, b = np.meshgrid(steps, steps, indexing="ij")
    keep = a + b <= 1
    W = np.stack([a[keep], b[keep], 1 - a[keep] - b[keep]], axis=1)
    best = W[np.argmin(np.linalg.norm(W @ unit, axis=1))]
    np.testing.assert_allclose(d.numpy(), best @ G.numpy(), atol=5e-3)  # the grid's resolution


def test_mgda_default_is_unchanged_and_bad_normalizations_are_refused():
    G = badly_scaled(5, 3, 4, -1, 1)
    weighting = create("mgda")
    assert weighting.config()["normalization"] == "none" and not weighting.uses_losses
    torch.testing.assert_close(aggregate("mgda", torch.from_numpy(G)),
                               aggregate("mgda", torch.from_numpy(G), normalization="none", weights_on="normalized"))
    with pytest.raises(ValueError, match=r"normalization must be one of 'none', 'l2', 'loss', 'loss\+', got 'L2'"):
        create("mgda", normalization="L2")
    with pytest.raises(ValueError, match="weights_on must be one of"):
        create("mgda", weights_on="both")
    with pytest.raises(ValueError, match=r"must be finite and > 0, got \[1.0, -0.5\]"):
        aggregate("mgda", MGDA_G, [1.0, -0.5], normalization="loss")
    with pytest.raises(ValueError, match="uses the loss values"):
        aggregate("mgda", MGDA_G, normalization="loss+")
    assert create("mgda", normalization="loss").uses_losses and create("mgda_ub", normalization="l2")
