"""EPO: Exact Pareto Optimal search — descend to the Pareto-optimal point on a chosen preference ray.

Paper: Debabrata Mahapatra and Vaibhav Rajan, "Multi-Task Learning with User Preferences: Gradient
Descent with Controlled Ascent in Pareto Optimization", ICML 2020 (their public code: EPOSearch).

The preference ``r[T]`` (positive numbers) names the ray ``r_1 L_1 = r_2 L_2 = … = r_T L_T``: a larger
``r_t`` asks for a smaller loss ``L_t``. EPO searches for the Pareto-optimal point on that ray.

Update rule, each step, from the losses ``L`` and the Gramian ``C = G Gᵀ`` (``C_ij = g_i·g_j``)::

    l̂ = r⊙L / Σ_t r_t L_t                          (the normalised weighted losses)
    μ = Σ_t l̂_t log(T l̂_t)                          (non-uniformity: KL(l̂ ‖ 1/T), 0 on the ray)
    a = r ⊙ (log(T l̂) − μ)                          (the "adjustment": ascent for the tasks below the ray)

    if μ > eps  (balance mode: move towards the ray)
        maximise  αᵀ(Ca)  over the simplex (α ≥ 0, Σ α = 1), subject to
            (Cα)_j ≥ (Ca)_j  for each task j with (Ca)_j ≤ 0,   and  (Cα)_j ≥ 0  for the task(s) of max r_j L_j
            (no constraint on the other tasks with (Ca)_j > 0; when (Ca)_j ≤ 0 for every j: (Cα)_j ≥ 0 for all)
    else        (descent mode: on the ray, go down while staying on it)
        maximise  1ᵀCα  over the simplex, subject to  Cα ≥ 0  and  αᵀ(Ca) ≥ min(max_j (Ca)_j, 0)

    weights  w = T · α                               (the shared parameters move along Gᵀw)

``(Cα)_j = g_j·d`` is the first-order decrease of loss ``j`` along ``d = Gᵀα``; ``αᵀ(Ca) = d·(Gᵀa)`` is
how well ``d`` follows the adjustment. Both linear programs have ``T`` unknowns and are solved exactly
(:func:`mtl_lab.weighting.solvers.simplex_lp`: every vertex at once for T ≤ 5, HiGHS beyond); they are
invariant to the scale of ``C``, which is divided by its mean diagonal first.

Defaults and their origin: ``eps = 1e-4`` (the authors' ``EPO_LP``); ``w = T·α`` as in their training
scripts; ``preference = None`` is the uniform ray ``r = 1``. Where the authors' LP solver fails, their
script falls back to ``α = r/Σr``; here the balance LP, when infeasible, does the same, and the
restricted descent LP, when infeasible, is replaced by their relaxed one (without the ``αᵀ(Ca)``
constraint) — either case is named in ``Combination.info["mode"]``. Losses must be > 0 (``log``).
"""

from __future__ import annotations

import numpy as np
import torch

from mtl_lab.validate import Number, TaskWeights, check_task_weights
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses
from mtl_lab.weighting.solvers import check_gramian, normalized_gramian, simplex_lp


def non_uniformity(rl: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """``(l̂, μ, a)`` of the weighted losses ``rl = r⊙L`` (all > 0): EPO's Equation for the adjustment
    without the factor ``r`` (the caller multiplies)."""
    T = rl.shape[0]
    l_hat = rl / rl.sum()
    mu = float(np.sum(l_hat * np.log(T * l_hat)))
    return l_hat, mu, np.log(T * l_hat) - mu


def epo_weights(losses: np.ndarray, K: np.ndarray, preference: np.ndarray, eps: float) -> tuple[np.ndarray, dict]:
    """``α`` on the simplex for one EPO step and a description of the step (mode, μ)."""
    rl = preference * losses
    _, mu, shifted = non_uniformity(rl)
    a = preference * shifted
    C, scale = normalized_gramian(K)
    T = C.shape[0]
    if scale == 0:
        return np.full(T, 1.0 / T), {"mode": "zero gradients", "non_uniformity": mu}
    Ca = C @ a
    if mu > eps:
        if (Ca > 0).any():
            bound = np.where(Ca > 0, -np.inf, Ca)
            bound[rl == rl.max()] = 0.0
        else:
            bound = np.zeros(T)
        rows = np.isfinite(bound)
        alpha = simplex_lp(Ca, -C[rows], -bound[rows])
        if alpha is None:
            return preference / preference.sum(), {"mode": "balance LP infeasible: α = r/Σr", "non_uniformity": mu}
        return alpha, {"mode": "balance", "non_uniformity": mu}
    objective = C.sum(axis=0)
    restricted = np.vstack([-C, -Ca[None]])
    alpha = simplex_lp(objective, restricted, np.append(np.zeros(T), -min(float(Ca.max()), 0.0)))
    if alpha is None:
        alpha = simplex_lp(objective, -C, np.zeros(T))
        if alpha is None:  # Cα ≥ 0 holds at the min-norm point, so this cannot happen in exact arithmetic
            raise RuntimeError(f"epo: no simplex weights give a non-increasing step for every task (C = {C.tolist()})")
        return alpha, {"mode": "descent (relaxed LP: the restricted one is infeasible)", "non_uniformity": mu}
    return alpha, {"mode": "descent", "non_uniformity": mu}


def check_preference(method: str, preference, task_names: list[str], positive: bool) -> np.ndarray:
    """One finite preference per task (``None``: all 1), every one > 0 when ``positive`` else ≥ 0."""
    values = check_task_weights(preference, task_names, name=f"{method}: preference")
    if positive and min(values) <= 0:
        raise ValueError(f"{method}: every preference must be > 0 (the ray r_t L_t = const), got {values}")
    return np.array(values, dtype=np.float64)


class EPO(Weighting):
    """Balance towards the preference ray, then descend along it (two small linear programs per step)."""

    name = "epo"
    description = "EPO: reach the Pareto-optimal point on the preference ray r_t·L_t = const (Mahapatra & Rajan 2020)."
    requires = "gramian"
    uses_losses = True
    options = {
        "preference": TaskWeights(),  # r: one number > 0 per task (None: all 1); checked against the tasks at reset
        "eps": Number(low=0),  # the non-uniformity below which the step descends along the ray
    }

    def __init__(self, preference: list[float] | None = None, eps: float = 1e-4) -> None:
        super().__init__(preference=preference, eps=eps)
        self.preference = None if preference is None else list(preference)
        self.eps = eps
        self.r: np.ndarray | None = None

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.r = check_preference(self.name, self.preference, self.task_names, positive=True)

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        check_gramian(self.name, grads)
        values = checked_losses(self.name, losses, self.task_names).numpy()
        zero = [t for t, v in zip(self.task_names, values) if v == 0]
        if zero:
            raise ValueError(f"{self.name} takes the logarithm of the losses: they must be > 0, got 0 for {zero}")
        alpha, info = epo_weights(values, grads, self.r, self.eps)
        weights = self.n_tasks * alpha
        info = {**info, "non_uniformity": float(info["non_uniformity"])}
        return Combination(torch.from_numpy(weights).to(grads), info=info)

    def config(self) -> dict:
        return {"name": self.name, "preference": self.preference, "eps": self.eps}

