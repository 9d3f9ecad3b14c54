"""Auto-λ: learn the task weights so that a training step with them lowers the validation loss.

Paper: Shikun Liu, Stephen James, Andrew J. Davison and Edward Johns, "Auto-Lambda: Disentangling
Dynamic Task Relationships", TMLR 2022.

Update rule. The weights ``λ`` are the outer variables of a bilevel problem: the model's parameters
follow the training loss ``Σ_t λ_t L_t``, and ``λ`` follows the validation loss after one such step::

    θ' = θ − α ∇_θ Σ_t λ_t L_t^train(θ)             (a virtual step, α = the optimiser's learning rate)
    λ ← Adam step on  ∂/∂λ Σ_t L_t^val(θ'),  then λ ← max(λ, 0)
    the real training step uses Σ_t λ_t L_t^train  (heads included, as a loss weighting)

(The clip at 0 is this module's guard — a negative weight would *maximise* a loss — not the paper's.)

The Trainer computes the hypergradient ``H = ∂L_val(θ')/∂λ`` (``requires = "lookahead"``; see
:mod:`mtl_lab.training.lookahead` for how, and for its cost: about ``T + 2`` backward passes more per step, plus
one validation batch per step — the validation split then steers training). ``combine`` gets ``H`` as
a ``[T, 1]`` column, takes the Adam step and returns the new ``λ``. ``aggregate(G)`` cannot run it (a
gradient matrix has no validation loss): it raises a ``ValueError`` that says so.

Every task is a primary task (the paper's multi-task setting); the auxiliary-learning setting, where
only some tasks count in ``L_val``, is not offered.

Defaults and their origin (the authors' code): ``init_weight = 0.1`` for every task, ``lr = 1e-4``
for the weights' Adam (their NYUv2 value; 3e-5 for CityScapes). The paper's finite-difference
approximation of the second-order term is replaced by its exact value (:mod:`mtl_lab.training.lookahead`).
"""

from __future__ import annotations

import copy
import math

import torch

from mtl_lab.weighting.base import Combination, StepContext, Weighting, cpu_copy


class AutoLambda(Weighting):
    """Task weights λ learned by one-step lookahead on the validation loss."""

    name = "auto_lambda"
    description = "Auto-λ: weights learned so a training step lowers the validation loss (Liu et al. 2022)."
    requires = "lookahead"

    def __init__(self, lr: float = 1e-4, init_weight: float = 0.1) -> None:
        super().__init__()
        if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"{self.name}: lr must be a finite number > 0, got {lr!r}")
        if isinstance(init_weight, bool) or not (isinstance(init_weight, (int, float)) and math.isfinite(init_weight)
                                                 and init_weight > 0):
            raise ValueError(f"{self.name}: init_weight must be a finite number > 0, got {init_weight!r}")
        self.lr = float(lr)
        self.init_weight = float(init_weight)
        self.lambdas: torch.Tensor | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.lambdas = torch.full((self.n_tasks,), self.init_weight, dtype=torch.float64, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.lambdas], lr=self.lr)

    def current_weights(self) -> torch.Tensor:
        """λ before this step's update: the weights of the virtual step the hypergradient is taken at."""
        return self.lambdas.detach().clone()

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        if grads.shape[1] != 1:
            raise ValueError(
                f"{self.name} needs the [T, 1] hypergradient of the validation loss (the Trainer's lookahead); "
                f"got shape {tuple(grads.shape)} — aggregate(G) cannot run a bilevel method, train it instead"
            )
        self.lambdas.grad = grads[:, 0].detach().to("cpu", torch.float64)
        self.optimizer.step()
        with torch.no_grad():
            self.lambdas.clamp_(min=0.0)
        weights = self.lambdas.detach().to(device=losses.device, dtype=losses.dtype)
        return Combination(weights, head_weights=weights.clone())

    def parameters(self) -> list[torch.Tensor]:
        return [] if self.lambdas is None else [self.lambdas]

    def config(self) -> dict:
        return {"name": self.name, "lr": self.lr, "init_weight": self.init_weight}

    def state_dict(self) -> dict:
        if self.lambdas is None:
            return {}
        return {"lambdas": self.lambdas.detach().clone(), "optimizer": copy.deepcopy(self.optimizer.state_dict())}

    def load_state_dict(self, state: dict) -> None:
        if self.lambdas is None:
            raise RuntimeError("auto_lambda: call reset(task_names) before load_state_dict")
        with torch.no_grad():
            self.lambdas.copy_(torch.as_tensor(state["lambdas"]).to("cpu", torch.float64))
        self.optimizer.load_state_dict(cpu_copy(state["optimizer"]))
