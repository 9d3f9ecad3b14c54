"""ConFIG: the direction that makes the same positive angle with every task gradient.

Paper: Qiang Liu, Mengyu Chu and Nils Thuerey, "ConFIG: Towards Conflict-free Training of Physics
Informed Neural Networks", ICLR 2025 (arXiv:2408.11104), Equation 2. Registry name ``config``.

Update rule. With the unit gradients ``u_t = g_t/‖g_t‖`` stacked in ``U[T, P]``::

    v = U⁺ 1                         (pseudo-inverse: the least-norm v with u_t·v = 1 for every t)
    d = (Σ_t g_t·v̂) v̂,   v̂ = v/‖v‖   (the length is the sum of the gradients' projections on v̂)

When the gradients are linearly independent, ``u_t·v = 1`` for every task: ``v`` has **the same cosine
with every task gradient**, ``cos(g_t, d) = 1/‖v‖ > 0``, so no task is left behind and none gets worse
to first order. With more tasks than dimensions (or dependent gradients) ``v`` is the least-squares
answer and the cosines are only as equal as the span allows.

Computed on the Gramian alone (``requires="gramian"``): ``v`` lies in the span of the gradients, so
``v = Gᵀw`` with ``w = D (D K D)⁺ 1`` and ``D = diag(1/‖g_t‖)`` (a zero gradient gets ``u_t = 0``, as in
the official code). Then ``‖v‖² = wᵀKw`` and ``Σ_t g_t·v = 1ᵀKw``, so the final weights are
``(1ᵀKw / wᵀKw)·w``. The pseudo-inverse drops eigenvalues of ``DKD`` below the precision of the
Gramian's dtype (:func:`~mtl_lab.weighting.solvers.rank_tolerance`).

Defaults and their origin: every task's target cosine weight is 1 (the paper's ``1``; the official
code and TorchJD take an optional preference vector instead of ``1``, not offered here). The paper's
momentum variant (M-ConFIG, one task gradient per step) is not implemented.
TorchJD's ``ConFIG`` computes the same direction from the [T, P] matrix with ``torch.linalg.pinv``.
"""

from __future__ import annotations

import numpy as np
import torch

from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import as_float64, check_gramian, rank_tolerance


def config_weights(K: torch.Tensor | np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """Weights ``w`` with ``Gᵀw`` the ConFIG direction, from the Gramian ``K`` alone."""
    K = as_float64(K)
    K = (K + K.T) / 2
    T = K.shape[0]
    norms = np.sqrt(np.clip(np.diag(K), 0.0, None))
    inverse_norms = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
    C = K * np.outer(inverse_norms, inverse_norms)  # the Gramian of the unit gradients u_t
    eigenvalues, V = np.linalg.eigh(C)
    if eigenvalues[-1] <= 0:  # every gradient is zero
        return np.zeros(T)
    keep = eigenvalues > eigenvalues[-1] * rank_tolerance(dtype, T)
    coefficients = (V[:, keep] / eigenvalues[keep]) @ (V[:, keep].T @ np.ones(T))  # (DKD)⁺ 1
    w = inverse_norms * coefficients
    squared_norm = float(w @ K @ w)  # ‖v‖²
    if not squared_norm > 0:
        return np.zeros(T)
    return w * float(np.ones(T) @ K @ w) / squared_norm


class ConFIG(Weighting):
    """Equal positive cosine with every task gradient; length = sum of the gradients' projections."""

    name = "config"
    description = "ConFIG: the direction with the same positive cosine to every task gradient (Liu et al. 2024)."
    requires = "gramian"
    options = {}  # no hyper-parameters: the direction is fixed by the gradients

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        check_gramian(self.name, grads)
        w = config_weights(grads, grads.dtype)
        return Combination(torch.from_numpy(w).to(grads))
