"""DSelect-k: the smooth step, the binary-code selectors, k-sparse gates, and training through the Trainer.

Shared architecture checks (parameter groups, encode/decode split, gates as distributions, a few
training steps) run for ``dselect_k`` in ``test_architectures.py``; here the gate's own maths.
"""

from __future__ import annotations

import pytest
import torch

from mtl_lab import data as datasets
from mtl_lab.models import build_model
from mtl_lab.models.dselect_k import DSelectGate, binary_codes, selector_distribution, smooth_step
from mtl_lab.training import build_trainer

DIGITS = datasets.load("digits", tasks=["digit", "parity", "recon"])


def test_smooth_step_is_0_then_a_cubic_then_1_and_continuously_differentiable():
    gamma = 0.8
    t = torch.tensor([-1.0, -0.4, 0.0, 0.4, 1.0], dtype=torch.float64, requires_grad=True)
    s = smooth_step(t, gamma)
    torch.testing.assert_close(s.detach(), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0], dtype=torch.float64))
    (slope,) = torch.autograd.grad(s.sum(), t)
    # S'(t) = −6t²/γ³ + 3/(2γ): 3/(2γ) at 0, 0 at ±γ/2 (where the flat pieces join)
    torch.testing.assert_close(slope, torch.tensor([0.0, 0.0, 3 / (2 * gamma), 0.0, 0.0], dtype=torch.float64))
    inside = torch.tensor(0.1, dtype=torch.float64)
    assert float(smooth_step(inside, gamma)) == pytest.approx(-2 * 0.1**3 / gamma**3 + 3 * 0.1 / (2 * gamma) + 0.5)


def test_a_selector_is_a_distribution_and_one_hot_once_its_logits_leave_the_smooth_zone():
    codes = binary_codes(8)
    assert codes.tolist()[5] == [1.0, 0.0, 1.0]  # 5 = 1·1 + 0·2 + 1·4
    z = torch.randn(50, 3, generator=torch.Generator().manual_seed(0)) * 0.3
    r = selector_distribution(z, codes, gamma=1.0)
    assert bool((r >= 0).all())
    torch.testing.assert_close(r.sum(-1), torch.ones(50))
    settled = torch.tensor([[2.0, -2.0, 2.0]])  # bits 1, 0, 1: expert 5
    torch.testing.assert_close(selector_distribution(settled, codes, 1.0), torch.eye(8)[5:6])


def test_a_settled_gate_uses_at_most_k_experts():
    gate = DSelectGate(input_dim=4, num_experts=8, k=2, gamma=1.0)
    with torch.no_grad():
        gate.selectors.weight.zero_()
        gate.selectors.bias.copy_(torch.tensor([2.0, 2.0, -2.0, -1.0, 3.0, 3.0]))  # experts 3 and 6
    g = gate(torch.randn(10, 4, generator=torch.Generator().manual_seed(1)))
    assert bool(((g > 0).sum(dim=1) == 2).all())
    assert bool((g[:, [3, 6]].sum(dim=1) - 1).abs().max() < 1e-6)


def test_num_experts_must_be_a_power_of_two_and_options_are_checked():
    with pytest.raises(ValueError, match="power of two"):
        build_model("dselect_k", DIGITS, num_experts=6)
    with pytest.raises(ValueError, match="gamma"):
        build_model("dselect_k", DIGITS, gamma=0.0)
    with pytest.raises(ValueError, match="k must be"):
        build_model("dselect_k", DIGITS, k=0)


def test_dselect_k_trains_digits_and_records_its_gates():
    h = build_trainer(DIGITS, "dselect_k", "equal", model_options={"num_experts": 4, "hidden": (32,)}, epochs=2,
                      batch_size=128, lr=3e-3, diagnostics_every=5).fit()
    assert h.status == "completed"
    assert sum(h.losses[-1]) < sum(h.losses[0])
    assert h.meta["test_metrics"]["digit"] > 0.3
    gates = h.model_records[-1]["gates"]
    assert set(gates) == set(DIGITS.task_names)
    assert all(len(w) == 4 and abs(sum(w) - 1) < 1e-5 for w in gates.values())
