"""FAMO: Fast Adaptive Multitask Optimization — learn the weights from how much each loss just fell.

Paper: Bo Liu, Yihao Feng, Peter Stone, Qiang Liu, "FAMO: Fast Adaptive Multitask Optimization",
NeurIPS 2023 (Algorithm 1; arXiv:2306.03792).

FAMO wants every task's loss to fall at the same *relative* rate, using only loss values (no per-task
gradients). It keeps logits ``ξ`` (all 0 at the start) and task weights ``z = softmax(ξ)``.

Model step (:meth:`combine`). The model descends ``c · Σ_t z_t log(L_t + ε)`` with the constant
``c = (Σ_k z_k / (L_k + ε))^(−1)``, i.e. along ``Σ_t w_t g_t`` with the **effective weights**::

    w_t = c · z_t / (L_t + ε)            (w_t > 0, Σ_t w_t = 1)

— the gradients of the log-losses, mixed by ``z`` and normalised to a convex combination.
Computed as ``w = softmax(ξ − log(L + ε))``, the same numbers, finite for any loss scale.

Weight step (:meth:`after_step`, ``needs_losses_after_step = True``). With the losses ``L_t^new`` of
the same batch after the model update, the improvement of each log-loss is::

    δ_t = log(L_t + ε) − log(L_t^new + ε)
    ξ   ← ξ − β · (∇_ξ (zᵀδ) + γ ξ),      ∇_ξ (zᵀδ)_t = z_t (δ_t − Σ_k z_k δ_k)

A task that improved less than the z-average (small ``δ_t``) gets a negative gradient entry, so its
logit, and its weight, go up; the ``γ ξ`` decay pulls the logits back towards equal weights. As in
the authors' code (and LibMTL, TorchJD), the step on ``ξ`` is taken by Adam with learning rate ``β``
and weight decay ``γ`` (Adam's L2 form, which adds ``γξ`` to the gradient as written above); the
paper's Algorithm 1 writes it as a plain gradient step. The authors' code also clips the norm of the
shared gradient to 1; that is the trainer's business, not done here.

State (made in :meth:`reset`): :attr:`logits` ``ξ`` (float64, CPU) with its :attr:`optimizer`, and
the losses seen by the last :meth:`combine`, which :meth:`after_step` compares with.

Guards: losses must be finite and ``≥ 0`` (``log(L + ε)`` needs ``L > −ε``; the paper assumes
non-negative losses), else ``ValueError``. A loss at 0 gives ``L + ε = ε``: that task takes almost all
of the weight, as in the authors' code. :meth:`after_step` before any :meth:`combine` raises
``RuntimeError``. ``T = 1``: the weight is 1 and ``ξ`` only decays.

TorchJD's ``scalarization.FAMO`` is the same algorithm with the same defaults (tests compare the
weights and the logits over several steps); it also offers lower bounds ``b_t`` subtracted from the
losses, which this version leaves out (``b = 0``).

Defaults: ``β = 0.025`` (the authors' code, LibMTL and TorchJD agree); ``γ = 0.001``, the default of
LibMTL and TorchJD and the value in the authors' QM9 run script (the authors' example file and their
argument parser default to 0.01 — the sources differ); ``ε = 1e-8``, as in the authors' code.
"""

from __future__ import annotations

import copy

import torch

from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses, cpu_copy


class FAMO(Weighting):
    """Weights ``c·z_t/(L_t+ε)`` with ``z = softmax(ξ)``; ``ξ`` learned from the loss drop of each step."""

    name = "famo"
    description = "FAMO: weights learned so that all losses fall at the same relative rate (Liu et al. 2023)."
    uses_losses = True
    needs_losses_after_step = True
    options = {
        "beta": Number(low=0, low_open=True),  # the logits' learning rate
        "gamma": Number(low=0),  # the logits' decay
        "eps": Number(low=0, low_open=True),
    }

    def __init__(self, beta: float = 0.025, gamma: float = 0.001, eps: float = 1e-8) -> None:
        super().__init__(beta=beta, gamma=gamma, eps=eps)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.eps = float(eps)
        self.logits: torch.Tensor | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.losses_before: torch.Tensor | None = None

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.logits = torch.zeros(self.n_tasks, dtype=torch.float64, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.logits], lr=self.beta, weight_decay=self.gamma)
        self.losses_before = None

    def task_weights(self) -> torch.Tensor:
        """``z = softmax(ξ)``: FAMO's own task weights (before the division by the losses)."""
        return torch.softmax(self.logits.detach(), dim=0)

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        values = checked_losses(self.name, losses, self.task_names)
        weights = torch.softmax(self.logits.detach() - torch.log(values + self.eps), dim=0)
        self.losses_before = values
        info = {"z": self.task_weights().tolist()}
        return Combination(weights.to(device=losses.device, dtype=losses.dtype), info=info)

    def after_step(self, losses_after: torch.Tensor, ctx: StepContext) -> None:
        """Update ``ξ`` from ``δ_t = log(L_t + ε) − log(L_t^new + ε)`` on the same batch."""
        if self.losses_before is None:
            raise RuntimeError("famo: after_step needs the losses of a combine() call first")
        self.check_inputs(losses_after, None)
        after = checked_losses(self.name, losses_after, self.task_names)
        delta = torch.log(self.losses_before + self.eps) - torch.log(after + self.eps)
        self.optimizer.zero_grad()
        with torch.enable_grad():
            (torch.softmax(self.logits, dim=0) * delta).sum().backward()  # ∇_ξ (zᵀδ)
        self.optimizer.step()
        self.losses_before = None

    def parameters(self) -> list[torch.Tensor]:
        return [] if self.logits is None else [self.logits]

    def config(self) -> dict:
        return {"name": self.name, "beta": self.beta, "gamma": self.gamma, "eps": self.eps}

    def state_dict(self) -> dict:
        if self.logits is None:
            return {}
        before = None if self.losses_before is None else self.losses_before.clone()
        return {
            "logits": self.logits.detach().clone(),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "losses_before": before,
        }

    def load_state_dict(self, state: dict) -> None:
        if self.logits is None:
            raise RuntimeError("famo: call reset(task_names) before load_state_dict")
        logits = torch.as_tensor(state["logits"]).to("cpu", torch.float64)
        if logits.shape != self.logits.shape:
            raise ValueError(f"famo: state has {logits.numel()} logits, the run has {self.n_tasks} tasks")
        with torch.no_grad():
            self.logits.copy_(logits)
        self.optimizer.load_state_dict(cpu_copy(state["optimizer"]))
        before = state.get("losses_before")
        self.losses_before = None if before is None else torch.as_tensor(before).to("cpu", torch.float64).clone()
