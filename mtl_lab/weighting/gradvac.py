"""GradVac (Gradient Vaccine): nudge each pair of task gradients towards their usual agreement.

Paper: Zirui Wang, Yulia Tsvetkov, Orhan Firat and Yuan Cao, "Gradient Vaccine: Investigating and
Improving Multi-task Optimization in Massively Multilingual Models", ICLR 2021.

PCGrad only acts when two gradients conflict (cosine < 0) and then makes them orthogonal. GradVac keeps,
for every ordered pair of tasks, a *target* similarity φ̂_ij: an exponential moving average of the
cosines seen so far. Whenever the current cosine falls below the target, it adds just enough of g_j to
g_i for the cosine to reach the target. Update rule (the paper's Algorithm 1), at every step::

    for each task i:
        g_i' ← g_i
        for each other task j, in a random order:
            φ_ij ← cos(g_i', g_j)
            if φ_ij < φ̂_ij:
                g_i' ← g_i' + ‖g_i'‖ (φ̂_ij √(1 − φ_ij²) − φ_ij √(1 − φ̂_ij²)) / (‖g_j‖ √(1 − φ̂_ij²)) · g_j
            φ̂_ij ← (1 − β) φ̂_ij + β φ_ij
    d = Σ_i g_i'

The targets start at 0, so the first step is PCGrad's update (correct only conflicts, up to
orthogonality); later steps aim at the similarity the tasks usually have. The visiting order is
drawn from ``ctx.generator`` (one ``randperm(T − 1)`` of the other tasks per task).

Defaults and conventions:

* ``beta = 0.01``: the paper's setting — the targets should follow the slow, long-run similarity of the
  tasks. LibMTL and TorchJD default to 0.5 (they give the same numbers as this module at equal β and
  equal random order).
* Whole-model granularity: one set of targets for all the shared parameters. The paper also applies
  the rule per layer or per weight matrix (LibMTL's ``GradVac_group_type``); that is not offered here.
* ``d`` is the sum of the corrected gradients and always a combination ``d = Gᵀw``. As in
  :mod:`~mtl_lab.weighting.pcgrad`, writing ``g_i' = Σ_k c_k g_k`` turns every quantity the rule needs
  into Gramian arithmetic: ``‖g_i'‖² = cᵀKc`` and ``g_i'·g_j = (Kc)_j`` with ``K = G Gᵀ``. So the
  method runs on ``T × T`` numbers (``requires="gramian"``), updates the coefficients ``c`` instead of
  ``P``-long vectors, returns the exact weights ``w = Σ_i c^(i)``, and the trainer moves along ``Gᵀw``.
* A pair in which one gradient is zero has no angle: it is skipped (no correction, no target update).
  A target of exactly 1 cannot be reached by a finite correction: such a pair is not corrected.
* The targets are state: :meth:`reset` sets them back to 0, and they are saved by :meth:`state_dict`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import as_float64, check_gramian


class GradVac(Weighting):
    """PCGrad with adaptive targets: raise each pairwise cosine to its running average."""

    name = "gradvac"
    description = "GradVac: raise each pair's gradient cosine to its running-average target, then sum."
    requires = "gramian"
    options = {
        "beta": Number(low=0, high=1),  # EMA factor of the target similarities
    }

    def __init__(self, beta: float = 0.01) -> None:
        super().__init__(beta=beta)
        self.beta = float(beta)
        self.targets = np.zeros((0, 0))  # φ̂[i, j], float64

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.targets = np.zeros((self.n_tasks, self.n_tasks))

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        check_gramian(self.name, grads)
        K = as_float64(grads)  # K[i, j] = g_i · g_j
        T = K.shape[0]
        norms_j = np.sqrt(np.clip(np.diag(K), 0.0, None))
        weights = np.zeros(T)
        corrections = 0
        for i in range(T):
            coefficients = np.zeros(T)  # g_i' = Σ_k coefficients[k] · g_k
            coefficients[i] = 1.0
            others = [j for j in range(T) if j != i]
            for k in torch.randperm(T - 1, generator=ctx.generator, device=ctx.generator.device).tolist():
                j = others[k]
                Kc = K @ coefficients  # (g_k · g_i')_k
                norm_i = max(float(coefficients @ Kc), 0.0) ** 0.5
                if norm_i == 0 or norms_j[j] == 0:
                    continue
                phi = min(max(float(Kc[j]) / (norm_i * norms_j[j]), -1.0), 1.0)
                target = float(self.targets[i, j])
                if phi < target < 1.0:
                    coefficients[j] += vaccine_coefficient(norm_i, norms_j[j], phi, target)
                    corrections += 1
                self.targets[i, j] = (1 - self.beta) * target + self.beta * phi
            weights += coefficients
        return Combination(torch.from_numpy(weights).to(grads), info={"corrections": corrections})

    def config(self) -> dict:
        return {"name": self.name, "beta": self.beta}

    def state_dict(self) -> dict:
        return {"targets": self.targets.tolist()}

    def load_state_dict(self, state: dict) -> None:
        targets = np.array(state["targets"], dtype=np.float64)
        if targets.shape != (self.n_tasks, self.n_tasks):
            raise ValueError(
                f"{self.name}: saved targets have shape {tuple(targets.shape)}, "
                f"expected ({self.n_tasks}, {self.n_tasks}) for the {self.n_tasks} tasks"
            )
        self.targets = targets


def vaccine_coefficient(norm_i: float, norm_j: float, phi: float, target: float) -> float:
    """The ``a`` for which ``cos(g_i + a·g_j, g_j)`` equals ``target``, given ``cos(g_i, g_j) = phi``."""
    sin_phi, sin_target = math.sqrt(1 - phi**2), math.sqrt(1 - target**2)
    return norm_i * (target * sin_phi - phi * sin_target) / (norm_j * sin_target)
