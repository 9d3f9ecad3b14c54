"""Nash-MTL: combine the task gradients as the Nash bargaining solution between the tasks.

Paper: Aviv Navon, Aviv Shamsian, Idan Achituve, Haggai Maron, Kenji Kawaguchi, Gal Chechik and Ethan
Fetaya, "Multi-Task Learning as a Bargaining Game", ICML 2022.

Update rule. The tasks bargain over a step ``d`` in a ball; each task's utility is its improvement
``g_t·d``. The Nash bargaining solution maximises ``Σ_t log(g_t·d)``, and the paper shows it is
``d = Σ_t α_t g_t = Gᵀα`` with ``α > 0`` solving::

    α_t (Kα)_t = 1   for every task t,     i.e.   Kα = 1/α      (K = GGᵀ)

so every task's improvement ``g_t·d = 1/α_t`` is positive, and a task with a small gradient gets a
large weight. Note ``‖d‖² = αᵀKα = Σ_t α_t (Kα)_t = T``: the raw direction always has norm ``√T``.

The paper approximates α by a sequence of convex problems (a few iterations of a cvxpy solver). Here
the system is solved exactly (``solvers.nash_weights``): it is the stationarity condition of the
strictly convex ``½ αᵀKα − Σ_t log α_t``, minimised by a damped Newton method, warm-started from the
previous step's α (as the paper's code warm-starts from its previous solution).

Defaults and their origin (the paper's official code; TorchJD's ``NashMTL`` has the same):

* ``max_norm = 1.0``: if ``‖d‖ > max_norm``, α is scaled down so that ``‖d‖ = max_norm`` (the official
  code clips the gradient norm of the shared parameters). 0 disables the clipping.
* ``update_weights_every = 1``: solve every step; with k > 1 the weights are reused for k − 1 steps in
  between (the paper's cheaper variant), ``info["reused"]`` marks those steps.
* ``reg = 1e-8``: ridge added to the normalised Gramian so that a solution exists when the gradients
  are Pareto-stationary (some convex combination vanishes: a zero gradient, two opposite ones); such
  α then grow like ``1/√reg`` instead of without bound. It moves each ``α_t (Kα)_t`` by ``reg·α_t²`` (α
  in normalised units, about 1 for well-spread gradients): negligible unless the gradients are nearly
  stationary. ``info["residual"]`` = ``max_t |α_t (Kα)_t − 1|`` shows how well the exact system is met.
  ``reg=0`` solves the exact system, which diverges (and says so) when it has no solution.
* ``tol = 1e-12``, ``max_iter = 100`` for the Newton iterations (it usually needs fewer than 10).

Scale: TorchJD's ``NashMTL`` (a port of the official code) returns the same unclipped direction as
here — step length ``√T`` whatever the gradients' scale (checked for ``‖K‖_F`` from 0.5 to 1.1·10⁴ in
``tests/test_solver_fixes.py``) — and with clipping to ``max_norm`` both take the same step.
The warm start is state: :meth:`reset` forgets it.
"""

from __future__ import annotations

import numpy as np
import torch

from mtl_lab.validate import Integer, Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import as_float64, check_gramian, nash_weights, report_info


class NashMTL(Weighting):
    """Weights α > 0 with α_t (Kα)_t = 1: the Nash bargaining solution between the tasks."""

    name = "nash_mtl"
    description = "Nash-MTL: the tasks bargain over the step; weights solve α_t·(g_t·Gᵀα) = 1 (Nash solution)."
    requires = "gramian"
    options = {
        "max_norm": Number(low=0),  # 0 = no clipping
        "update_weights_every": Integer(low=1),
        "reg": Number(low=0),
        "tol": Number(low=0, low_open=True),
        "max_iter": Integer(low=1),
    }

    def __init__(
        self,
        max_norm: float = 1.0,
        update_weights_every: int = 1,
        reg: float = 1e-8,
        tol: float = 1e-12,
        max_iter: int = 100,
    ) -> None:
        super().__init__(
            max_norm=max_norm,
            update_weights_every=update_weights_every,
            reg=reg,
            tol=tol,
            max_iter=max_iter,
        )
        self.max_norm = float(max_norm)
        self.update_weights_every = update_weights_every
        self.reg = float(reg)
        self.tol = tol
        self.max_iter = max_iter
        self.alpha: np.ndarray | None = None  # the last solution (warm start and reuse)
        self.calls = 0

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.alpha = None
        self.calls = 0

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        check_gramian(self.name, grads)
        reuse = self.alpha is not None and self.calls % self.update_weights_every != 0
        self.calls += 1
        if reuse:
            alpha, info = self.alpha, {"reused": True}
        else:
            alpha, report = nash_weights(grads, self.alpha, self.tol, self.max_iter, self.reg)
            self.alpha = alpha
            info = {"reused": False, **report_info(self.name, report)}
        weights = self.clip(alpha, as_float64(grads))
        return Combination(torch.from_numpy(weights).to(grads), info=info)

    def clip(self, alpha: np.ndarray, K: np.ndarray) -> np.ndarray:
        """Scale α down so that ``‖Gᵀα‖ = √(αᵀKα)`` is at most ``max_norm`` (unless max_norm is 0)."""
        norm = max(float(alpha @ K @ alpha), 0.0) ** 0.5
        if self.max_norm > 0 and norm > self.max_norm:
            return alpha * (self.max_norm / norm)
        return alpha

    def config(self) -> dict:
        return {
            "name": self.name,
            "max_norm": self.max_norm,
            "update_weights_every": self.update_weights_every,
            "reg": self.reg,
            "tol": self.tol,
            "max_iter": self.max_iter,
        }

    def state_dict(self) -> dict:
        return {"alpha": None if self.alpha is None else self.alpha.tolist(), "calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        alpha = state.get("alpha")
        self.alpha = None if alpha is None else np.array(alpha, dtype=np.float64)
        self.calls = int(state.get("calls", 0))
