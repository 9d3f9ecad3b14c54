"""MoDo: multi-objective gradient descent with double sampling — one weight step per training step.

Paper: Lisha Chen, Heshan Fernando, Yiming Ying and Tianyi Chen, "Three-Way Trade-Off in Multi-Objective
Learning: Optimization, Generalization and Conflict-Avoidance", NeurIPS 2023 (extended in JMLR 2024).

Update rule. MGDA's weights minimise ``½‖Gᵀλ‖²`` over the simplex; MoDo takes one projected gradient
step on that problem per training step, with the gradient ``GGᵀλ`` estimated without bias from two
**independent** mini-batches ``ξ, ξ'`` ("double sampling")::

    A  = G_ξ G_ξ'ᵀ                         (``requires = "cross_gramian"``: the Trainer supplies it)
    λ ← Π_Δ(λ − γ (A λ + ρ λ))              (λ starts at 1/T; Π_Δ: projection onto the simplex)
    d  = G_ζᵀ λ                            (the gradients of the step's own batch ζ: three batches)

The Trainer applies λ to the losses of its own batch, heads included (``head_weights = λ``, as
``losses.backward(λ)`` in the authors' code, LibMTL and TorchJD's example); see
:mod:`mtl_lab.training.extra_batches` for the extra batches and their cost. ``aggregate(G)`` has one matrix
only: it uses ``A = GGᵀ`` (one batch standing for both — the biased estimate MoDo avoids in training).

Defaults and their origin: ``gamma = 0.1``, ``rho = 0.1`` (TorchJD's ``MoDoWeighting``; LibMTL's
defaults are ``gamma = 1e-3``, ``rho = 0.1``). The authors' "two gradients" mode, which reuses ``ξ`` for
the parameter step, is not offered: the step always uses an independent batch.
"""

from __future__ import annotations

import math

import torch

from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.moco import project_onto_simplex
from mtl_lab.weighting.solvers import check_gramian


class MoDo(Weighting):
    """λ ← Π_Δ(λ − γ(G_ξ G_ξ'ᵀ λ + ρλ)) from two independent batches; the step uses a third."""

    name = "modo"
    description = "MoDo: MGDA weights by one projected step per step, from two independent batches (Chen et al.)."
    requires = "cross_gramian"

    def __init__(self, gamma: float = 0.1, rho: float = 0.1) -> None:
        super().__init__()
        if isinstance(gamma, bool) or not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma > 0):
            raise ValueError(f"{self.name}: gamma must be a finite number > 0, got {gamma!r}")
        if isinstance(rho, bool) or not (isinstance(rho, (int, float)) and math.isfinite(rho) and rho >= 0):
            raise ValueError(f"{self.name}: rho must be a finite number ≥ 0, got {rho!r}")
        self.gamma = float(gamma)
        self.rho = float(rho)
        self.lambdas: torch.Tensor | None = None

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.lambdas = None

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        check_gramian(self.name, grads)
        A = grads.detach()
        if self.lambdas is None:
            self.lambdas = torch.full((self.n_tasks,), 1.0 / self.n_tasks, dtype=A.dtype, device=A.device)
        lam = self.lambdas.to(A)
        self.lambdas = project_onto_simplex(lam - self.gamma * (A @ lam + self.rho * lam))
        return Combination(self.lambdas.clone(), head_weights=self.lambdas.clone())

    def config(self) -> dict:
        return {"name": self.name, "gamma": self.gamma, "rho": self.rho}

    def state_dict(self) -> dict:
        return {"lambdas": None if self.lambdas is None else self.lambdas.detach().cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        value = state.get("lambdas")
        self.lambdas = None if value is None else torch.as_tensor(value).clone()
