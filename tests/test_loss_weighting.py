"""Loss-weighting methods: hand-computed cases, the registry and aggregate(), state, and degenerate inputs."""

from __future__ import annotations

import io
import math

import pytest
import torch

from mtl_lab.weighting import METHODS, StepContext, aggregate, combination_for, create

LOSS_WEIGHTING = ["inverse_loss", "dwa", "uncertainty", "gradnorm", "rlw", "gls", "imtl_l", "famo", "db_mtl"]
STATEFUL = ["uncertainty", "gradnorm", "imtl_l", "famo", "db_mtl"]
USE_LOSS_VALUES = ["inverse_loss", "uncertainty", "gradnorm", "gls", "imtl_l", "famo", "db_mtl"]


def context(seed: int = 0, **facts) -> StepContext:
    return StepContext(generator=torch.Generator().manual_seed(seed), **facts)


def fresh(name: str, n_tasks: int = 3, **options):
    method = create(name, **options)
    method.reset([f"task{i}" for i in range(n_tasks)])
    return method


def step(method, losses, G=None, ctx=None, after=None):
    """One step as the trainer takes it: combine, then after_step with the new losses when the method asks."""
    if not torch.is_tensor(losses):
        losses = torch.tensor(losses, dtype=torch.float64)
    if G is None:
        G = torch.eye(len(losses), 4, dtype=losses.dtype) + 0.5
    ctx = ctx or context()
    comb = method.combine(losses, None if method.requires == "losses" else G, ctx)
    if method.needs_losses_after_step:
        method.after_step(0.9 * losses if after is None else torch.as_tensor(after, dtype=losses.dtype), ctx)
    return comb


def run(method, n_steps: int = 4, seed: int = 0):
    """A few steps with changing losses and gradients (deterministic)."""
    g = torch.Generator().manual_seed(seed)
    for k in range(n_steps):
        losses = torch.rand(method.n_tasks, generator=g, dtype=torch.float64) + 0.1
        G = torch.randn(method.n_tasks, 5, generator=g, dtype=torch.float64)
        step(method, losses, G, context(seed + k), after=losses * 0.8)


# --- registry and the functional face ------------------------------------------------------------


def test_every_method_is_registered_with_a_one_line_description_and_its_config():
    for name in LOSS_WEIGHTING:
        assert name in METHODS
        cls = METHODS[name]
        assert cls.name == name
        assert cls.description and "\n" not in cls.description and len(cls.description) <= 120
        assert create(name).config()["name"] == name
    with pytest.raises(ValueError, match="no option"):
        create("famo", lr=0.1)


@pytest.mark.parametrize("name", LOSS_WEIGHTING)
def test_aggregate_is_gt_w_or_the_direction(name):
    G = torch.randn(3, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    losses = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    d = aggregate(name, G, losses, seed=5)
    assert d.shape == (6,) and bool(torch.isfinite(d).all())
    comb = combination_for(fresh(name), G, losses, context(5))
    expected = comb.weights @ G if comb.direction is None else comb.direction
    torch.testing.assert_close(d, expected)
    if name != "db_mtl":
        assert comb.direction is None  # loss weighting: the trainer moves along Gᵀw


def test_aggregate_insists_on_losses_for_methods_that_use_them():
    G = torch.randn(2, 3)
    for name in USE_LOSS_VALUES:
        with pytest.raises(ValueError, match="pass losses"):
            aggregate(name, G)
    for name in ("dwa", "rlw"):
        assert torch.isfinite(aggregate(name, G)).all()


# --- inverse loss ----------------------------------------------------------------------------------


def test_inverse_loss_on_1_2_4():
    w = step(fresh("inverse_loss"), [1.0, 2.0, 4.0]).weights
    torch.testing.assert_close(w, torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64) * 3 / 1.75)
    w2 = step(fresh("inverse_loss", alpha=2), [1.0, 2.0, 4.0]).weights
    torch.testing.assert_close(w2, torch.tensor([1.0, 0.25, 0.0625], dtype=torch.float64) * 3 / 1.3125)
    torch.testing.assert_close(step(fresh("inverse_loss"), [0.7] * 3).weights, torch.ones(3, dtype=torch.float64))


def test_inverse_loss_floors_a_zero_loss_at_eps():
    w = step(fresh("inverse_loss", eps=1e-6), [0.0, 1.0, 2.0]).weights
    expected = torch.tensor([1e6, 1.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(w, 3 * expected / expected.sum())


# --- DWA -------------------------------------------------------------------------------------------


def test_dwa_weights_from_the_last_two_epochs():
    epochs = ((9.0, 9.0, 9.0), (4.0, 2.0, 1.0), (2.0, 2.0, 2.0))  # rates 0.5, 1, 2 from the last two
    w = step(fresh("dwa"), [1.0, 1.0, 1.0], ctx=context(epoch=3, epoch_losses=epochs)).weights
    e = [math.exp(r / 2) for r in (0.5, 1.0, 2.0)]
    torch.testing.assert_close(w, torch.tensor([3 * v / sum(e) for v in e], dtype=torch.float64))
    assert w[2] > w[1] > w[0]  # the task whose loss fell least weighs most


def test_dwa_is_equal_for_the_first_two_epochs():
    for epochs in ((), ((5.0, 1.0, 3.0),)):
        w = step(fresh("dwa"), [1.0, 2.0, 3.0], ctx=context(epoch=len(epochs), epoch_losses=epochs)).weights
        torch.testing.assert_close(w, torch.ones(3, dtype=torch.float64))


def test_dwa_matches_torchjd_and_rejects_negative_epoch_losses():
    scalarization = pytest.importorskip("torchjd.scalarization")
    older, newer = [3.0, 2.0, 0.5], [1.5, 1.9, 0.6]
    reference = scalarization.DWA(temperature=2.0)
    for epoch in (older, newer):
        reference(torch.tensor(epoch, dtype=torch.float64))
        reference.step()
    values = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(reference(values), values)
    w = step(fresh("dwa"), [1.0, 1.0, 1.0], ctx=context(epoch=2, epoch_losses=(tuple(older), tuple(newer)))).weights
    torch.testing.assert_close(w, expected)
    with pytest.raises(ValueError, match=r"-1\.0.*task1"):
        step(fresh("dwa"), [1.0] * 3, ctx=context(epoch=2, epoch_losses=((1.0, 1.0, 1.0), (1.0, -1.0, 1.0))))


# --- uncertainty and IMTL-L ------------------------------------------------------------------------


def test_uncertainty_starts_at_one_half_and_steps_along_the_closed_form_gradient():
    method = fresh("uncertainty", n_tasks=2, lr=0.1)
    losses = torch.tensor([2.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(step(method, losses).weights, torch.full((2,), 0.5, dtype=torch.float64))
    s = method.log_vars.detach().clone()
    closed_form = 0.5 * (1 - losses)  # ∂/∂s of ½e^(−s)L + ½s at s = 0
    torch.testing.assert_close(s, -0.1 * torch.sign(closed_form))  # Adam's first step: lr · sign
    torch.testing.assert_close(step(method, losses).weights, 0.5 * torch.exp(-s))


def test_uncertainty_gradient_is_torchjd_uw_gradient():
    scalarization = pytest.importorskip("torchjd.scalarization")
    reference = scalarization.UW(3)
    with torch.no_grad():
        reference.log_var.copy_(torch.tensor([0.3, -0.2, 0.0]))
    losses = torch.tensor([2.0, 0.5, 1.0])
    reference(losses).backward()
    method = fresh("uncertainty")
    with torch.no_grad():
        method.log_vars.copy_(torch.tensor([0.3, -0.2, 0.0]))
    method.objective(losses.double()).backward()
    torch.testing.assert_close(method.log_vars.grad.float(), reference.log_var.grad)


@pytest.mark.parametrize("name", ["uncertainty", "imtl_l"])
def test_closed_form_gradient_is_the_objectives_autograd_gradient(name):
    method = fresh(name)
    (s,) = method.parameters()
    with torch.no_grad():
        s.copy_(torch.tensor([0.3, -0.2, 1.5], dtype=torch.float64))
    losses = torch.tensor([2.0, 0.5, 1e-3], dtype=torch.float64)
    (expected,) = torch.autograd.grad(method.objective(losses), s)
    torch.testing.assert_close(method.gradient(losses), expected, rtol=1e-14, atol=0)


def test_uncertainty_and_imtl_l_converge_to_their_optima():
    losses = torch.tensor([4.0, 0.25], dtype=torch.float64)
    uw, imtl = fresh("uncertainty", n_tasks=2, lr=0.1), fresh("imtl_l", n_tasks=2, lr=0.1)
    for _ in range(400):
        step(uw, losses)
        step(imtl, losses)
    torch.testing.assert_close(uw.log_vars.detach(), losses.log(), atol=1e-3, rtol=0)  # s → log L
    torch.testing.assert_close(imtl.log_scales.detach(), -losses.log(), atol=1e-3, rtol=0)  # s → −log L
    torch.testing.assert_close(step(uw, losses).weights, 0.5 / losses, rtol=1e-3, atol=0)
    torch.testing.assert_close(step(imtl, losses).weights, 1 / losses, rtol=1e-3, atol=0)


def test_imtl_l_starts_at_equal_weights_and_steps_along_the_closed_form_gradient():
    method = fresh("imtl_l", n_tasks=2, lr=0.1)
    losses = torch.tensor([2.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(step(method, losses).weights, torch.ones(2, dtype=torch.float64))
    closed_form = losses - 1  # ∂/∂s of e^s L − s at s = 0
    torch.testing.assert_close(method.log_scales.detach(), -0.1 * torch.sign(closed_form))


def test_uncertainty_weights_are_half_imtl_l_weights_along_a_run():
    uw, imtl = fresh("uncertainty"), fresh("imtl_l")
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        losses = torch.rand(3, generator=g, dtype=torch.float64) * 3 + 0.1
        torch.testing.assert_close(step(uw, losses).weights, 0.5 * step(imtl, losses).weights, rtol=1e-5, atol=0)


def test_a_zero_loss_keeps_learned_weights_finite():
    for name in ("uncertainty", "imtl_l"):
        method = fresh(name, n_tasks=2, lr=5.0)
        for _ in range(50):
            w = step(method, torch.tensor([0.0, 1.0])).weights  # float32: e^50 would overflow
        assert bool(torch.isfinite(w).all()) and w[0] > 1e6  # the solved task's weight is large but finite
        assert method.parameters()[0].abs().max() == 20  # held at the bound


# --- GradNorm --------------------------------------------------------------------------------------


def test_gradnorm_lowers_the_weight_of_the_task_with_the_larger_gradient():
    method = fresh("gradnorm", n_tasks=2)
    G = torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    first = step(method, [1.0, 1.0], G).weights
    torch.testing.assert_close(first, torch.ones(2, dtype=torch.float64))  # returned: the weights before the step
    # GradNorm loss |w₁·1 − 2| + |w₂·3 − 2|: gradients −1 and +3, Adam's first step ±lr, sum stays 2.
    torch.testing.assert_close(method.weights.detach(), torch.tensor([1.025, 0.975], dtype=torch.float64))


def test_gradnorm_raises_the_weight_of_the_task_that_trains_slower():
    method = fresh("gradnorm", n_tasks=2)
    G = torch.eye(2, dtype=torch.float64)  # equal gradient norms
    step(method, [0.9, 0.3], G, ctx=context(first_losses=(1.0, 1.0)))  # task 0 kept 90 % of its loss
    assert method.weights[0] > 1 > method.weights[1]


def test_gradnorm_alpha_sets_the_targets():
    # r = (0.9, 0.3) / 0.6 = (1.5, 0.5); ‖g‖ = (1.6, 0.4), mean 1. Targets r^α: α = 1.5 → (1.837, 0.354), above
    # and below the weighted norms, so w₁ rises; α = 1 → (1.5, 0.5), the other side, so w₁ falls.
    G = torch.tensor([[1.6, 0.0], [0.0, 0.4]], dtype=torch.float64)
    ctx = context(first_losses=(1.0, 1.0))
    method = fresh("gradnorm", n_tasks=2)
    comb = step(method, [0.9, 0.3], G, ctx)
    assert comb.info["gradnorm_loss"] == pytest.approx(abs(1.6 - 1.5**1.5) + abs(0.4 - 0.5**1.5))
    assert method.weights[0] > 1
    method = fresh("gradnorm", n_tasks=2, alpha=1.0)
    step(method, [0.9, 0.3], G, ctx)
    assert method.weights[0] < 1


def test_gradnorm_holds_the_target_constant():
    # r = (1.9, 0.1), equal norms: targets (2.62, 0.03). With the target held constant the gradients are
    # (−1, +1) and w₁ rises; differentiating through mean(w‖g‖) as well would make both positive.
    method = fresh("gradnorm", n_tasks=2)
    step(method, [1.9, 0.1], torch.eye(2, dtype=torch.float64), context(first_losses=(1.0, 1.0)))
    torch.testing.assert_close(method.weights.detach(), torch.tensor([1.025, 0.975], dtype=torch.float64))


def test_gradnorm_weighs_the_heads_like_the_trunk():
    method = fresh("gradnorm", n_tasks=2)
    step(method, [1.0, 1.0], torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=torch.float64))
    comb = step(method, [1.0, 1.0], torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=torch.float64))
    assert comb.head_weights is not None
    torch.testing.assert_close(comb.head_weights, comb.weights)


def test_gradnorm_weights_always_sum_to_t():
    method = fresh("gradnorm", n_tasks=4, lr=0.3)
    g = torch.Generator().manual_seed(0)
    for _ in range(40):
        losses = torch.rand(4, generator=g, dtype=torch.float64) + 0.1
        G = torch.randn(4, 7, generator=g, dtype=torch.float64) * torch.tensor([[0.1], [1.0], [10.0], [1e3]])
        w = step(method, losses, G, ctx=context(first_losses=(1.0, 1.0, 1.0, 1.0))).weights
        assert abs(w.sum().item() - 4) < 1e-9 and bool((w > 0).all())


# --- RLW -------------------------------------------------------------------------------------------


def test_rlw_is_seeded_sums_to_one_and_ignores_the_losses():
    G = torch.randn(4, 3, dtype=torch.float64)
    a = combination_for(fresh("rlw", 4), G, torch.ones(4, dtype=torch.float64), context(7)).weights
    b = combination_for(fresh("rlw", 4), G, torch.tensor([5.0, 1, 2, 3], dtype=torch.float64), context(7)).weights
    c = combination_for(fresh("rlw", 4), G, torch.ones(4, dtype=torch.float64), context(8)).weights
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert abs(a.sum().item() - 1) < 1e-12 and bool((a > 0).all())


def test_rlw_weights_do_not_depend_on_the_dtype_of_the_losses():
    # 20 tasks: from 16 numbers on, torch.randn draws float32 and float64 values differently
    a = step(fresh("rlw", 20), torch.ones(20, dtype=torch.float32), ctx=context(3)).weights
    b = step(fresh("rlw", 20), torch.ones(20, dtype=torch.float64), ctx=context(3)).weights
    assert a.dtype == torch.float32 and b.dtype == torch.float64
    torch.testing.assert_close(a.double(), b)


def test_rlw_draws_the_same_weights_as_torchjd_random_for_the_same_seed():
    aggregation = pytest.importorskip("torchjd.aggregation")
    G = torch.randn(5, 3)
    torch.manual_seed(11)
    expected = aggregation.Random().weighting(G)
    w = combination_for(fresh("rlw", 5), G, torch.ones(5), context(11)).weights
    torch.testing.assert_close(w, expected)


# --- GLS -------------------------------------------------------------------------------------------


def test_gls_weights_are_the_gradient_of_the_geometric_mean():
    losses = torch.tensor([0.3, 2.0, 5.0, 1.1], dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(losses.prod() ** (1 / 4), losses)
    torch.testing.assert_close(step(fresh("gls", 4), losses.detach()).weights, expected)
    gm = (0.3 * 2.0 * 5.0 * 1.1) ** 0.25
    torch.testing.assert_close(step(fresh("gls", 4), losses.detach()).weights[0].item(), gm / (4 * 0.3))


def test_gls_matches_torchjd_geometric_mean():
    scalarization = pytest.importorskip("torchjd.scalarization")
    losses = torch.tensor([0.3, 2.0, 5.0], dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(scalarization.GeometricMean()(losses), losses)
    torch.testing.assert_close(step(fresh("gls"), losses.detach()).weights, expected)


def test_gls_direction_ignores_the_scale_of_one_loss():
    G = torch.randn(3, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    losses = torch.tensor([0.5, 1.5, 3.0], dtype=torch.float64)
    c = torch.tensor([1000.0, 1.0, 1.0], dtype=torch.float64)  # task 0 in other units: loss and gradient × 1000
    d = aggregate("gls", G, losses)
    d_scaled = aggregate("gls", G * c[:, None], losses * c)
    torch.testing.assert_close(d_scaled, d * 1000 ** (1 / 3))


# --- FAMO ------------------------------------------------------------------------------------------


def test_famo_initial_weights_are_normalised_inverse_losses():
    w = step(fresh("famo", 2), [1.0, 3.0]).weights
    torch.testing.assert_close(w, torch.tensor([0.75, 0.25], dtype=torch.float64), rtol=1e-6, atol=0)


def test_famo_raises_the_weight_of_the_loss_that_dropped_less():
    method = fresh("famo", 2)
    step(method, [1.0, 1.0], after=[0.5, 0.9])  # task 1 dropped less
    z = method.task_weights()
    assert z[1] > 0.5 > z[0]
    w = step(method, [1.0, 1.0]).weights
    assert w[1] > w[0]


def test_famo_after_step_needs_a_combine_first():
    method = fresh("famo", 2)
    with pytest.raises(RuntimeError, match="combine"):
        method.after_step(torch.ones(2), context())
    step(method, [1.0, 1.0])  # combine + after_step
    with pytest.raises(RuntimeError, match="combine"):  # the losses before are used once
        method.after_step(torch.ones(2), context())


def test_famo_matches_torchjd_famo_over_several_steps():
    scalarization = pytest.importorskip("torchjd.scalarization")
    reference = scalarization.FAMO(3, lr=0.025, weight_decay=0.001)
    method = fresh("famo")
    g = torch.Generator().manual_seed(4)
    for _ in range(5):
        before = torch.rand(3, generator=g, dtype=torch.float64) + 0.2
        after = before * (torch.rand(3, generator=g, dtype=torch.float64) * 0.5 + 0.5)
        values = before.float().requires_grad_(True)
        (expected,) = torch.autograd.grad(reference(values), values)
        torch.testing.assert_close(step(method, before, after=after).weights, expected.double(), rtol=1e-5, atol=0)
        reference.update(after.float())
    torch.testing.assert_close(method.logits.detach().float(), reference._w.detach(), rtol=1e-4, atol=1e-6)


# --- DB-MTL ----------------------------------------------------------------------------------------


def test_db_mtl_first_step_by_hand():
    G = torch.tensor([[3.0, 4.0], [0.0, 1.0]], dtype=torch.float64)
    losses = torch.tensor([1.0, 0.5], dtype=torch.float64)
    comb = step(fresh("db_mtl", 2, beta=0.9, eps=1e-12), losses, G)
    # ∇log L = [[3, 4], [0, 2]]; EMA after one step 0.1× that: norms 0.5 and 0.2; both rescaled to 0.5.
    torch.testing.assert_close(comb.direction, torch.tensor([0.3, 0.9], dtype=torch.float64))
    torch.testing.assert_close(comb.weights, torch.tensor([0.1, 0.5], dtype=torch.float64))
    torch.testing.assert_close(comb.weights @ G, comb.direction)  # first step: d = Gᵀw
    torch.testing.assert_close(aggregate("db_mtl", G, losses), comb.direction)
    torch.testing.assert_close(comb.head_weights, 1 / (losses + 1e-12))  # heads follow ∇log L_t


def test_db_mtl_second_step_uses_the_decayed_beta():
    method = fresh("db_mtl", 2, beta=0.9, beta_sigma=0.5)
    G1 = torch.tensor([[3.0, 4.0], [0.0, 1.0]], dtype=torch.float64)
    G2 = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    step(method, [1.0, 1.0], G1)
    comb = step(method, [1.0, 2.0], G2)
    beta2 = 0.9 / math.sqrt(2)
    ema = beta2 * (0.1 * G1) + (1 - beta2) * G2 / torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    norms = ema.norm(dim=1)
    torch.testing.assert_close(comb.direction, norms.max() * (ema / norms[:, None]).sum(0))
    assert comb.info["beta_k"] == pytest.approx(beta2)


def test_db_mtl_task_with_zero_gradient_contributes_nothing():
    G = torch.tensor([[0.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    comb = step(fresh("db_mtl", 2), [1.0, 1.0], G)
    assert bool(torch.isfinite(comb.direction).all()) and comb.weights[0] == 0
    torch.testing.assert_close(comb.direction, torch.tensor([0.0, 0.2], dtype=torch.float64), rtol=1e-6, atol=0)


def test_db_mtl_gives_every_task_the_same_length_whatever_its_loss_scale():
    G = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    comb = step(fresh("db_mtl"), torch.tensor([1e-30, 1.0, 1e30], dtype=torch.float32), G)
    torch.testing.assert_close(comb.direction, torch.full((3,), comb.direction[0].item()))
    assert comb.direction[0] > 0


def test_db_mtl_row_norms_are_exact_for_tiny_normal_and_huge_float32_rows():
    from mtl_lab.weighting.db_mtl import row_norms

    base = torch.rand(4, 1000, generator=torch.Generator().manual_seed(0)) + 0.5
    rows = base * torch.tensor([[1e-30], [1.0], [1e25], [0.0]])  # under- and overflow of the squares
    expected = torch.linalg.vector_norm(rows.double(), dim=1)
    torch.testing.assert_close(row_norms(rows), expected, rtol=1e-6, atol=0)
    assert row_norms(rows).dtype == torch.float64


# --- state: reset and checkpoints ------------------------------------------------------------------


@pytest.mark.parametrize("name", LOSS_WEIGHTING)
def test_reset_clears_all_state(name):
    used, new = fresh(name), fresh(name)
    run(used, n_steps=6, seed=1)
    used.reset(list(new.task_names))
    G = torch.randn(3, 5, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    losses = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    a, b = step(used, losses, G, context(3)), step(new, losses, G, context(3))
    torch.testing.assert_close(a.weights, b.weights)
    if b.direction is not None:
        torch.testing.assert_close(a.direction, b.direction)
    for p, q in zip(used.parameters(), new.parameters()):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize("name", STATEFUL)
def test_state_dict_survives_a_weights_only_checkpoint(name):
    original = fresh(name)
    run(original, n_steps=3)
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    restored = fresh(name)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    G = torch.randn(3, 5, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    a, b = step(original, [0.5, 1.0, 2.0], G), step(restored, [0.5, 1.0, 2.0], G)
    torch.testing.assert_close(a.weights, b.weights)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", LOSS_WEIGHTING)
def test_cuda_losses_and_a_checkpoint_mapped_to_cuda(name):
    cpu, gpu = fresh(name), fresh(name)
    G = torch.randn(3, 5, generator=torch.Generator().manual_seed(9))
    losses = torch.tensor([0.5, 1.0, 2.0])
    for k in range(3):
        a = step(cpu, losses, G, context(k), after=losses * 0.7)
        b = step(gpu, losses.cuda(), G.cuda(), context(k), after=(losses * 0.7).cuda())
        assert b.weights.device.type == "cuda"
        torch.testing.assert_close(b.weights.cpu(), a.weights)
        if a.direction is not None:
            torch.testing.assert_close(b.direction.cpu(), a.direction)
    buffer = io.BytesIO()
    torch.save(cpu.state_dict(), buffer)
    buffer.seek(0)
    restored = fresh(name)
    restored.load_state_dict(torch.load(buffer, map_location="cuda", weights_only=True))
    a = step(cpu, losses, G, context(5))
    b = step(restored, losses.cuda(), G.cuda(), context(5))
    torch.testing.assert_close(b.weights.cpu(), a.weights)


@pytest.mark.parametrize("name", LOSS_WEIGHTING)
def test_state_dict_round_trip(name):
    original = fresh(name)
    run(original, n_steps=4, seed=2)
    saved = original.state_dict()
    G = torch.randn(3, 5, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    losses = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    expected = [step(original, losses, G, context(4)) for _ in range(2)]  # continuing must not alter `saved`
    restored = fresh(name)
    restored.load_state_dict(saved)
    for want in expected:
        got = step(restored, losses, G, context(4))
        torch.testing.assert_close(got.weights, want.weights)
        if want.direction is not None:
            torch.testing.assert_close(got.direction, want.direction)
    if name in STATEFUL:
        assert saved  # there is state to save


# --- hyper-parameters and degenerate inputs --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options", "pattern"),
    [
        ("inverse_loss", {"alpha": -1}, r"alpha.*got -1"),
        ("inverse_loss", {"eps": 0}, r"eps.*got 0"),
        ("dwa", {"temperature": 0}, r"temperature.*got 0"),
        ("uncertainty", {"lr": -0.1}, r"lr.*got -0.1"),
        ("uncertainty", {"init_log_var": 50}, r"init_log_var.*got 50"),
        ("gradnorm", {"alpha": -1.5}, r"alpha.*got -1.5"),
        ("gradnorm", {"lr": float("nan")}, r"lr.*got nan"),
        ("gls", {"eps": -1e-8}, r"eps.*got -1e-08"),
        ("imtl_l", {"lr": 0}, r"lr.*got 0"),
        ("famo", {"beta": 0}, r"beta.*got 0"),
        ("famo", {"gamma": -0.001}, r"gamma.*got -0.001"),
        ("db_mtl", {"beta": 1.0}, r"beta.*\[0, 1\).*got 1.0"),
        ("db_mtl", {"beta_sigma": -0.5}, r"beta_sigma.*got -0.5"),
    ],
)
def test_bad_hyperparameters_raise_naming_the_value(name, options, pattern):
    with pytest.raises(ValueError, match=pattern):
        create(name, **options)


@pytest.mark.parametrize("name", LOSS_WEIGHTING)
def test_a_single_task(name):
    method = fresh(name, n_tasks=1)
    expected = {"uncertainty": 0.5, "db_mtl": 0.1 / 2.0}.get(name, 1.0)
    for _ in range(3):
        comb = step(method, [2.0], torch.tensor([[1.0, 2.0]], dtype=torch.float64))
        assert comb.weights.shape == (1,) and bool(torch.isfinite(comb.weights).all())
    first = step(fresh(name, n_tasks=1), [2.0], torch.tensor([[1.0, 2.0]], dtype=torch.float64))
    assert first.weights.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", LOSS_WEIGHTING)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("losses", [[0.0, 1.0, 2.0], [1e-30, 1.0, 1e30], [1e-20, 1e-20, 1e-20]])
def test_zero_and_extreme_losses_stay_finite(name, dtype, losses):
    method = fresh(name)
    G = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), dtype=dtype)
    for k in range(3):
        comb = step(method, torch.tensor(losses, dtype=dtype), G, context(k))
        assert bool(torch.isfinite(comb.weights).all()), comb.weights
        assert comb.direction is None or bool(torch.isfinite(comb.direction).all())


@pytest.mark.parametrize("name", USE_LOSS_VALUES)
@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf")])
def test_negative_or_non_finite_losses_raise_naming_the_task(name, bad):
    with pytest.raises(ValueError, match=rf"got {bad!r} for task 'task1'"):
        step(fresh(name), [1.0, bad, 2.0])


def test_wrong_number_of_losses_is_refused():
    for name in LOSS_WEIGHTING:
        with pytest.raises(ValueError, match="expected"):
            step(fresh(name), [1.0, 2.0])
