"""PCGrad: project each task gradient away from the gradients it conflicts with, then sum.

Paper: Tianhe Yu, Saurabh Kumar, Abhishek Gupta, Sergey Levine, Karol Hausman and Chelsea Finn,
"Gradient Surgery for Multi-Task Learning", NeurIPS 2020.

Update rule (the paper's Algorithm 1)::

    for each task i:
        g_i^PC ← g_i
        for each other task j, in a random order:
            if g_i^PC · g_j < 0:                              # the two gradients conflict
                g_i^PC ← g_i^PC − (g_i^PC · g_j / ‖g_j‖²) g_j   # project onto the normal plane of g_j
    d = Σ_i g_i^PC

Each projection removes the component of ``g_i^PC`` that points against ``g_j``. With two conflicting
tasks, ``g_1^PC ⟂ g_2`` and ``g_2^PC ⟂ g_1``, so ``d`` has a non-negative inner product with both.
With more tasks the result depends on the visiting order, drawn afresh for each task and each step
from ``ctx.generator`` (one ``randperm(T)`` per task, skipping ``i`` itself).

Conventions and their origin:

* ``d`` is the **sum** of the projected gradients, as in the paper's algorithm box, its official code,
  LibMTL and TorchJD. (A popular PyTorch port averages them by default; its direction is ``d/T``.)
* ``d`` is always a combination of the task gradients, ``d = Gᵀw``. Writing ``g_i^PC = Σ_k c_k g_k``,
  every dot product the algorithm needs is ``g_i^PC · g_j = (K c)_j`` with the Gramian ``K = G Gᵀ``,
  so the whole algorithm runs on ``T × T`` numbers (``requires="gramian"``): the coefficients ``c`` are
  updated instead of ``P``-long vectors, and the effective weights ``w = Σ_i c^(i)`` are exact. The
  trainer then moves the shared parameters along ``Gᵀw`` — the same direction, far fewer operations
  when ``P`` is large.
* Applied to the gradients of the shared parameters, as in the paper.
"""

from __future__ import annotations

import torch

from mtl_lab.weighting.base import Combination, StepContext, Weighting


class PCGrad(Weighting):
    """Sum of the task gradients, each projected off the gradients it conflicts with."""

    name = "pcgrad"
    description = "PCGrad: remove from each task gradient its component against conflicting tasks, then sum."
    requires = "gramian"
    options = {}  # no hyper-parameters: the visiting order comes from the run's generator

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        K = grads  # the Gramian G Gᵀ: K[i, j] = g_i · g_j
        if K.shape[0] != K.shape[1]:
            raise ValueError(f"pcgrad needs the [T, T] Gramian, got shape {tuple(K.shape)}")
        T = K.shape[0]
        squared_norms = K.diagonal()
        weights = torch.zeros(T, dtype=K.dtype, device=K.device)
        projections = 0
        for i in range(T):
            coefficients = torch.zeros_like(weights)  # g_i^PC = Σ_k coefficients[k] · g_k
            coefficients[i] = 1.0
            for j in torch.randperm(T, generator=ctx.generator, device=ctx.generator.device).tolist():
                if j == i:
                    continue
                dot = coefficients @ K[:, j]  # g_i^PC · g_j
                if dot < 0:
                    coefficients[j] -= dot / squared_norms[j]
                    projections += 1
            weights += coefficients
        return Combination(weights, info={"projections": projections})
