"""STCH: smooth Tchebycheff scalarisation — descend a smooth maximum of the (normalised) task losses.

Paper: Xi Lin, Xiaoyuan Zhang, Zhiyuan Yang, Fei Liu, Zhenkun Wang and Qingfu Zhang, "Smooth
Tchebycheff Scalarization for Multi-Objective Optimization", ICML 2024 (arXiv:2402.19078).

Update rule. The Tchebycheff scalarisation ``max_t λ_t (f_t − z_t)`` reaches every Pareto-optimal
point but is not smooth; STCH replaces the maximum by its log-sum-exp smoothing with temperature μ::

    g_μ(f) = μ log Σ_t exp(λ_t (f_t − z_t) / μ)        (→ the maximum as μ → 0)

For multi-task learning the authors' code (and LibMTL) use ``λ_t = 1``, the **log** losses
``f_t = log L_t`` and a nadir point ``z_t = log L̄_t`` estimated during a warm-up, and multiply by T::

    epochs < warmup_epochs:  minimise Σ_t log L_t       (w_t = 1/L_t, the scale-invariant loss);
                             in the last warm-up epoch, average each loss over its batches: L̄_t
    afterwards:              minimise T · μ log Σ_t exp(log(L_t / L̄_t) / μ)

so the effective weights after the warm-up are ``w_t = T · softmax(log(L/L̄)/μ)_t / L_t``: the task
furthest above its warm-up level gets (nearly) all the weight when μ is small, equal relative progress
when μ is large. ``warmup_epochs = 0`` skips the warm-up (``L̄ = 1``).

Defaults and their origin: ``mu = 1.0`` (LibMTL's default; the paper evaluates μ ∈ {0.01, 0.1, 0.5, 1});
``warmup_epochs = 5``: the authors' code and LibMTL train epochs 0–3 on ``Σ log L`` and average the
losses during epoch 4 (their ``warmup_epoch = 4``), i.e. five warm-up epochs in the count used here.
``eps = 1e-20`` inside the logarithm, as in their code.

TorchJD's ``scalarization.STCH(mu, weights, reference)`` is the plain formula ``g_μ`` (no warm-up);
with ``weights = 1``, ``reference = log L̄`` applied to ``log L``, its gradient times T is ours (tested).
"""

from __future__ import annotations

import torch

from mtl_lab.validate import Integer, Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses


class STCH(Weighting):
    """Smooth Tchebycheff scalarisation of log(L_t / nadir_t) after a Σ log L warm-up."""

    name = "stch"
    description = "STCH: smooth maximum of the log losses over their warm-up level (Lin et al. 2024)."
    uses_losses = True
    options = {
        "mu": Number(low=0, low_open=True),  # smoothing
        "warmup_epochs": Integer(low=0),
        "eps": Number(low=0, low_open=True),
    }

    def __init__(self, mu: float = 1.0, warmup_epochs: int = 5, eps: float = 1e-20) -> None:
        super().__init__(mu=mu, warmup_epochs=warmup_epochs, eps=eps)
        self.mu = float(mu)
        self.warmup_epochs = warmup_epochs
        self.eps = float(eps)
        self.loss_sum: torch.Tensor | None = None
        self.loss_count = 0
        self.nadir: torch.Tensor | None = None

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.loss_sum = None
        self.loss_count = 0
        self.nadir = None

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        values = checked_losses(self.name, losses, self.task_names)
        if ctx.epoch < self.warmup_epochs:
            if ctx.epoch == self.warmup_epochs - 1:
                self.loss_sum = values.clone() if self.loss_sum is None else self.loss_sum + values
                self.loss_count += 1
            weights = 1.0 / (values + self.eps)
            info = {"phase": "warm-up"}
        else:
            weights = self.tchebycheff_weights(values)
            info = {"phase": "stch", "nadir": self.nadir.tolist()}
        return Combination(weights.to(device=losses.device, dtype=losses.dtype), info=info)

    def tchebycheff_weights(self, values: torch.Tensor) -> torch.Tensor:
        """``T · softmax(log(L/L̄)/μ) / L``: the gradient of ``T μ log Σ exp(log(L_t/L̄_t)/μ)``."""
        if self.nadir is None:
            self.nadir = torch.ones_like(values) if self.loss_count == 0 else self.loss_sum / self.loss_count
        shifted = torch.log(values / self.nadir + self.eps)
        share = torch.softmax(shifted / self.mu, dim=0)
        # d/dL of log(L/L̄ + eps) is 1/(L + eps·L̄)
        return self.n_tasks * share / (values + self.eps * self.nadir)

    def config(self) -> dict:
        return {"name": self.name, "mu": self.mu, "warmup_epochs": self.warmup_epochs, "eps": self.eps}

    def state_dict(self) -> dict:
        def copy(t: torch.Tensor | None):
            return None if t is None else t.clone()

        return {"loss_sum": copy(self.loss_sum), "loss_count": self.loss_count, "nadir": copy(self.nadir)}

    def load_state_dict(self, state: dict) -> None:
        def load(value):
            return None if value is None else torch.as_tensor(value, dtype=torch.float64).clone()

        self.loss_sum = load(state.get("loss_sum"))
        self.loss_count = int(state.get("loss_count", 0))
        self.nadir = load(state.get("nadir"))
