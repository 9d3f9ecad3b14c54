"""Uncertainty weighting: learn one log-variance per task and weigh each loss by its precision.

Paper: Alex Kendall, Yarin Gal, Roberto Cipolla, "Multi-Task Learning Using Uncertainty to Weigh
Losses for Scene Geometry and Semantics", CVPR 2018.

Each task ``t`` gets a learned log-variance ``s_t = log σ_t²``. The joint objective is::

    Σ_t ½ e^(−s_t) L_t + ½ s_t

so the model sees the **effective weights** ``w_t = ½ e^(−s_t)`` and each ``s_t`` follows the gradient
``∂/∂s_t = ½ (1 − e^(−s_t) L_t)``, which is zero at ``s_t = log L_t``: at its optimum the weight is
``1 / (2 L_t)``, an inverse-loss weighting. The ``+½ s_t`` term stops ``s_t`` from running to +∞.

Which form, and why. The paper derives ``1/(2σ²) L + log σ`` for a Gaussian (regression) likelihood
and ``1/σ² L + log σ`` for a softmax (classification) one; with ``s = log σ²`` these are
``½e^(−s) L + ½s`` and ``e^(−s) L + ½s``. We use the regression form for every task, as LibMTL and
TorchJD's ``UW`` do: one rule for all tasks, whose kinds the method does not know. Other forms in
circulation differ by factors: ``e^(−s) L + s`` (twice ours: same optimum ``s = log L``, weights and
``s``-gradients doubled); the classification form puts the optimum at ``s = log(2L)``. LibMTL starts
from ``s = −0.5`` (weights ≈ 0.82); we start from ``s = 0`` (``σ² = 1``, weights ½) like TorchJD.

Updates: ``s`` has its own Adam optimiser (:attr:`log_vars`, :attr:`optimizer`, made in
:meth:`reset`). In :meth:`combine` the weights are read from the current ``s``, then one Adam step is
taken on the objective above with the detached losses — a simultaneous step of model and ``s``, as
when both share one optimiser in the paper. ``s`` lives on the CPU in float64 (``T`` numbers).

Guards: losses must be finite and ``≥ 0`` (for ``L_t < 0`` the objective has no minimum in ``s_t``),
else ``ValueError``. A loss at 0 drives ``s_t`` down without end (optimum ``log 0``); ``s_t`` is
clipped to ``[−20, 20]`` after each step so the weight stays finite (at most ``½e^20 ≈ 2.4e8``).

TorchJD's ``scalarization.UW`` is the same objective with the same start (tests compare gradients);
there the user adds ``s`` to the model's optimiser, here the method owns its Adam.

Defaults: ``lr = 0.025``, the Adam learning rate the Nash-MTL and FAMO benchmark code gives the
weighting parameters (``--method-params-lr``); ``init_log_var = 0``, ``σ² = 1``.
"""

from __future__ import annotations

import copy

import torch

from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses, cpu_copy

LOG_VAR_BOUND = 20.0  # s_t is kept in [−20, 20]: the weights stay finite when a loss reaches 0


class Uncertainty(Weighting):
    """Learned log-variances ``s_t``; objective ``Σ ½e^(−s_t) L_t + ½ s_t``; weights ``½e^(−s_t)``."""

    name = "uncertainty"
    description = "Learned task uncertainties: weights ½·exp(−s_t), s_t → log L_t (Kendall et al. 2018)."
    uses_losses = True
    options = {
        "lr": Number(low=0, low_open=True),  # the log-variances' learning rate
        "init_log_var": Number(low=-LOG_VAR_BOUND, high=LOG_VAR_BOUND),
    }

    def __init__(self, lr: float = 0.025, init_log_var: float = 0.0) -> None:
        super().__init__(lr=lr, init_log_var=init_log_var)
        self.lr = float(lr)
        self.init_log_var = float(init_log_var)
        self.log_vars: torch.Tensor | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.log_vars = torch.full((self.n_tasks,), self.init_log_var, dtype=torch.float64, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.log_vars], lr=self.lr)

    def objective(self, losses: torch.Tensor) -> torch.Tensor:
        """``Σ_t ½ e^(−s_t) L_t + ½ s_t`` for detached float64 losses (differentiable in ``s``)."""
        return (0.5 * torch.exp(-self.log_vars) * losses + 0.5 * self.log_vars).sum()

    def gradient(self, losses: torch.Tensor) -> torch.Tensor:
        """∂/∂s of :meth:`objective` in closed form, ``½ (1 − e^(−s_t) L_t)`` (no autograd graph for ``T`` numbers)."""
        return 0.5 * (1 - torch.exp(-self.log_vars.detach()) * losses)

    def update(self, losses: torch.Tensor) -> None:
        """One Adam step of ``s`` along :meth:`gradient`, then the clip to ``[−20, 20]``."""
        self.log_vars.grad = self.gradient(losses)
        self.optimizer.step()
        with torch.no_grad():
            self.log_vars.clamp_(-LOG_VAR_BOUND, LOG_VAR_BOUND)

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        values = checked_losses(self.name, losses, self.task_names)
        weights = 0.5 * torch.exp(-self.log_vars.detach())
        info = {"log_vars": self.log_vars.tolist()}
        self.update(values)
        return Combination(weights.to(device=losses.device, dtype=losses.dtype), info=info)

    def parameters(self) -> list[torch.Tensor]:
        return [] if self.log_vars is None else [self.log_vars]

    def config(self) -> dict:
        return {"name": self.name, "lr": self.lr, "init_log_var": self.init_log_var}

    def state_dict(self) -> dict:
        if self.log_vars is None:
            return {}
        return {"log_vars": self.log_vars.detach().clone(), "optimizer": copy.deepcopy(self.optimizer.state_dict())}

    def load_state_dict(self, state: dict) -> None:
        if self.log_vars is None:
            raise RuntimeError("uncertainty: call reset(task_names) before load_state_dict")
        log_vars = torch.as_tensor(state["log_vars"]).to("cpu", torch.float64)
        if log_vars.shape != self.log_vars.shape:
            raise ValueError(f"uncertainty: state has {log_vars.numel()} log-variances, the run has {self.n_tasks}")
        with torch.no_grad():
            self.log_vars.copy_(log_vars)
        self.optimizer.load_state_dict(cpu_copy(state["optimizer"]))
