"""Dynamic Weight Average (DWA): weight each task by how slowly its loss fell over the last epoch.

Paper: Shikun Liu, Edward Johns, Andrew J. Davison, "End-to-End Multi-Task Learning with Attention",
CVPR 2019 (section 3.2 and equation 7).

Update rule, at epoch ``e`` (counted from 0 here), with ``L̄_t(e)`` the average training loss of
task ``t`` over epoch ``e``::

    r_t(e−1) = L̄_t(e−1) / L̄_t(e−2)                      (relative descending rate)
    w_t(e)   = T · exp(r_t(e−1) / Temp) / Σ_k exp(r_k(e−1) / Temp)

A task whose loss fell less (ratio close to 1, or above) gets a larger weight; the weights sum to
``T``. They are constant within an epoch and need no gradients. While fewer than two epochs have
finished (the first two epochs) every weight is 1, as in the paper.

The epoch averages come from ``ctx.epoch_losses`` (its last two entries), so the method keeps no
state of its own; ``reset`` has nothing to clear. The batch losses passed to :meth:`combine` are not
used (``uses_losses = False``), so ``aggregate("dwa", G)`` returns the first-epoch direction ``Σ_t g_t``.

Guard: the ratios need ``L̄_t ≥ 0``; a negative or non-finite epoch average raises ``ValueError``.
An older average of 0 is raised to ``eps`` (``1e-8``), so a task that stays at 0 gets the ratio 0
(the smallest weight) and one that leaves 0 gets a large ratio (the largest weight).

TorchJD's ``scalarization.DWA`` gives the same weights but keeps the epoch averages itself (its
``step()`` closes an epoch); here the trainer keeps them and hands them over in the context.

Defaults: ``Temp = 2`` (the paper's value, also in the authors' code).
"""

from __future__ import annotations

import math

import torch

from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting


class DWA(Weighting):
    """``w_t = T · softmax(r / Temp)_t`` with ``r_t`` the ratio of the last two epoch-average losses."""

    name = "dwa"
    description = "Dynamic Weight Average: more weight to tasks whose epoch loss fell least (Liu et al. 2019)."
    options = {
        "temperature": Number(low=0, low_open=True),  # T of the softmax
        "eps": Number(low=0, low_open=True),
    }

    def __init__(self, temperature: float = 2.0, eps: float = 1e-8) -> None:
        super().__init__(temperature=temperature, eps=eps)
        self.temperature = float(temperature)
        self.eps = float(eps)

    def descending_rates(self, ctx: StepContext) -> torch.Tensor | None:
        """``r_t = L̄_t(e−1) / L̄_t(e−2)`` from the last two finished epochs, or ``None`` before there are two."""
        if len(ctx.epoch_losses) < 2:
            return None
        older, newer = ctx.epoch_losses[-2], ctx.epoch_losses[-1]
        for which, row in (("older", older), ("newer", newer)):
            if len(row) != self.n_tasks:
                raise ValueError(f"dwa: the {which} epoch losses have {len(row)} entries, expected {self.n_tasks}")
            for task, value in zip(self.task_names, row):
                if not (math.isfinite(value) and value >= 0):
                    raise ValueError(f"dwa needs epoch-average losses ≥ 0, got {value!r} for task {task!r}")
        older_t = torch.tensor(older, dtype=torch.float64).clamp(min=self.eps)
        return torch.tensor(newer, dtype=torch.float64) / older_t

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        rates = self.descending_rates(ctx)
        if rates is None:
            return Combination(torch.ones_like(losses))
        weights = self.n_tasks * torch.softmax(rates / self.temperature, dim=0)
        info = {"descending_rates": rates.tolist()}
        return Combination(weights.to(device=losses.device, dtype=losses.dtype), info=info)

    def config(self) -> dict:
        return {"name": self.name, "temperature": self.temperature, "eps": self.eps}
