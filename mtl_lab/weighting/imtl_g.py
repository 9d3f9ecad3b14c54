"""IMTL-G (Impartial MTL, gradient part): the direction whose projections on all task directions are equal.

Paper: Liyang Liu, Yi Li, Zhanghui Kuang, Jing-Hao Xue, Yimin Chen, Wenming Yang, Qingmin Liao and
Wayne Zhang, "Towards Impartial Multi-task Learning", ICLR 2021.

Update rule. Find weights ``α`` with ``Σ_t α_t = 1`` such that ``d = Σ_t α_t g_t`` has the same
projection on every unit task gradient ``u_t = g_t/‖g_t‖``::

    d·u_1 = d·u_2 = … = d·u_T

No task is favoured, whatever the sizes of the gradients. The paper's closed form, with the rows
``D = [g_1 − g_2, …, g_1 − g_T]`` and ``U = [u_1 − u_2, …, u_1 − u_T]``, is
``α_{2:T} = g_1 Uᵀ (D Uᵀ)⁻¹`` and ``α_1 = 1 − Σ_{t≥2} α_t``. Written with the Gramian ``K`` and the norms
``n_t = ‖g_t‖ = √K_tt`` the same conditions read ``(Kα)_t = c·n_t``, i.e. ``α ∝ K⁻¹n``, scaled to sum
to 1 — which is what is computed (only the Gramian is needed).

Conventions:

* ``K⁻¹`` is the pseudo-inverse, with eigenvalues below ``solvers.rank_tolerance`` treated as zero, so
  that identical or linearly dependent gradients are handled (TorchJD's generalisation of IMTL-G in
  "Jacobian Descent for Multi-Objective Optimization" does the same). A zero gradient gets weight 0.
* The weights sum to 1 as in the paper; TorchJD's ``IMTLG`` gives the same numbers. If ``Σ K⁻¹n`` is
  (numerically) 0 — only when every gradient is zero — the weights are all 0 and
  ``info["degenerate"]`` says so.
* The paper also scales the losses (IMTL-L); that loss-balancing half is a separate method.
"""

from __future__ import annotations

import numpy as np
import torch

from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import check_gramian, normalized_gramian, rank_tolerance


class IMTLG(Weighting):
    """Weights summing to 1 whose direction projects equally on every unit task gradient."""

    name = "imtl_g"
    description = "IMTL-G: the combination whose projection on every task's gradient direction is equal."
    requires = "gramian"
    options = {}  # no hyper-parameters: closed form

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        check_gramian(self.name, grads)
        Kn, scale = normalized_gramian(grads)
        norms = np.sqrt(np.clip(np.diag(Kn), 0.0, None))
        v = np.linalg.pinv(Kn, rcond=rank_tolerance(grads.dtype, Kn.shape[0]), hermitian=True) @ norms
        total = float(v.sum())
        degenerate = scale == 0 or abs(total) <= 1e-12 * float(np.abs(v).sum())
        weights = np.zeros_like(v) if degenerate else v / total
        return Combination(torch.from_numpy(weights).to(grads), info={"degenerate": degenerate})
