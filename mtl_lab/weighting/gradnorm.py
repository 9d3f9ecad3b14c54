"""GradNorm: learn the loss weights so that every task's weighted gradient has the norm its pace deserves.

Paper: Zhao Chen, Vijay Badrinarayanan, Chen-Yu Lee, Andrew Rabinovich, "GradNorm: Gradient
Normalization for Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018 (Algorithm 1).

Needs the per-task gradients ``g_t`` of the shared parameters (``requires = "grads"``, unweighted).
With learned weights ``w_t`` (all 1 at the start), at every step::

    G_t   = w_t ‖g_t‖                                   (norm of the weighted task gradient)
    Ḡ     = mean_k G_k
    r_t   = (L_t / L_t(0)) / mean_k (L_k / L_k(0))       (inverse training rate; L(0) = ctx.first_losses)
    L_gr  = Σ_t | G_t − Ḡ · r_t^α |                      (target Ḡ · r_t^α held constant)
    w     ← Adam step on L_gr,  then  w ← T · w / Σ_k w_k

A task whose gradient is larger than its target loses weight; a task that trains slower than the
others (larger ``r_t``) is given a larger target. The method returns the weights **before** the
update (the ones the step uses, as in the paper's algorithm) and no direction: the trainer moves the
shared parameters along ``Gᵀw``. It also sets ``head_weights = w``, so each task head gets
``w_t ∇L_t``: the whole step is the gradient of ``Σ_t w_t L_t``. The weights always sum to ``T``.

Choices where the paper leaves room:

* ``g_t`` are the gradients of all shared parameters the host hands over (the paper uses only the
  last shared layer, to save time; the rule is the same).
* ``L_t(0)`` is ``ctx.first_losses``, the losses of the run's first step; on that first step (or in
  ``aggregate``) the current losses stand in, so every ``r_t = 1``.
* ``w`` has its own Adam optimiser (:attr:`weights`, :attr:`optimizer`, made in :meth:`reset`;
  float64 on the CPU). After each step a weight is held at ``1e-4`` or more before the
  renormalisation, so no task is switched off and the sum never vanishes.

Guards: losses must be finite and ``≥ 0`` (a training rate is a ratio of losses), else
``ValueError``; so must the gradient norms. A task whose first loss is 0 has no training rate: its
ratio ``L_t / L_t(0)`` is taken as 1. If every ratio is 0 (all tasks solved) every ``r_t`` is 1.
``T = 1``: the GradNorm loss is 0 and the weight stays 1.

Defaults: ``α = 1.5``, the value the paper uses on NYUv2 and LibMTL's default (the paper tunes ``α``
per dataset; ``α = 0`` only equalises the gradient norms). ``lr = 0.025``, the Adam learning rate
the Nash-MTL and FAMO benchmark code gives weighting parameters (``--method-params-lr``).
"""

from __future__ import annotations

import copy

import torch

from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses, cpu_copy

MIN_WEIGHT = 1e-4  # floor for a weight after the Adam step, before the renormalisation to Σw = T


def inverse_training_rates(losses: torch.Tensor, first_losses: torch.Tensor) -> torch.Tensor:
    """``r_t = (L_t / L_t(0)) / mean_k (L_k / L_k(0))``, with the guards of the module docstring."""
    started = first_losses > 0
    ratios = torch.where(started, losses / torch.where(started, first_losses, 1.0), 1.0)
    mean = ratios.mean()
    return ratios / mean if mean > 0 else torch.ones_like(ratios)


class GradNorm(Weighting):
    """Learned weights trained to give each task the gradient norm ``mean(w‖g‖) · r_t^α``."""

    name = "gradnorm"
    description = "GradNorm: learned weights that balance weighted gradient norms by training rate (Chen et al. 2018)."
    requires = "grads"
    uses_losses = True
    options = {
        "alpha": Number(low=0),  # asymmetry
        "lr": Number(low=0, low_open=True),  # the weights' learning rate
    }

    def __init__(self, alpha: float = 1.5, lr: float = 0.025) -> None:
        super().__init__(alpha=alpha, lr=lr)
        self.alpha = float(alpha)
        self.lr = float(lr)
        self.weights: torch.Tensor | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.weights = torch.ones(self.n_tasks, dtype=torch.float64, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.weights], lr=self.lr)

    def first_losses(self, ctx: StepContext, losses: torch.Tensor) -> torch.Tensor:
        """``L(0)`` from the context, or the current losses on the run's first step."""
        if ctx.first_losses is None:
            return losses
        if len(ctx.first_losses) != self.n_tasks:
            raise ValueError(f"gradnorm: ctx.first_losses has {len(ctx.first_losses)} entries, expected {self.n_tasks}")
        return torch.tensor(ctx.first_losses, dtype=torch.float64)

    def update(self, grad_norms: torch.Tensor, rates: torch.Tensor) -> float:
        """One Adam step on the GradNorm loss, then the floor and the renormalisation; returns the loss."""
        with torch.enable_grad():
            weighted_norms = self.weights * grad_norms
            target = (weighted_norms.mean() * rates**self.alpha).detach()
            gradnorm_loss = (weighted_norms - target).abs().sum()
            self.optimizer.zero_grad()
            gradnorm_loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            self.weights.clamp_(min=MIN_WEIGHT)
            self.weights.mul_(self.n_tasks / self.weights.sum())
        return gradnorm_loss.item()

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        values = checked_losses(self.name, losses, self.task_names)
        grad_norms = grads.detach().norm(dim=1).to("cpu", torch.float64)
        if not bool(torch.isfinite(grad_norms).all()):
            raise ValueError(f"gradnorm needs finite task gradients, got norms {grad_norms.tolist()}")
        rates = inverse_training_rates(values, self.first_losses(ctx, values))
        used = self.weights.detach().clone()
        gradnorm_loss = self.update(grad_norms, rates)
        info = {"gradnorm_loss": gradnorm_loss, "inverse_training_rates": rates.tolist()}
        weights = used.to(device=losses.device, dtype=losses.dtype)
        return Combination(weights, head_weights=weights, info=info)

    def parameters(self) -> list[torch.Tensor]:
        return [] if self.weights is None else [self.weights]

    def config(self) -> dict:
        return {"name": self.name, "alpha": self.alpha, "lr": self.lr}

    def state_dict(self) -> dict:
        if self.weights is None:
            return {}
        return {"weights": self.weights.detach().clone(), "optimizer": copy.deepcopy(self.optimizer.state_dict())}

    def load_state_dict(self, state: dict) -> None:
        if self.weights is None:
            raise RuntimeError("gradnorm: call reset(task_names) before load_state_dict")
        weights = torch.as_tensor(state["weights"]).to("cpu", torch.float64)
        if weights.shape != self.weights.shape:
            raise ValueError(f"gradnorm: state has {weights.numel()} weights, the run has {self.n_tasks} tasks")
        with torch.no_grad():
            self.weights.copy_(weights)
        self.optimizer.load_state_dict(cpu_copy(state["optimizer"]))
