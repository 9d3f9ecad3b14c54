"""IMTL-L: learn one scale per task so that every scaled loss settles at the same value.

Paper: Liyang Liu, Yi Li, Zhanghui Kuang, Jing-Hao Xue, Yimin Chen, Wenming Yang, Qingmin Liao,
Wayne Zhang, "Towards Impartial Multi-task Learning", ICLR 2021 (the loss-balance part, IMTL-L; the
gradient-balance part, IMTL-G, is a gradient-manipulation method of its own).

Each task ``t`` gets a learned log-scale ``s_t``. The objective is::

    Σ_t e^(s_t) L_t − s_t

so the model sees the **effective weights** ``w_t = e^(s_t)`` and each ``s_t`` follows the gradient
``∂/∂s_t = e^(s_t) L_t − 1``, which is zero when the scaled loss ``e^(s_t) L_t`` equals 1, i.e. at
``s_t = −log L_t``: at its optimum the weight is ``1 / L_t`` and every scaled loss is 1. The ``−s_t``
term stops ``s_t`` from running to −∞ (which would switch the task off).

It is the uncertainty weighting of Kendall et al. up to a factor 2 and a sign: ``e^s L − s`` is
``2 · (½e^(−u) L + ½u)`` at ``u = −s``. Adam ignores the scale of a gradient, so from the same start
(``s = u = 0``) the two methods follow the same trajectory and uncertainty's weights are exactly half
of these (``1/L`` here at the optimum, ``1/(2L)`` there). ``s = 0`` is equal weighting (weights 1).

Updates: ``s`` has its own Adam optimiser (:attr:`log_scales`, :attr:`optimizer`, made in
:meth:`reset`). In :meth:`combine` the weights are read from the current ``s``, then one Adam step is
taken on the objective with the detached losses — a simultaneous step of model and ``s``. ``s``
lives on the CPU in float64.

Guards: losses must be finite and ``≥ 0`` (for ``L_t < 0`` the objective has no minimum), else
``ValueError``. A loss at 0 drives ``s_t`` up without end (optimum ``−log 0``); ``s_t`` is clipped to
``[−20, 20]`` after each step so the weight stays finite (at most ``e^20 ≈ 4.9e8``).

TorchJD's ``scalarization.IMTLL`` is the same objective; there the user adds ``s`` to the model's
optimiser, here the method owns its Adam.

Defaults: ``lr = 0.025``, the Adam learning rate the Nash-MTL and FAMO benchmark code gives the
weighting parameters (``--method-params-lr``); ``s = 0`` at the start, as in the paper and LibMTL.
"""

from __future__ import annotations

import copy

import torch

from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses, cpu_copy

LOG_SCALE_BOUND = 20.0  # s_t is kept in [−20, 20]: the weights stay finite when a loss reaches 0


class IMTLL(Weighting):
    """Learned log-scales ``s_t``; objective ``Σ e^(s_t) L_t − s_t``; weights ``e^(s_t)``."""

    name = "imtl_l"
    description = "IMTL-L: learned scales e^(s_t) that drive every scaled loss to 1 (Liu et al. 2021)."
    uses_losses = True
    options = {
        "lr": Number(low=0, low_open=True),  # the scales' learning rate
    }

    def __init__(self, lr: float = 0.025) -> None:
        super().__init__(lr=lr)
        self.lr = float(lr)
        self.log_scales: torch.Tensor | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.log_scales = torch.zeros(self.n_tasks, dtype=torch.float64, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.log_scales], lr=self.lr)

    def objective(self, losses: torch.Tensor) -> torch.Tensor:
        """``Σ_t e^(s_t) L_t − s_t`` for detached float64 losses (differentiable in ``s``)."""
        return (torch.exp(self.log_scales) * losses - self.log_scales).sum()

    def gradient(self, losses: torch.Tensor) -> torch.Tensor:
        """∂/∂s of :meth:`objective` in closed form, ``e^(s_t) L_t − 1`` (no autograd graph for ``T`` numbers)."""
        return torch.exp(self.log_scales.detach()) * losses - 1

    def update(self, losses: torch.Tensor) -> None:
        """One Adam step of ``s`` along :meth:`gradient`, then the clip to ``[−20, 20]``."""
        self.log_scales.grad = self.gradient(losses)
        self.optimizer.step()
        with torch.no_grad():
            self.log_scales.clamp_(-LOG_SCALE_BOUND, LOG_SCALE_BOUND)

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        values = checked_losses(self.name, losses, self.task_names)
        weights = torch.exp(self.log_scales.detach())
        info = {"log_scales": self.log_scales.tolist()}
        self.update(values)
        return Combination(weights.to(device=losses.device, dtype=losses.dtype), info=info)

    def parameters(self) -> list[torch.Tensor]:
        return [] if self.log_scales is None else [self.log_scales]

    def config(self) -> dict:
        return {"name": self.name, "lr": self.lr}

    def state_dict(self) -> dict:
        if self.log_scales is None:
            return {}
        return {"log_scales": self.log_scales.detach().clone(), "optimizer": copy.deepcopy(self.optimizer.state_dict())}

    def load_state_dict(self, state: dict) -> None:
        if self.log_scales is None:
            raise RuntimeError("imtl_l: call reset(task_names) before load_state_dict")
        log_scales = torch.as_tensor(state["log_scales"]).to("cpu", torch.float64)
        if log_scales.shape != self.log_scales.shape:
            raise ValueError(f"imtl_l: state has {log_scales.numel()} scales, the run has {self.n_tasks} tasks")
        with torch.no_grad():
            self.log_scales.copy_(log_scales)
        self.optimizer.load_state_dict(cpu_copy(state["optimizer"]))
