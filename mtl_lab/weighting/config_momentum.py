"""M-ConFIG: ConFIG on bias-corrected per-task momenta, with an Adam-like second moment of the result.

Paper: Qiang Liu, Mengyu Chu and Nils Thuerey, "ConFIG: Towards Conflict-free Training of Physics
Informed Neural Networks", ICLR 2025 (arXiv:2408.11104), Section 3.3 and Algorithm 2 ("M-ConFIG"); the
details follow the authors' ``PseudoMomentumOperator`` (package ``conflictfree``).

Update rule, at step ``k = 1, 2, …`` with the task gradients ``g_t``::

    m_t ← β₁ m_t + (1 − β₁) g_t                       (one first momentum per task)
    m̂_t = m_t / (1 − β₁^k)
    u   = ConFIG(m̂_1, …, m̂_T)                        (:mod:`mtl_lab.weighting.conflict_free`)
    ḡ   = (u (1 − β₁^k) − β₁ u_prev (1 − β₁^(k−1))) / (1 − β₁)
                                                      (the gradient that would give u as a momentum)
    s   ← β₂ s + (1 − β₂) ḡ²,   ŝ = s / (1 − β₂^k)
    d   = u / (√ŝ + 1e-8)                            (elementwise, as in Adam)

``d`` is a direction of its own (not a combination ``Gᵀw``): the second moment rescales each
parameter, so the step already has Adam's per-coordinate scale — the authors advise plain SGD with it.
The effective weights recorded are the least-squares fit ``d ≈ Gᵀw`` (the protocol's rule).

The paper's saving — one task's gradient per step, in turn — needs a trainer that computes only that
gradient; the Trainer here computes every task's gradient each step, so every momentum is updated each
step (the operator called with all the task indexes, which it allows).

Defaults and their origin: ``beta_1 = 0.9``, ``beta_2 = 0.999``, ``1e-8`` — the operator's defaults.
"""

from __future__ import annotations

import torch

from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.conflict_free import config_weights
from mtl_lab.weighting.solvers import least_squares_fit

ADAM_EPS = 1e-8


class MomentumConFIG(Weighting):
    """ConFIG on bias-corrected task momenta, divided by the square root of a pseudo second moment."""

    name = "config_momentum"
    description = "M-ConFIG: ConFIG on the tasks' momenta, rescaled by a second moment like Adam (Liu et al. 2025)."
    requires = "grads"
    gives_direction = True  # the momenta are not in the span of this step's gradients
    options = {
        "beta_1": Number(low=0, high=1, high_open=True),  # first-momentum decay of each task
        "beta_2": Number(low=0, high=1, high_open=True),  # second-moment decay of the result
    }

    def __init__(self, beta_1: float = 0.9, beta_2: float = 0.999) -> None:
        super().__init__(beta_1=beta_1, beta_2=beta_2)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.m: torch.Tensor | None = None  # [T, P] first momenta
        self.s: torch.Tensor | None = None  # [P] second moment of the pseudo gradient
        self.previous: torch.Tensor | None = None  # [P] u_prev · (1 − β₁^(k−1))
        self.k = 0

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.m = self.s = self.previous = None
        self.k = 0

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        G = grads.detach()
        if self.m is None or self.m.shape != G.shape:
            self.m = torch.zeros_like(G)
            self.s = torch.zeros_like(G[0])
            self.previous = torch.zeros_like(G[0])
        self.k += 1
        b1, b2 = self.beta_1, self.beta_2
        self.m.mul_(b1).add_(G, alpha=1 - b1)
        m_hat = self.m / (1 - b1**self.k)
        u = config_weights(m_hat @ m_hat.T, G.dtype)
        u = torch.from_numpy(u).to(G) @ m_hat
        momentum = u * (1 - b1**self.k)
        pseudo_gradient = (momentum - b1 * self.previous) / (1 - b1)
        self.previous = momentum
        self.s.mul_(b2).add_(pseudo_gradient**2, alpha=1 - b2)
        s_hat = self.s / (1 - b2**self.k)
        d = u / (torch.sqrt(s_hat) + ADAM_EPS)
        weights, residual = least_squares_fit(G, d)
        return Combination(weights, direction=d, info={"fit_residual": residual})

    def config(self) -> dict:
        return {"name": self.name, "beta_1": self.beta_1, "beta_2": self.beta_2}

    def state_dict(self) -> dict:
        def copy(t: torch.Tensor | None):
            return None if t is None else t.detach().cpu().clone()

        return {"m": copy(self.m), "s": copy(self.s), "previous": copy(self.previous), "k": self.k}

    def load_state_dict(self, state: dict) -> None:
        self.m, self.s, self.previous = state.get("m"), state.get("s"), state.get("previous")
        self.k = int(state.get("k", 0))
