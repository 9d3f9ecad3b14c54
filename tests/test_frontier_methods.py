"""Today's frontier: FairGrad, ConFIG, PCD, ExcessMTL, CR-MOGM, MoCo, SDMGrad, MoDo, STCH, SI loss, Auto-λ.

Each is checked against TorchJD 0.18 where TorchJD has it, and against its defining equations:

* FairGrad — TorchJD solves ``Kw = w^(−1/α)`` with ``scipy.optimize.least_squares``; ours (damped
  Newton, ridge 1e-8) agrees to 1e-6 relative. With ``reg=0`` both meet the system (ours to 1e-10,
  TorchJD's to 1e-6 relative residual): the remaining difference is our ridge.
  ``α = 1`` is Nash-MTL's system: the weights equal ``nash_mtl``'s (no clipping, no ridge) to 1e-8.
* ConFIG — TorchJD's pseudo-inverse of the unit-gradient matrix vs. our Gramian form: 1e-9 relative;
  equal cosines with every gradient checked directly (1e-9).
* PCD — TorchJD's Goldfarb–Idnani dual active set vs. our Lawson–Hanson dual: 1e-9 relative over
  several steps (the moving average is state); T = 2 against the closed form.
* ExcessMTL — TorchJD's weights over several steps: 1e-9; the first two steps by hand.
* CR-MOGM — TorchJD's ``CRMOGMWeighting`` around IMTL-G over several steps: 1e-9; the recursion by hand.
* STCH — after the warm-up, T × the autograd gradient of TorchJD's ``scalarization.STCH`` (weights 1,
  reference = log nadir) at the log losses: 1e-10; warm-up weights ``1/L`` and the nadir by hand.
* Scale-invariant loss — the autograd gradient of ``Σ log L_t`` (1e-12) and invariance to loss scale.
* MoCo (not in TorchJD) — the paper's Algorithm 1 written out by hand for two steps (float64 defaults
  of ``assert_close``); the simplex projection against its KKT conditions (1e-12).
* SDMGrad, MoDo — TorchJD's ``SDMGradWeighting`` / ``MoDoWeighting`` on the same non-symmetric
  ``A = G_ξ G_ξ'ᵀ`` over several steps: 1e-9; MoDo's step by hand; the Trainer's extra batches replayed.
* Auto-λ — the Trainer's lookahead hypergradient against autograd through the unrolled virtual step
  (float64, 1e-10); the weights' Adam step by hand.
* Representation gradients — ``mgda`` with ``rep_grads=True`` is ``mgda_ub`` bit for bit; one step of
  PCGrad, GradDrop and ConFIG on ``Z`` replayed by hand through the trunk (1e-5, float32).

End-to-end training of every registered method is in ``test_methods_training.py`` (it walks ``METHODS``).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from mtl_lab import data as datasets
from mtl_lab.training import build_trainer
from mtl_lab.weighting import METHODS, StepContext, aggregate, available, combination_for, create
from mtl_lab.weighting.solvers import ConvergenceWarning, nash_weights

jd = pytest.importorskip("torchjd.aggregation")
jd_scalarization = pytest.importorskip("torchjd.scalarization")

NEW_GRADIENT = ["fairgrad", "config", "pcd", "excess_mtl", "cr_mogm", "moco", "sdmgrad", "modo"]
NEW_LOSS = ["scale_invariant", "stch"]
SHAPES = [(2, 3), (3, 5), (4, 10), (5, 20), (3, 30), (5, 7)]


def random_matrix(T: int, P: int, seed: int) -> torch.Tensor:
    """Gaussian rows with norms spread over [0.5, 1.5]·√P."""
    g = torch.Generator().manual_seed(seed)
    G = torch.randn(T, P, generator=g, dtype=torch.float64)
    return G * (0.5 + torch.rand(T, 1, generator=g, dtype=torch.float64))


def fresh(name: str, T: int, **options):
    method = create(name, **options)
    method.reset([f"task{i}" for i in range(T)])
    return method


def ctx(epoch: int = 0, seed: int = 0) -> StepContext:
    return StepContext(epoch=epoch, generator=torch.Generator().manual_seed(seed))


def step_direction(method, G: torch.Tensor, losses: torch.Tensor | None = None, epoch: int = 0) -> torch.Tensor:
    comb = combination_for(method, G, losses, ctx(epoch))
    return comb.direction if comb.direction is not None else comb.weights @ G


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-300))


# --------------------------------------------------------------------------- registry


def test_every_new_method_is_available_and_has_typed_defaults():
    names = dict(available())
    for name in NEW_GRADIENT + NEW_LOSS + ["auto_lambda"]:
        assert name in names and names[name] and len(names[name]) <= 120
        config = create(name).config()
        assert config["name"] == name
        json.dumps(config)
        import inspect

        for p in inspect.signature(METHODS[name].__init__).parameters.values():
            if p.name != "self":
                assert isinstance(p.default, (bool, int, float, str)), (name, p.name)


@pytest.mark.parametrize("name", NEW_GRADIENT + NEW_LOSS)
def test_aggregate_and_degenerate_inputs(name):
    base = random_matrix(3, 5, seed=11)
    g = base[0]
    cases = {
        "random": base,
        "one task": base[:1],
        "zero row": torch.stack([base[0], torch.zeros(5, dtype=torch.float64), base[2]]),
        "identical rows": torch.stack([g, g, g]),
        "opposite collinear": torch.stack([g, -3 * g]),
        "scale 1e6": 1e6 * base,
        "scale 1e-6": 1e-6 * base,
        "float32": base.float(),
        "more tasks than parameters": random_matrix(6, 2, seed=12),
    }
    for case, G in cases.items():
        losses = torch.linspace(0.5, 2.0, G.shape[0], dtype=G.dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            d = aggregate(name, G, losses)
            comb = combination_for(fresh(name, G.shape[0]), G, losses, ctx())
        assert d.shape == (G.shape[1],) and bool(torch.isfinite(d).all()), (name, case)
        assert comb.weights.dtype == G.dtype and bool(torch.isfinite(comb.weights).all()), (name, case)
        json.dumps(comb.info)


@pytest.mark.parametrize("name", ["pcd", "excess_mtl", "cr_mogm", "stch", "moco", "sdmgrad", "modo"])
def test_state_dict_round_trip_continues_the_same_run(name):
    G = [random_matrix(3, 6, seed=s) for s in range(4)]
    L = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    options = {"warmup_epochs": 1} if name == "stch" else {}
    a = fresh(name, 3, **options)
    for k in range(2):
        combination_for(a, G[k], L * (k + 1), ctx(epoch=k))
    b = fresh(name, 3, **options)
    b.load_state_dict(a.state_dict())
    for k in range(2, 4):
        wa = combination_for(a, G[k], L * (k + 1), ctx(epoch=k)).weights
        wb = combination_for(b, G[k], L * (k + 1), ctx(epoch=k)).weights
        torch.testing.assert_close(wa, wb, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("fairgrad", {"alpha": -1.0}, "alpha"),
        ("pcd", {"tau": 1.5}, "tau"),
        ("pcd", {"beta": 1.0}, "beta"),
        ("excess_mtl", {"robust_step_size": 0.0}, "robust_step_size"),
        ("cr_mogm", {"alpha": 2.0}, "alpha"),
        ("cr_mogm", {"inner": "nope"}, "nope"),
        ("stch", {"mu": 0.0}, "mu"),
        ("stch", {"warmup_epochs": -1}, "warmup_epochs"),
        ("scale_invariant", {"eps": 0.0}, "eps"),
    ],
)
def test_bad_options_name_the_value(name, options, message):
    with pytest.raises(ValueError, match=message):
        create(name, **options)


def test_pcd_primary_must_be_one_of_the_tasks():
    with pytest.raises(ValueError, match="primary=3"):
        fresh("pcd", 3, primary=3)


# --------------------------------------------------------------------------- FairGrad


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 5.0])
def test_fairgrad_matches_torchjd(shape, alpha):
    T, P = shape
    G = random_matrix(T, P, seed=T * 100 + P)
    ours = step_direction(fresh("fairgrad", T, alpha=alpha), G)
    theirs = jd.FairGrad(alpha=alpha)(G)
    assert rel(ours, theirs) < 1e-6


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 5.0])
def test_fairgrad_solves_its_system_exactly(shape, alpha):
    T, P = shape
    G = random_matrix(T, P, seed=T * 100 + P)
    K = G @ G.T
    w = combination_for(fresh("fairgrad", T, alpha=alpha, reg=0.0), G, None, ctx()).weights
    ours = (K @ w) * w ** (1 / alpha) - 1  # (Kw)_t = w_t^(−1/α)  ⇔  w_t^(1/α) (Kw)_t = 1
    assert float(ours.abs().max()) < 1e-10
    v = jd.FairGradWeighting(alpha=alpha)(K)
    theirs = (K @ v) * v ** (1 / alpha) - 1
    assert float(theirs.abs().max()) < 1e-6  # TorchJD's least squares meets it too: same solution
    assert rel(w, v) < 1e-6
    assert bool((w > 0).all()) and bool((K @ w > 0).all())  # every task improves


@pytest.mark.parametrize("shape", SHAPES)
def test_fairgrad_alpha_1_is_nash_mtls_system(shape):
    T, P = shape
    G = random_matrix(T, P, seed=T + P)
    fair = combination_for(fresh("fairgrad", T, alpha=1.0, reg=0.0), G, None, ctx()).weights
    nash, _ = nash_weights(G @ G.T, reg=0.0)
    np.testing.assert_allclose(fair.numpy(), nash, rtol=1e-8)
    nash_direction = step_direction(fresh("nash_mtl", T, max_norm=0.0, reg=0.0), G)
    assert rel(fair @ G, nash_direction) < 1e-8


def test_fairgrad_alpha_0_is_equal_weights_and_the_scale_law():
    G = random_matrix(3, 5, seed=3)
    torch.testing.assert_close(combination_for(fresh("fairgrad", 3, alpha=0.0), G, None, ctx()).weights,
                               torch.full((3,), 1 / 3, dtype=torch.float64))
    # G → sG multiplies K by s² and w by s^(−2α/(1+α)): d by s^((1−α)/(1+α))
    alpha, s = 2.0, 1e3
    d = step_direction(fresh("fairgrad", 3, alpha=alpha), G)
    ds = step_direction(fresh("fairgrad", 3, alpha=alpha), s * G)
    assert rel(ds, d * s ** ((1 - alpha) / (1 + alpha))) < 1e-6


# --------------------------------------------------------------------------- ConFIG


@pytest.mark.parametrize("shape", SHAPES + [(6, 4)])
def test_config_matches_torchjd(shape):
    T, P = shape
    G = random_matrix(T, P, seed=7 * T + P)
    assert rel(step_direction(fresh("config", T), G), jd.ConFIG()(G)) < 1e-9


@pytest.mark.parametrize("shape", SHAPES)
def test_config_has_equal_positive_cosines_and_the_sum_of_projections_as_length(shape):
    T, P = shape  # T ≤ P: independent gradients, the cosines can all be equal
    G = random_matrix(T, P, seed=5 * T + P)
    d = step_direction(fresh("config", T), G)
    cosines = (G @ d) / (G.norm(dim=1) * d.norm())
    assert float(cosines.min()) > 0
    assert float(cosines.max() - cosines.min()) < 1e-9
    unit = d / d.norm()
    assert math.isclose(float(d.norm()), float((G @ unit).sum()), rel_tol=1e-10)
    assert rel(step_direction(fresh("config", T), 1e4 * G), 1e4 * d) < 1e-9


# --------------------------------------------------------------------------- PCD


@pytest.mark.parametrize("shape", SHAPES + [(6, 4)])
@pytest.mark.parametrize("tau", [0.02, 0.3, 0.9])
def test_pcd_matches_torchjd_over_several_steps(shape, tau):
    T, P = shape
    ours, theirs = fresh("pcd", T, tau=tau), jd.PCD(tau=tau)
    g = torch.Generator().manual_seed(T * P)
    bound = 0
    for _ in range(5):
        G = torch.randn(T, P, generator=g, dtype=torch.float64) * (0.1 + 3 * torch.rand(T, 1, generator=g,
                                                                                         dtype=torch.float64))
        comb = combination_for(ours, G, None, ctx())
        assert rel(comb.weights @ G, theirs(G)) < 1e-9
        bound += int((comb.weights[1:] != 0).any())
    if tau == 0.9 and T > 1:
        assert bound > 0  # the constraints did bind: the comparison is not only d = g_1


def test_pcd_primary_option_is_torchjd_on_the_reordered_rows():
    G = random_matrix(4, 6, seed=21)
    order = [2, 0, 1, 3]
    ours = step_direction(fresh("pcd", 4, primary=2, tau=0.5), G)
    assert rel(ours, jd.PCD(tau=0.5)(G[order])) < 1e-9


def test_pcd_two_tasks_closed_form():
    """Step 1: v̂_t = ‖g_t‖², so g̃_t = g_t/√(‖g_t‖² + ε); one constraint: μ = max(0, τ‖g̃_2‖² − g̃_1·g̃_2)/‖g̃_2‖²."""
    tau, eps = 0.4, 1e-8
    G = torch.tensor([[1.0, 0.2, 0.0], [-0.3, 1.0, 0.5]], dtype=torch.float64) * torch.tensor([[3.0], [0.2]])
    n = G @ G.T
    s = 1 / torch.sqrt(n.diagonal() + eps)
    Gt = G * s[:, None]
    mu = max(0.0, float(tau * Gt[1] @ Gt[1] - Gt[0] @ Gt[1])) / float(Gt[1] @ Gt[1])
    assert mu > 0
    d_tilde = Gt[0] + mu * Gt[1]
    expected = d_tilde * G[0].norm() / d_tilde.norm()
    assert rel(step_direction(fresh("pcd", 2, tau=tau), G), expected) < 1e-12
    # a secondary task already served by the primary gradient leaves it alone
    easy = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(step_direction(fresh("pcd", 2, tau=tau), easy), easy[0])


def test_pcd_infeasible_constraints_fall_back_to_the_primary_gradient_and_say_so():
    G = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    comb = combination_for(fresh("pcd", 3, tau=0.5), G, None, ctx())
    torch.testing.assert_close(comb.weights, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    assert comb.info["feasible"] is False
    torch.testing.assert_close(jd.PCD(tau=0.5)(G), G[0])


# --------------------------------------------------------------------------- ExcessMTL


@pytest.mark.parametrize("shape", SHAPES)
def test_excess_mtl_matches_torchjd_over_several_steps(shape):
    T, P = shape
    ours, theirs = fresh("excess_mtl", T), jd.ExcessMTL()
    g = torch.Generator().manual_seed(T + 3 * P)
    for _ in range(5):
        G = torch.randn(T, P, generator=g, dtype=torch.float64)
        assert rel(step_direction(ours, G), theirs(G)) < 1e-9


def test_excess_mtl_first_two_steps_by_hand():
    eta = 0.5
    G1 = torch.tensor([[1.0, 2.0], [0.5, 0.0]], dtype=torch.float64)
    G2 = torch.tensor([[0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    method = fresh("excess_mtl", 2, robust_step_size=eta)
    e1 = (G1**2 / torch.sqrt(G1**2 + 1e-7)).sum(1)  # ≈ |g|₁
    w1 = torch.softmax(torch.log(torch.tensor([0.5, 0.5], dtype=torch.float64)) + eta * e1, 0)
    torch.testing.assert_close(combination_for(method, G1, None, ctx()).weights, w1)
    e2 = (G2**2 / torch.sqrt(G1**2 + G2**2 + 1e-7)).sum(1) / (e1 + 1e-7)
    w2 = w1 * torch.exp(eta * e2)
    torch.testing.assert_close(combination_for(method, G2, None, ctx()).weights, w2 / w2.sum())


# --------------------------------------------------------------------------- CR-MOGM


def test_cr_mogm_matches_torchjd_around_imtl_g():
    ours = fresh("cr_mogm", 3, inner="imtl_g", alpha=0.7)
    theirs = jd.GramianWeightedAggregator(jd.CRMOGMWeighting(jd.IMTLGWeighting(), alpha=0.7))
    g = torch.Generator().manual_seed(4)
    for _ in range(5):
        G = torch.randn(3, 8, generator=g, dtype=torch.float64)
        assert rel(step_direction(ours, G), theirs(G)) < 1e-9


def test_cr_mogm_recursion_by_hand_and_composition():
    method = create("cr_mogm", inner=create("cagrad", c=0.2), alpha=0.6)
    method.reset(["a", "b", "c"])
    assert method.requires == "gramian" and method.config()["inner"]["c"] == 0.2
    smoothed = None
    for seed in range(4):
        G = random_matrix(3, 5, seed=seed)
        comb = combination_for(method, G, None, ctx())
        inner = combination_for(fresh("cagrad", 3, c=0.2), G, None, ctx()).weights
        smoothed = inner if smoothed is None else 0.6 * smoothed + 0.4 * inner
        torch.testing.assert_close(comb.weights, smoothed)
    assert fresh("cr_mogm", 3, alpha=0.0).inner.name == "mgda"


def test_cr_mogm_wraps_loss_methods_and_refuses_direction_methods():
    wrapped = fresh("cr_mogm", 2, inner="uncertainty")
    assert wrapped.requires == "losses" and wrapped.uses_losses and len(wrapped.parameters()) == 1
    famo = fresh("cr_mogm", 2, inner="famo")
    assert famo.needs_losses_after_step
    with pytest.raises(ValueError, match="graddrop"):
        combination_for(fresh("cr_mogm", 2, inner="graddrop"), random_matrix(2, 4, 0), None, ctx())


# --------------------------------------------------------------------------- STCH and the scale-invariant loss


def test_scale_invariant_weights_are_the_gradient_of_the_sum_of_log_losses():
    L = torch.tensor([0.3, 2.0, 7.5], dtype=torch.float64, requires_grad=True)
    torch.log(L).sum().backward()
    w = combination_for(fresh("scale_invariant", 3), torch.eye(3, dtype=torch.float64), L.detach(), ctx()).weights
    torch.testing.assert_close(w, L.grad, rtol=1e-12, atol=0)
    G = random_matrix(3, 4, seed=1)
    d = aggregate("scale_invariant", G, [0.3, 2.0, 7.5])
    # a loss in other units: L_t → cL_t and g_t → c g_t leave the step unchanged
    c = torch.tensor([[1.0], [1e3], [1.0]], dtype=torch.float64)
    torch.testing.assert_close(aggregate("scale_invariant", G * c, [0.3, 2e3, 7.5]), d)
    assert float(aggregate("scale_invariant", torch.eye(2), [0.0, 1.0])[0]) == pytest.approx(1e8)


def test_stch_warm_up_nadir_and_the_torchjd_formula():
    method = fresh("stch", 3, warmup_epochs=2, mu=0.3)
    G = torch.eye(3, dtype=torch.float64)
    epoch0 = torch.tensor([4.0, 1.0, 0.5], dtype=torch.float64)
    w = combination_for(method, G, epoch0, ctx(epoch=0)).weights
    torch.testing.assert_close(w, 1 / epoch0)  # warm-up: Σ log L
    last = [torch.tensor([2.0, 0.8, 0.4], dtype=torch.float64), torch.tensor([1.0, 0.6, 0.2], dtype=torch.float64)]
    for L in last:  # the last warm-up epoch is averaged into the nadir
        combination_for(method, G, L, ctx(epoch=1))
    L = torch.tensor([0.9, 0.2, 0.25], dtype=torch.float64, requires_grad=True)
    comb = combination_for(method, G, L.detach(), ctx(epoch=2))
    nadir = (last[0] + last[1]) / 2
    torch.testing.assert_close(torch.tensor(comb.info["nadir"], dtype=torch.float64), nadir)
    scalarizer = jd_scalarization.STCH(mu=0.3, weights=torch.ones(3, dtype=torch.float64), reference=torch.log(nadir))
    scalarizer(torch.log(L)).backward()
    torch.testing.assert_close(comb.weights, 3 * L.grad, rtol=1e-10, atol=0)


def test_stch_small_mu_follows_the_task_furthest_above_its_nadir():
    method = fresh("stch", 2, warmup_epochs=0, mu=0.01)
    w = combination_for(method, torch.eye(2), torch.tensor([1.5, 3.0]), ctx()).weights
    assert float(w[1] * 3.0) > 0.999 * 2  # nearly all of T·softmax goes to the larger log-loss


# --------------------------------------------------------------------------- training


DIGITS = datasets.load("digits", tasks=["digit", "parity", "recon"])
OPTIONS = {"epochs": 2, "batch_size": 128, "lr": 3e-3, "diagnostics_every": 4, "model_options": {"hidden": (48,)}}


@pytest.mark.parametrize(
    ("name", "options"),
    [("stch", {"warmup_epochs": 1}), ("cr_mogm", {"inner": "pcgrad"}), ("pcd", {"primary": 1, "tau": 0.2})],
)
def test_variants_train_digits_and_a_reused_instance_is_reset(name, options):
    method = create(name, **options)
    a = build_trainer(DIGITS, "hard", method, **OPTIONS).fit()
    assert a.status == "completed" and a.meta["method"]["name"] == name
    assert sum(sum(r) for r in a.losses[-3:]) / 3 < sum(a.losses[0])
    b = build_trainer(DIGITS, "hard", method, **OPTIONS).fit()
    torch.testing.assert_close(torch.tensor(a.weights), torch.tensor(b.weights))


# --------------------------------------------------------------------------- MoCo


def test_simplex_projection_against_the_kkt_conditions():
    from mtl_lab.weighting.moco import project_onto_simplex

    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        v = 3 * torch.randn(int(torch.randint(1, 7, (1,), generator=g)), generator=g, dtype=torch.float64)
        x = project_onto_simplex(v)
        assert bool((x >= 0).all()) and math.isclose(float(x.sum()), 1.0, rel_tol=1e-12)
        # x = max(v − θ, 0) for one θ: every positive entry moved by the same amount, the others are below θ
        theta = float((v - x)[x > 0].mean())
        torch.testing.assert_close(x, torch.clamp(v - theta, min=0), rtol=0, atol=1e-12)
    torch.testing.assert_close(project_onto_simplex(torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)),
                               torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64))
    torch.testing.assert_close(project_onto_simplex(torch.tensor([2.0, 0.0], dtype=torch.float64)),
                               torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_moco_two_steps_by_hand():
    """Algorithm 1 written out on two tasks, raw gradients (normalize=False), β=0.5, γ=0.1, σ=0.5, ρ=0.2."""
    method = fresh("moco", 2, normalize=False, rho=0.2)
    G1 = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]], dtype=torch.float64)
    G2 = torch.tensor([[2.0, 1.0, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    # step 1: β_1 = 0.5, γ_1 = 0.1; y = 0.5·G1; λ = Π(½·1 − 0.1 (YYᵀ + 0.2 I) ½·1)
    Y = 0.5 * G1
    M = Y @ Y.T + 0.2 * torch.eye(2, dtype=torch.float64)  # [[1.45, -0.5], [-0.5, 0.7]]; M·½1 = [0.475, 0.1]
    lam = torch.tensor([0.5, 0.5], dtype=torch.float64) - 0.1 * M @ torch.tensor([0.5, 0.5], dtype=torch.float64)
    lam = lam + (1 - lam.sum()) / 2  # both stay positive: the projection shifts them equally
    torch.testing.assert_close(lam, torch.tensor([0.48125, 0.51875], dtype=torch.float64))
    comb = combination_for(method, G1, torch.ones(2, dtype=torch.float64), ctx())
    torch.testing.assert_close(comb.direction, Y.T @ lam)
    torch.testing.assert_close(torch.tensor(comb.info["lambda"], dtype=torch.float64), lam)
    # step 2: β_2 = 0.5/√2, γ_2 = 0.1/√2
    b2, g2 = 0.5 / math.sqrt(2), 0.1 / math.sqrt(2)
    Y = Y - b2 * (Y - G2)
    M = Y @ Y.T + 0.2 * torch.eye(2, dtype=torch.float64)
    moved = lam - g2 * M @ lam
    lam = moved + (1 - moved.sum()) / 2
    assert bool((lam > 0).all())
    comb = combination_for(method, G2, torch.ones(2, dtype=torch.float64), ctx())
    torch.testing.assert_close(comb.direction, Y.T @ lam)
    # the effective weights are the least-squares fit: what is left of d is orthogonal to every gradient
    torch.testing.assert_close(G2 @ (comb.weights @ G2 - comb.direction), torch.zeros(2, dtype=torch.float64))
    assert comb.info["lstsq_residual"] > 1e-3  # d carries step 1's gradients: not in this step's span


def test_moco_normalises_gradients_to_the_loss_and_softmax_variant():
    method = fresh("moco", 2, lambda_update="softmax", beta=1.0)
    G = torch.tensor([[3.0, 4.0], [0.0, 2.0]], dtype=torch.float64)
    L = torch.tensor([2.0, 0.5], dtype=torch.float64)
    comb = combination_for(method, G, L, ctx())
    norms = torch.tensor([[5.0], [2.0]], dtype=torch.float64)
    h = G / (norms + 1e-8) * L[:, None]  # each gradient rescaled to the length of its loss (β = 1: y = h)
    half = torch.full((2,), 0.5, dtype=torch.float64)
    lam = torch.softmax(half - 0.1 * (h @ h.T) @ half, 0)
    torch.testing.assert_close(comb.direction, h.T @ lam)
    with pytest.raises(ValueError, match="lambda_update"):
        create("moco", lambda_update="exp")


# --------------------------------------------------------------------------- representation gradients


REP = {**OPTIONS, "epochs": 1}


def test_mgda_with_rep_grads_is_mgda_ub():
    ub = build_trainer(DIGITS, "hard", "mgda_ub", **REP).fit()
    rep = build_trainer(DIGITS, "hard", "mgda", rep_grads=True, **REP).fit()
    torch.testing.assert_close(torch.tensor(rep.weights), torch.tensor(ub.weights), rtol=0, atol=0)
    torch.testing.assert_close(torch.tensor(rep.losses), torch.tensor(ub.losses), rtol=0, atol=0)
    plain = build_trainer(DIGITS, "hard", "mgda", **REP).fit()
    assert plain.weights[1] != rep.weights[1]  # the option changes what MGDA sees


def test_rep_grads_step_is_the_methods_answer_on_z_pushed_through_the_trunk():
    """One step by hand: Z from autograd, the method on Z (PCGrad: ZZᵀ; GradDrop: a direction), then J_zᵀ d_Z."""
    x, y = next(iter(DIGITS.train.batches(32, shuffle=False)))
    for method in ("pcgrad", "graddrop", "config"):
        trainer = build_trainer(DIGITS, "hard", method, {"hidden": (16,)}, rep_grads=True, epochs=1, batch_size=32,
                                lr=1e-12, optimizer="sgd", diagnostics_every=0)  # the model barely moves
        model = trainer.model
        trainer.train_step(x, y)
        got = [p.grad.clone() for p in trainer.shared]
        rep = model.encode(x)
        out = model.decode(rep)
        losses = [task.loss(out[task.name], y[task.name]) for task in DIGITS.tasks]
        Z = torch.stack([torch.autograd.grad(loss, rep, retain_graph=True)[0].reshape(-1) for loss in losses])
        weighting = create(method)
        weighting.reset(DIGITS.task_names)
        ctx_ = StepContext(generator=torch.Generator().manual_seed(1))  # the trainer's method generator
        extra = Z @ Z.T if weighting.requires == "gramian" else Z
        comb = weighting.combine(torch.stack([loss.detach() for loss in losses]), extra, ctx_)
        d = comb.direction if comb.direction is not None else comb.weights @ Z
        expected = torch.autograd.grad(rep, trainer.shared, d.view_as(rep))
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("method", "message"), [("equal", "gradient method"), ("excess_mtl", "per parameter"),
                                                 ("moco", "per parameter")])
def test_rep_grads_refuses_methods_that_cannot_use_it(method, message):
    with pytest.raises(ValueError, match=message):
        build_trainer(DIGITS, "hard", method, rep_grads=True, **REP)
    with pytest.raises(ValueError, match="per parameter"):
        build_trainer(DIGITS, "hard", create("cr_mogm", inner="moco"), rep_grads=True, **REP)


def test_rep_grads_option_is_checked():
    from mtl_lab.training import TrainConfig

    with pytest.raises(ValueError, match="rep_grads must be True or False"):
        TrainConfig(rep_grads=1)
    with pytest.raises(ValueError, match="exclude each other"):
        TrainConfig(rep_grads=True, gradient_path="gramian")


@pytest.mark.parametrize("method", ["upgrad", "cagrad", "fairgrad", "cr_mogm", "nash_mtl"])
def test_gradient_methods_train_on_representation_gradients(method):
    h = build_trainer(DIGITS, "hard", method, rep_grads=True, **OPTIONS).fit()
    assert h.status == "completed" and h.meta["config"]["rep_grads"] is True
    assert sum(sum(r) for r in h.losses[-3:]) / 3 < sum(h.losses[0])
    assert all(math.isfinite(v) for d in h.diagnostics for v in d["shares"])


# --------------------------------------------------------------------------- SDMGrad and MoDo: three batches per step


def cross_matrices(T: int, seed: int, steps: int = 5) -> list[torch.Tensor]:
    """``A = G_ξ G_ξ'ᵀ`` of two independent random gradient matrices: not symmetric, not PSD."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(T, 7, generator=g, dtype=torch.float64) @ torch.randn(T, 7, generator=g, dtype=torch.float64).T
            for _ in range(steps)]


@pytest.mark.parametrize("T", [2, 3, 5])
def test_modo_and_sdmgrad_match_torchjd_over_several_steps(T):
    for name, theirs in (("modo", jd.MoDoWeighting(gamma=0.1, rho=0.1)), ("sdmgrad", jd.SDMGradWeighting())):
        ours = fresh(name, T)
        assert ours.requires == "cross_gramian"
        for A in cross_matrices(T, seed=T):
            w = ours.combine(torch.ones(T, dtype=torch.float64), A, ctx()).weights
            torch.testing.assert_close(w, theirs(A), rtol=1e-9, atol=1e-12)


def test_modo_one_step_by_hand():
    A = torch.tensor([[2.0, 0.5], [-0.5, 1.0]], dtype=torch.float64)
    comb = fresh("modo", 2, gamma=0.2, rho=0.1).combine(torch.ones(2, dtype=torch.float64), A, ctx())
    # λ = ½·1 − 0.2 (Aλ + 0.1 λ) = ½ − 0.2·([1.25, 0.25] + 0.05) = [0.24, 0.44]; projection adds 0.16 to each
    torch.testing.assert_close(comb.weights, torch.tensor([0.4, 0.6], dtype=torch.float64))
    torch.testing.assert_close(comb.head_weights, comb.weights)


def test_sdmgrad_lambda_interpolates_between_mgda_and_the_mean():
    G = random_matrix(3, 6, seed=8)
    far = combination_for(fresh("sdmgrad", 3, lambda_=1e6), G, None, ctx()).weights
    torch.testing.assert_close(far, torch.full((3,), 1 / 3, dtype=torch.float64), rtol=0, atol=1e-5)
    near = combination_for(fresh("sdmgrad", 3, lambda_=0.0, n_iter=2000, lr=1.0), G, None, ctx()).weights
    mgda = combination_for(fresh("mgda", 3), G, None, ctx()).weights
    torch.testing.assert_close(near, mgda, rtol=0, atol=1e-4)


def test_the_trainer_draws_two_independent_extra_batches_per_step():
    from mtl_lab.training.extra_batches import ExtraBatches

    options = {**REP, "lr": 1e-12, "optimizer": "sgd", "diagnostics_every": 0, "batch_size": 64}
    trainer = build_trainer(DIGITS, "hard", "modo", **options)
    x, y = next(iter(DIGITS.train.batches(64, shuffle=False)))
    trainer.train_step(x, y)
    weights = trainer.buffer[0][2]
    extra = ExtraBatches(DIGITS.train, 64, seed=0)
    A = extra.cross_gramian(trainer.model, trainer.compute_losses, trainer.shared, trainer.heads)
    expected = fresh("modo", 3).combine(torch.ones(3), A, ctx()).weights
    torch.testing.assert_close(weights, expected.float(), rtol=1e-5, atol=1e-6)
    # the Trainer's own batch order is untouched: the first losses are those of equal weighting
    a = build_trainer(DIGITS, "hard", "modo", **{**REP, "epochs": 1}).fit(max_steps=1)
    b = build_trainer(DIGITS, "hard", "equal", **{**REP, "epochs": 1}).fit(max_steps=1)
    assert a.losses[0] == b.losses[0]
    with pytest.raises(ValueError, match="other batches"):
        build_trainer(DIGITS, "hard", "sdmgrad", rep_grads=True, **REP)


# --------------------------------------------------------------------------- Auto-λ: a validation lookahead


def test_lookahead_hypergradient_equals_autograd_through_the_unrolled_step():
    """``∂ L_val(θ − α ∇Σλ_t L_t)/∂λ`` by differentiating through the virtual step (create_graph), in float64."""
    from torch.func import functional_call

    from mtl_lab.training.lookahead import lookahead_hypergradient

    data = DIGITS
    trainer = build_trainer(data, "hard", "auto_lambda", {"hidden": (6,)}, epochs=1, batch_size=16)
    model = trainer.model.double()
    (x, y), (xv, yv) = next(iter(data.train.batches(16))), next(iter(data.val.batches(16)))
    x, xv = x.double(), xv.double()
    y, yv = ({k: v.double() if v.dtype.is_floating_point else v for k, v in d.items()} for d in (y, yv))
    lam = torch.tensor([0.3, 1.2, 0.7], dtype=torch.float64, requires_grad=True)
    alpha = 0.05
    names = [n for n, p in model.named_parameters()]
    params = list(model.parameters())
    train_losses = trainer.compute_losses(model(x), y)
    grads = torch.autograd.grad((lam * torch.stack(train_losses)).sum(), params, create_graph=True)
    virtual = {n: p - alpha * g for n, p, g in zip(names, params, grads)}
    val = torch.stack(trainer.compute_losses(functional_call(model, virtual, (xv,)), yv)).sum()
    (expected,) = torch.autograd.grad(val, lam)
    losses = trainer.compute_losses(model(x), y)
    H = lookahead_hypergradient(model, trainer.compute_losses, losses, lam.detach(), alpha, (xv, yv, {}))
    torch.testing.assert_close(H, expected, rtol=1e-10, atol=1e-14)


def test_auto_lambda_takes_an_adam_step_on_the_hypergradient_and_keeps_weights_non_negative():
    method = fresh("auto_lambda", 3, lr=0.01, init_weight=0.1)
    torch.testing.assert_close(method.current_weights(), torch.full((3,), 0.1, dtype=torch.float64))
    H = torch.tensor([[2.0], [-0.5], [0.0]], dtype=torch.float64)
    w = method.combine(torch.ones(3, dtype=torch.float64), H, ctx()).weights
    # Adam's first step moves each coordinate by lr·sign(gradient) (lr·g/(|g| + 1e-8))
    torch.testing.assert_close(w, torch.tensor([0.09, 0.11, 0.1], dtype=torch.float64), rtol=0, atol=1e-9)
    big = fresh("auto_lambda", 2, lr=1.0)
    assert float(big.combine(torch.ones(2), torch.tensor([[5.0], [5.0]]), ctx()).weights.min()) == 0.0
    again = fresh("auto_lambda", 3, lr=0.01, init_weight=0.1)
    again.load_state_dict(method.state_dict())
    torch.testing.assert_close(again.combine(torch.ones(3, dtype=torch.float64), H, ctx()).weights,
                               method.combine(torch.ones(3, dtype=torch.float64), H, ctx()).weights)
    with pytest.raises(ValueError, match="validation lookahead"):
        aggregate("auto_lambda", random_matrix(2, 3, 0))
    with pytest.raises(ValueError, match="other batches"):
        build_trainer(DIGITS, "hard", "auto_lambda", rep_grads=True, **REP)


def test_simplex_projection_of_huge_float32_entries():
    from mtl_lab.weighting.moco import project_onto_simplex

    x = project_onto_simplex(torch.tensor([3e8, -2e8, 1e7], dtype=torch.float32))
    assert x.dtype == torch.float32
    torch.testing.assert_close(x, torch.tensor([1.0, 0.0, 0.0]))


def test_the_lab_and_the_arena_take_every_new_method():
    from mtl_lab.toy import arena
    from mtl_lab.widgets.config import LabConfig

    for name in NEW_GRADIENT + NEW_LOSS + ["auto_lambda"]:
        LabConfig(method=name).check()
    LabConfig(architecture="dselect_k").check()
    G = arena.gradients_from_polar(*arena.preset("conflicting", 2))
    results = {r.method: r for r in arena.combine_all(G, ["mgda", "cr_mogm", "fairgrad", "config", "auto_lambda"])}
    assert results["cr_mogm"].direction == results["mgda"].direction  # its first step is the inner method's
    assert not results["fairgrad"].error and not results["config"].error
    assert "validation lookahead" in results["auto_lambda"].error  # named, not a crash
