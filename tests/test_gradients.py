import pytest
import torch

from mtl_lab.gradients import (
    LinearGramian,
    diagnostics_from_gradients,
    diagnostics_from_gramian,
    gramian_cost_ratio,
    representation_gradients,
    task_gradients,
)
from mtl_lab.models import HardSharing


def model_and_losses(toy, dtype=torch.float64, hidden=(16, 12)):
    torch.manual_seed(0)
    model = HardSharing(toy.tasks, toy.input_shape, hidden=hidden).to(dtype)
    x, y = next(toy.train.batches(32))
    x = x.to(dtype)
    y = {k: (v.to(dtype) if v.dtype.is_floating_point else v) for k, v in y.items()}
    rep = model.encode(x)
    out = model.decode(rep)
    losses = [t.loss(out[t.name], y[t.name]) for t in toy.tasks]
    return model, rep, losses


def reference_rows(model, losses, toy):
    shared = model.shared_parameters()
    rows, heads = [], []
    for t, task in enumerate(toy.tasks):
        g = torch.autograd.grad(losses[t], shared, retain_graph=True)
        rows.append(torch.cat([v.reshape(-1) for v in g]))
        heads.append(torch.autograd.grad(losses[t], model.task_parameters(task.name), retain_graph=True))
    return torch.stack(rows), heads


def test_task_gradients_match_autograd(toy):
    model, _, losses = model_and_losses(toy)
    ref, ref_heads = reference_rows(model, losses, toy)
    heads = [model.task_parameters(n) for n in toy.task_names]
    G, head_grads = task_gradients(losses, model.shared_parameters(), heads)
    assert G.shape == (3, sum(p.numel() for p in model.shared_parameters()))
    torch.testing.assert_close(G, ref, rtol=0, atol=1e-12)
    for got, want in zip(head_grads, ref_heads):
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # a head receives nothing from another task's loss
    assert torch.autograd.grad(losses[0], model.task_parameters("yes"), retain_graph=True, allow_unused=True)[0] is None


def test_representation_gradients_match_autograd(toy):
    model, rep, losses = model_and_losses(toy)
    heads = [model.task_parameters(n) for n in toy.task_names]
    Z, _ = representation_gradients(losses, rep, heads)
    for t in range(3):
        (want,) = torch.autograd.grad(losses[t], rep, retain_graph=True)
        torch.testing.assert_close(Z[t], want.reshape(-1), rtol=0, atol=1e-12)


def test_linear_gramian_equals_G_Gt_and_applies_weighted_gradient(toy):
    torch.manual_seed(0)
    model = HardSharing(toy.tasks, toy.input_shape, hidden=(16, 12)).double()
    engine = LinearGramian(model, model.shared_parameters())
    engine.capture()
    x, y = next(toy.train.batches(32))
    y = {k: (v.double() if v.dtype.is_floating_point else v) for k, v in y.items()}
    out = model(x.double())
    losses = [t.loss(out[t.name], y[t.name]) for t in toy.tasks]
    G, _ = reference_rows(model, losses, toy)
    heads = [model.task_parameters(n) for n in toy.task_names]
    K, _ = engine.gramian(losses, heads)
    torch.testing.assert_close(K, G @ G.T, rtol=1e-10, atol=1e-12)
    w = torch.tensor([0.2, 1.5, 0.7], dtype=torch.float64)
    engine.apply_weights(w)
    got = torch.cat([p.grad.reshape(-1) for p in model.shared_parameters()])
    torch.testing.assert_close(got, w @ G, rtol=1e-10, atol=1e-12)
    engine.remove()


def test_linear_gramian_refuses_non_linear_trunks(toy):
    model = HardSharing(toy.tasks, toy.input_shape, trunk="mlp")
    assert LinearGramian.applies_to(model, model.shared_parameters())
    img = torch.zeros(1, 1, 8, 8)
    from mtl_lab.models.trunks import CNNTrunk

    cnn = CNNTrunk(tuple(img.shape[1:]))
    assert not LinearGramian.applies_to(cnn, list(cnn.parameters()))
    with pytest.raises(ValueError, match="nn.Linear"):
        LinearGramian(cnn, list(cnn.parameters()))


def test_gramian_cost_model_prefers_gramian_for_small_batches():
    assert gramian_cost_ratio(32, [(1024, 1024)] * 2, 5) < 0.8
    assert gramian_cost_ratio(4096, [(64, 64)] * 2, 3) > 1.0


def test_diagnostic_identities():
    g = torch.Generator().manual_seed(1)
    G = torch.randn(4, 30, generator=g, dtype=torch.float64)
    w = torch.tensor([0.5, 1.0, 2.0, 0.1], dtype=torch.float64)
    d = w @ G
    diag = diagnostics_from_gradients(G, w, None, lr=0.1)
    assert sum(diag.shares) == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(torch.tensor(diag.loss_change, dtype=torch.float64), -0.1 * (G @ d))
    torch.testing.assert_close(torch.tensor(diag.norms, dtype=torch.float64), G.norm(dim=1))
    cos = torch.tensor(diag.cosines)
    torch.testing.assert_close(cos, cos.T)
    torch.testing.assert_close(cos.diagonal(), torch.ones(4, dtype=cos.dtype))
    assert diag.direction_norm == pytest.approx(float(d.norm()))
    # a direction given explicitly: weights found by least squares, d = Gᵀw exactly when d is in the span
    given = diagnostics_from_gradients(G, torch.zeros(4), d, lr=0.1)
    torch.testing.assert_close(torch.tensor(given.weights, dtype=torch.float64), w, rtol=1e-8, atol=1e-10)
    assert given.residual < 1e-10 and sum(given.shares) == pytest.approx(1.0)
    # outside the span: the residual says so
    off = d + torch.randn(30, generator=g, dtype=torch.float64)
    assert diagnostics_from_gradients(G, w, off, lr=0.1).residual > 0.1
    # the Gramian alone gives the same numbers
    from_k = diagnostics_from_gramian(G @ G.T, w, lr=0.1)
    assert from_k.shares == pytest.approx(diag.shares) and from_k.norms == pytest.approx(diag.norms)


def test_diagnostics_with_a_zero_gradient_are_finite():
    G = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    diag = diagnostics_from_gradients(G, torch.tensor([1.0, 1.0]), None, lr=1.0)
    assert diag.cosines[0][1] == 0.0 and diag.shares == [1.0, 0.0]
    zero = diagnostics_from_gradients(torch.zeros(2, 3), torch.ones(2), None, lr=1.0)
    assert zero.shares == [0.0, 0.0] and zero.direction_norm == 0.0
