"""SDMGrad: stochastic direction-oriented MGDA — a min-norm step pulled towards a preferred direction.

Paper: Peiyao Xiao, Hao Ban and Kaiyi Ji, "Direction-oriented Multi-objective Learning: Simple and
Provable Stochastic Algorithms", NeurIPS 2023 (arXiv:2305.18409).

Update rule. Among the directions ``d = Gᵀ(w + λ w̃)/(1 + λ)`` with ``w`` on the simplex, SDMGrad seeks the
one of least norm: ``w`` minimises ``½‖Gᵀ(w + λ w̃)‖²``, so ``λ`` pulls the step towards the preferred
direction ``Gᵀw̃`` (``w̃ = 1/T``: the average gradient; ``λ = 0``: MGDA, ``λ → ∞``: the average). The
gradient ``GGᵀ(w + λw̃)`` of that problem is estimated without bias from two **independent**
mini-batches, and ``w`` takes a few projected SGD steps with momentum on it, warm-started from the
previous training step::

    A  = G_ξ G_ξ'ᵀ / (s² + 1e-8),   s = mean_t √max(A_tt, 0)      (``requires = "cross_gramian"``)
    repeat n_iter times:  v ← μ v + A (w + λ w̃);   w ← Π_Δ(w − η v)     (v starts empty: v = first gradient)
    weights = (w + λ w̃) / (1 + λ),   d = G_ζᵀ weights                  (ζ: the step's own batch)

The normalisation by ``s²`` (the mean gradient norm, squared) makes the inner step size ``η`` independent
of the gradients' scale, as in the authors' code and LibMTL. The Trainer applies the weights to the
losses of its own batch, heads included (``head_weights``, as the authors' ``losses.backward``); see
:mod:`mtl_lab.training.extra_batches`. ``aggregate(G)`` uses ``A = GGᵀ`` (one batch standing for both).

Defaults and their origin: ``lambda_ = 0.3`` (the authors' experiments, LibMTL and TorchJD; the
authors' class default is 0.6), ``lr = 10``, ``momentum = 0.5``, ``n_iter = 20`` (the authors' code,
LibMTL, TorchJD). TorchJD's ``SDMGradWeighting`` is the same computation (tests compare them).
"""

from __future__ import annotations

import math

import torch

from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.moco import project_onto_simplex
from mtl_lab.weighting.solvers import check_gramian


class SDMGrad(Weighting):
    """Least-norm step pulled by λ towards the average gradient; weights from two independent batches."""

    name = "sdmgrad"
    description = "SDMGrad: MGDA pulled towards the mean gradient, unbiased from two independent batches."
    requires = "cross_gramian"

    def __init__(self, lambda_: float = 0.3, lr: float = 10.0, momentum: float = 0.5, n_iter: int = 20) -> None:
        super().__init__()
        if isinstance(lambda_, bool) or not (isinstance(lambda_, (int, float)) and math.isfinite(lambda_)
                                             and lambda_ >= 0):
            raise ValueError(f"{self.name}: lambda_ must be a finite number ≥ 0, got {lambda_!r}")
        if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"{self.name}: lr must be a finite number > 0, got {lr!r}")
        if isinstance(momentum, bool) or not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
            raise ValueError(f"{self.name}: momentum must be a number in [0, 1), got {momentum!r}")
        if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
            raise ValueError(f"{self.name}: n_iter must be an integer ≥ 1, got {n_iter!r}")
        self.lambda_ = float(lambda_)
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.n_iter = n_iter
        self.w: torch.Tensor | None = None

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.w = None

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        check_gramian(self.name, grads)
        A = grads.detach()
        T = self.n_tasks
        preferred = torch.full((T,), 1.0 / T, dtype=A.dtype, device=A.device)
        w = preferred.clone() if self.w is None else self.w.to(A)
        scale = A.diagonal().clamp(min=0).sqrt().mean()
        A = A / (scale**2 + 1e-8)
        velocity = None
        for _ in range(self.n_iter):
            gradient = A @ (w + self.lambda_ * preferred)
            velocity = gradient if velocity is None else self.momentum * velocity + gradient
            w = project_onto_simplex(w - self.lr * velocity)
        self.w = w
        weights = (w + self.lambda_ * preferred) / (1 + self.lambda_)
        return Combination(weights, head_weights=weights.clone(), info={"w": w.tolist()})

    def config(self) -> dict:
        return {"name": self.name, "lambda_": self.lambda_, "lr": self.lr, "momentum": self.momentum,
                "n_iter": self.n_iter}

    def state_dict(self) -> dict:
        return {"w": None if self.w is None else self.w.detach().cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        value = state.get("w")
        self.w = None if value is None else torch.as_tensor(value).clone()
