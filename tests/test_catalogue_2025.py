"""COSMOS, PBI, NTKMTL and M-ConFIG against their references.

* COSMOS, PBI — the autograd gradient of TorchJD 0.18's ``scalarization.COSMOS`` / ``scalarization.PBI``
  at the losses is our weight vector (1e-12, float64).
* NTKMTL — the authors' rule written out on a [T, P] matrix: ``λ = (tr GGᵀ / diag GGᵀ)^p``,
  ``d = T·Gᵀλ``, then ``torch.nn.utils.clip_grad_norm_`` on a parameter holding ``d`` (1e-12).
* M-ConFIG — the authors' pseudo-momentum recursion written out by hand over four steps, with the
  ConFIG direction from TorchJD 0.18's ``ConFIG`` (pseudo-inverse form) (1e-9).
"""

from __future__ import annotations

import pytest
import torch

from mtl_lab.weighting import METHODS, StepContext, aggregate, available, create

torchjd = pytest.importorskip("torchjd")


def losses_and_matrix(seed: int, T: int = 3, P: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, generator=g, dtype=torch.float64) * 2 + 0.1, torch.randn(T, P, generator=g,
                                                                                   dtype=torch.float64)


def weights_of(method: str, losses: torch.Tensor, **options) -> torch.Tensor:
    weighting = create(method, **options)
    weighting.reset([f"t{i}" for i in range(len(losses))])
    return weighting.combine(losses, None, StepContext()).weights


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("penalty", [0.0, 0.5, 3.0])
def test_cosmos_is_the_gradient_of_torchjds_scalarisation(seed, penalty):
    from torchjd.scalarization import COSMOS

    losses, _ = losses_and_matrix(seed)
    r = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    L = losses.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(COSMOS(penalty, r)(L), L)
    got = weights_of("cosmos", losses, preference=r.tolist(), penalty=penalty)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("theta", [0.0, 5.0])
def test_pbi_is_the_gradient_of_torchjds_scalarisation(seed, theta):
    from torchjd.scalarization import PBI

    losses, _ = losses_and_matrix(seed)
    r = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    L = losses.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(PBI(theta, r)(L), L)
    got = weights_of("pbi", losses, preference=r.tolist(), theta=theta)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_pbi_pulls_a_loss_below_the_ray_back_up():
    # L = (1, 3) against the ray (1, 1): the first loss is below the ray, its weight goes negative
    w = weights_of("pbi", torch.tensor([1.0, 3.0], dtype=torch.float64), theta=5.0)
    assert float(w[0]) < 0 < float(w[1])
    # on the ray the penalty vanishes (up to ε): w = ŵ
    w = weights_of("pbi", torch.tensor([2.0, 2.0], dtype=torch.float64), theta=5.0)
    torch.testing.assert_close(w, torch.full((2,), 2**-0.5, dtype=torch.float64), rtol=0, atol=1e-5)


def authors_ntkmtl(G: torch.Tensor, exponent: float, max_norm: float) -> torch.Tensor:
    K = G @ G.T
    lam = (torch.trace(K) / K.diagonal()) ** exponent
    d = G.shape[0] * (G.T @ lam)
    parameter = torch.nn.Parameter(torch.zeros_like(d))
    parameter.grad = d.clone()
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_([parameter], max_norm)
    return parameter.grad


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("exponent", "max_norm"), [(0.5, 1.0), (1.0, 0.0), (0.5, 1e3)])
def test_ntkmtl_matches_the_authors_rule(seed, exponent, max_norm):
    _, G = losses_and_matrix(seed, T=4, P=9)
    expected = authors_ntkmtl(G, exponent, max_norm)
    got = aggregate("ntkmtl", G, exponent=exponent, max_norm=max_norm)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_ntkmtl_equalises_the_weighted_gradients_and_skips_a_zero_one():
    G = torch.tensor([[3.0, 0.0], [0.0, 0.5], [0.0, 0.0]], dtype=torch.float64)
    weighting = create("ntkmtl", max_norm=0.0)
    weighting.reset(["a", "b", "c"])
    comb = weighting.combine(torch.ones(3, dtype=torch.float64), G @ G.T, StepContext())
    lengths = (comb.weights[:, None] * G).norm(dim=1)
    assert float(lengths[0]) == pytest.approx(float(lengths[1]))  # p = ½: equal pushes
    assert float(comb.weights[2]) == 0.0  # no gradient, no weight (no division by zero)


def authors_m_config(Gs: list[torch.Tensor], beta_1: float = 0.9, beta_2: float = 0.999) -> list[torch.Tensor]:
    from torchjd.aggregation import ConFIG

    T, P = Gs[0].shape
    m = torch.zeros(T, P, dtype=torch.float64)
    s = torch.zeros(P, dtype=torch.float64)
    fake_m = torch.zeros(P, dtype=torch.float64)
    out = []
    for k, G in enumerate(Gs, start=1):
        m = beta_1 * m + (1 - beta_1) * G
        m_hat = m / (1 - beta_1**k)
        final = ConFIG()(m_hat)
        new_fake_m = final * (1 - beta_1**k)
        fake_grad = (new_fake_m - beta_1 * fake_m) / (1 - beta_1)
        fake_m = new_fake_m
        s = beta_2 * s + (1 - beta_2) * fake_grad**2
        out.append(final / (torch.sqrt(s / (1 - beta_2**k)) + 1e-8))
    return out


def test_m_config_matches_the_authors_recursion_over_steps():
    Gs = [losses_and_matrix(seed, T=3, P=6)[1] for seed in range(4)]
    weighting = create("config_momentum")
    weighting.reset(["a", "b", "c"])
    for G, expected in zip(Gs, authors_m_config(Gs)):
        comb = weighting.combine(torch.ones(3, dtype=torch.float64), G, StepContext())
        torch.testing.assert_close(comb.direction, expected, rtol=1e-9, atol=1e-9)
    state = weighting.state_dict()
    again = create("config_momentum")
    again.reset(["a", "b", "c"])
    again.load_state_dict(state)
    G = losses_and_matrix(9, T=3, P=6)[1]
    torch.testing.assert_close(again.combine(torch.ones(3, dtype=torch.float64), G, StepContext()).direction,
                               weighting.combine(torch.ones(3, dtype=torch.float64), G, StepContext()).direction)


def test_new_methods_are_registered_and_refuse_bad_options():
    names = dict(available())
    for name in ("cosmos", "pbi", "ntkmtl", "config_momentum"):
        assert name in names and name in METHODS and len(names[name]) <= 120
        assert create(name).config()["name"] == name
    with pytest.raises(ValueError, match="penalty must be a finite number ≥ 0"):
        create("cosmos", penalty=-1.0)
    with pytest.raises(ValueError, match="theta must be a finite number ≥ 0"):
        create("pbi", theta=-0.5)
    with pytest.raises(ValueError, match="beta_1 must be a finite number in \\[0, 1\\)"):
        create("config_momentum", beta_1=1.0)
    with pytest.raises(ValueError, match="preference has 2 entries"):
        aggregate("cosmos", torch.eye(3, dtype=torch.float64), [1.0, 1.0, 1.0], preference=[1.0, 1.0])
    with pytest.raises(ValueError, match="not every loss may be 0"):
        aggregate("cosmos", torch.eye(2, dtype=torch.float64), [0.0, 0.0])
