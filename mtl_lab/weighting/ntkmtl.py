"""NTKMTL: weigh each task by its share of the neural tangent kernel's trace, then clip the step.

Paper: Xiaohan Qin, Xiaoxing Wang, Ning Liao and Junchi Yan, "NTKMTL: Mitigating Task Imbalance in
Multi-Task Learning from Neural Tangent Kernel Perspective", NeurIPS 2025 (arXiv:2510.18258); the rule
below is the authors' public code (``methods/weight_methods.py``, class ``NTKMTL``, the variant with
``n = 1`` they use in their experiments).

A task whose NTK has a large eigenvalue converges fast and dominates the shared parameters. With one
sample per task (``n = 1``) the NTK of task ``t`` is the scalar ``K_tt = ‖g_t‖²``, and its Gramian is
``K = G Gᵀ``. Update rule::

    λ_t = (tr K / K_tt)^p                       (p = exponent; the slower a task, the larger its weight)
    d   = T · Σ_t λ_t g_t                       (the authors multiply by T "to match the sum loss")
    d  ← d · min(1, m / (‖d‖ + 1e-6))           (torch.nn.utils.clip_grad_norm_ with max_norm m)

With ``p = 1/2``, ``λ_t g_t`` all have the same length ``√tr K``: every task pushes equally hard.
The effective weights are ``w = T λ · min(1, m/(‖d‖ + 1e-6))`` with ``‖d‖² = T² λᵀKλ`` — the whole
method runs on the Gramian. A task with a zero gradient (no label in the batch) gets ``λ_t = 0``
(its row adds nothing to ``d`` whatever its weight; the authors' code would divide by zero).

Defaults and their origin: ``exponent = 0.5`` (their ``ntk_exp`` in every experiment script);
``max_norm = 1.0`` (their ``max_norm``; ``0`` turns the clipping off, as ``if self.max_norm > 0``).
The clip is applied to the shared parameters' direction only, as in their code; the heads follow their
own losses.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import as_float64, check_gramian

CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_ divides max_norm by (norm + 1e-6)


def ntk_weights(K: np.ndarray, exponent: float, max_norm: float) -> tuple[np.ndarray, float]:
    """The effective weights ``w`` (``d = Gᵀw``) and the norm of ``d`` before clipping."""
    T = K.shape[0]
    diagonal = np.diag(K)
    trace = float(diagonal.sum())
    present = diagonal > 0
    lam = np.zeros(T)
    lam[present] = (trace / diagonal[present]) ** exponent
    w = T * lam
    norm = math.sqrt(max(float(w @ K @ w), 0.0))
    if max_norm > 0:
        w = w * min(1.0, max_norm / (norm + CLIP_EPS))
    return w, norm


class NTKMTL(Weighting):
    """Weights (tr K / K_tt)^p times T, the step clipped to max_norm (authors' code, n = 1)."""

    name = "ntkmtl"
    description = "NTKMTL: weights (tr K / ‖g_t‖²)^p balance the tasks' NTK speeds; step clipped (Qin et al. 2025)."
    requires = "gramian"
    options = {
        "exponent": Number(low=0, high=4),  # p; 0.5 equalises the weighted gradients' lengths (above 4: overflow)
        "max_norm": Number(low=0),  # clip of the shared step's norm; 0: no clipping
    }

    def __init__(self, exponent: float = 0.5, max_norm: float = 1.0) -> None:
        super().__init__(exponent=exponent, max_norm=max_norm)
        self.exponent = float(exponent)
        self.max_norm = float(max_norm)

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        check_gramian(self.name, grads)
        w, norm = ntk_weights(as_float64(grads), self.exponent, self.max_norm)
        clipped = self.max_norm > 0 and norm + CLIP_EPS > self.max_norm
        return Combination(torch.from_numpy(w).to(grads), info={"norm_before_clip": norm, "clipped": clipped})

    def config(self) -> dict:
        return {"name": self.name, "exponent": self.exponent, "max_norm": self.max_norm}
