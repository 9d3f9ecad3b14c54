"""Aligned-MTL: make the task gradients orthogonal and of equal size before summing them.

Paper: Dmitry Senushkin, Nikolay Patakin, Arseny Kuznetsov and Anton Konushin, "Independent Component
Alignment for Multi-Task Learning", CVPR 2023.

Idea. Conflicts and dominance between tasks show up in the condition number of the gradient matrix
``G``: it is 1 exactly when the task gradients are orthogonal and of equal norm. Aligned-MTL replaces
``G`` by the closest such matrix (an orthogonal Procrustes problem) and steps along the sum of its rows.

Update rule (the paper's Algorithm 1, written with the Gramian ``K = GGᵀ``)::

    K = V Λ Vᵀ                         eigen-decomposition (torch.linalg.eigh), rank r
    B = √λ_r · V_r Λ_r^{-1/2} V_rᵀ      λ_r = the smallest non-zero eigenvalue ("min" scale)
    Ĝ = B G                            aligned gradients: ĜĜᵀ = λ_r · (projector on the rank-r space)
    d = Ĝᵀ1 = Gᵀ(B1)                   so the effective weights are w = B·1

If ``G = UΣWᵀ`` (SVD), then ``Ĝ = σ_min U Wᵀ``: the same singular vectors with every singular value set
to the smallest one. Only the Gramian is needed.

Defaults and conventions:

* ``scale_mode = "min"`` (the paper's default): the aligned gradients take the smallest singular value;
  ``"median"`` and ``"rmse"`` (the mean eigenvalue, as in the official code) are the code's other modes.
* The weights are ``B·1``: the aligned gradients are **summed**, as in the official code. TorchJD's
  ``AlignedMTL`` averages them (``B·1/T``): its direction is this one divided by T.
* Eigenvalues below ``λ_max · solvers.rank_tolerance`` count as zero (the official code uses
  ``λ_max · T · eps``; the tolerance here is ten times that, so that identical float32 gradients are
  recognised as dependent). If every gradient is zero the weights are 0.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import torch

from mtl_lab.validate import OneOf
from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import check_gramian, normalized_gramian, rank_tolerance

ScaleMode = Literal["min", "median", "rmse"]
SCALE_MODES = get_args(ScaleMode)


class AlignedMTL(Weighting):
    """Sum of the task gradients after aligning them to orthogonal, equal-norm ones (Procrustes)."""

    name = "aligned_mtl"
    description = "Aligned-MTL: orthogonalise the task gradients to equal norms (Procrustes), then sum."
    requires = "gramian"
    options = {
        "scale_mode": OneOf(SCALE_MODES),
    }

    def __init__(self, scale_mode: ScaleMode = "min") -> None:
        super().__init__(scale_mode=scale_mode)
        self.scale_mode = scale_mode

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        check_gramian(self.name, grads)
        B, rank, condition = self.balance_matrix(grads)
        weights = B.sum(axis=1)  # B·1: the aligned gradients are summed
        return Combination(torch.from_numpy(weights).to(grads), info={"rank": rank, "condition_number": condition})

    def balance_matrix(self, K: torch.Tensor) -> tuple[np.ndarray, int, float]:
        """``B`` with ``BG`` the aligned gradients, the rank of K, and the condition number ``√(λ_max/λ_r)``."""
        Kn, scale = normalized_gramian(K)
        T = Kn.shape[0]
        if scale == 0:
            return np.zeros((T, T)), 0, float("nan")
        eigenvalues, V = np.linalg.eigh(Kn)
        keep = eigenvalues > eigenvalues.max() * rank_tolerance(K.dtype, T)
        eigenvalues, V = eigenvalues[keep], V[:, keep]
        if self.scale_mode == "min":
            target = eigenvalues.min()
        elif self.scale_mode == "median":
            target = np.sort(eigenvalues)[(len(eigenvalues) - 1) // 2]  # the lower median, as torch.median
        else:
            target = eigenvalues.mean()
        B = np.sqrt(target) * (V / np.sqrt(eigenvalues)) @ V.T
        condition = float(np.sqrt(eigenvalues.max() / eigenvalues.min()))
        return B, int(keep.sum()), condition

    def config(self) -> dict:
        return {"name": self.name, "scale_mode": self.scale_mode}
