"""PCD: priority-constrained descent — follow a primary task, guarantee each other task some progress.

Paper: Dara Varam and Mohamed I. AlHajri, "Not All Objectives Are Born Equal: Priority-Constrained
Descent for Hierarchical Multi-Objective Optimization", TMLR 2026 (arXiv:2606.29521; the authors' code
is github.com/DaraVaram/priority-constrained-descent).

Update rule. Task ``p`` (option ``primary``, the first task by default) is the one that matters; the
others are secondary (auxiliary tasks are the natural case). With normalised gradients
``g̃_t = s_t g_t``, the step is the point closest to the primary gradient that still gives every
secondary task ``j`` a fraction ``τ`` of the progress its own normalised gradient would give::

    d̃ = argmin_d ½‖d − g̃_p‖²   subject to   g̃_j·d ≥ τ ‖g̃_j‖²   for every j ≠ p
    d  = (‖g_p‖ / ‖d̃‖) d̃                      (rescaled to the length of the primary gradient)

``s_t = 1/√(v̂_t + ε)``, where ``v̂_t`` is the bias-corrected exponential moving average (decay β) of
``‖g_t‖²`` over the steps, so τ is a scale-free fraction. Where no constraint binds, ``d`` is the
primary gradient itself.

How it is solved. The KKT conditions give ``d̃ = g̃_p + Σ_j μ_j g̃_j`` with multipliers ``μ ≥ 0`` that
minimise the dual ``½ μᵀK̃_ss μ + μᵀ(K̃_sp − τ diag K̃_ss)`` (``K̃`` the Gramian of the ``g̃``, ``s``
the secondary rows, ``p`` the primary): a non-negative QP in task space, solved exactly by the
Lawson–Hanson active set (:func:`~mtl_lab.weighting.solvers.nonneg_qp`, on ``K̃`` divided by its
mean diagonal — μ does not depend on that scale — plus a ridge ``1e-12·I`` so that μ is unique when
the secondary gradients are dependent, e.g. more tasks than parameters; the step ``d̃`` is unique
anyway). Only the Gramian is needed (``requires="gramian"``). Constraints count as infeasible when the
solved μ still misses one by more than 1e-6 (in units of the mean squared normalised gradient norm).
Special cases, as in TorchJD: a zero primary gradient gives ``d = 0``; constraints that cannot all
hold at once (T ≥ 3, e.g. two opposite secondary gradients) are dropped and ``d = g_p``
(``info["feasible"] = False``); a ``d̃`` that is zero to rounding gives ``d = 0``.

Defaults and their origin (the paper's and TorchJD's): ``tau = 0.02``, ``beta = 0.999``, ``eps = 1e-8``.
TorchJD's ``PCD`` takes the first row as the primary task (``primary = 0`` here) and solves the same QP
with a dual active-set method of Goldfarb and Idnani; the tests compare the two over several steps.
State: the moving average and its step count (:meth:`reset` forgets them).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mtl_lab.validate import Integer, Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import as_float64, check_gramian, nonneg_qp

RIDGE = 1e-12  # added to the dual's Hessian (normalised units): moves d̃ by about 1e-12·μ
INFEASIBLE = 1e-6  # a constraint missed by more than this (normalised units) marks the set infeasible


class PCD(Weighting):
    """Closest step to the primary gradient that gives every other task a fraction τ of its own progress."""

    name = "pcd"
    description = "PCD: follow the primary task, each other task keeps a fraction τ of its own progress."
    requires = "gramian"
    options = {
        "primary": Integer(low=0),  # index of the primary task
        "tau": Number(low=0, high=1),
        "beta": Number(low=0, high=1, high_open=True),
        "eps": Number(low=0),
    }

    def __init__(self, primary: int = 0, tau: float = 0.02, beta: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__(primary=primary, tau=tau, beta=beta, eps=eps)
        self.primary = primary
        self.tau = float(tau)
        self.beta = float(beta)
        self.eps = float(eps)
        self.squared_norm_average: np.ndarray | None = None
        self.steps = 0

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        if self.primary >= self.n_tasks:
            raise ValueError(
                f"{self.name}: primary={self.primary} but there are {self.n_tasks} tasks {self.task_names}"
            )
        self.squared_norm_average = None
        self.steps = 0

    def scales(self, squared_norms: np.ndarray) -> np.ndarray:
        """Update the moving average of ``‖g_t‖²`` and return ``s_t = 1/√(v̂_t + ε)`` (0 where v̂ + ε = 0)."""
        if self.squared_norm_average is None:
            self.squared_norm_average = np.zeros_like(squared_norms)
        self.steps += 1
        self.squared_norm_average = self.beta * self.squared_norm_average + (1 - self.beta) * squared_norms
        debiased = self.squared_norm_average / (1 - self.beta**self.steps)
        denominators = np.sqrt(debiased + self.eps)
        return np.where(denominators > 0, 1.0 / np.where(denominators > 0, denominators, 1.0), 0.0)

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        check_gramian(self.name, grads)
        K = as_float64(grads)
        K = (K + K.T) / 2
        T, p = K.shape[0], self.primary
        order = [p] + [t for t in range(T) if t != p]  # the primary task first
        K = K[np.ix_(order, order)]
        squared_norms = np.clip(np.diag(K), 0.0, None)
        s = self.scales(squared_norms)
        weights = np.zeros(T)
        info = {"feasible": True}
        if squared_norms[0] > 0:
            Kn = K * np.outer(s, s)
            mu, info["feasible"] = self.multipliers(Kn)
            coefficients = np.concatenate([[1.0], mu])  # d̃ = Σ coefficients_t g̃_t
            direction_sq = float(coefficients @ Kn @ coefficients)
            magnitude = float(np.abs(coefficients) @ np.sqrt(np.diag(Kn))) ** 2
            precision = 10.0 * torch.finfo(grads.dtype).eps
            if direction_sq > precision * magnitude:
                weights = coefficients * s * math.sqrt(squared_norms[0] / direction_sq)
        result = np.zeros(T)
        result[order] = weights
        return Combination(torch.from_numpy(result).to(grads), info=info)

    def multipliers(self, Kn: np.ndarray) -> tuple[np.ndarray, bool]:
        """The constraints' multipliers ``μ ≥ 0`` (dual QP), and whether the constraints can all hold."""
        T = Kn.shape[0]
        if T == 1:
            return np.zeros(0), True
        scale = float(np.trace(Kn)) / T
        secondary = Kn[1:, 1:] / scale
        q = Kn[1:, 0] / scale - self.tau * np.diag(secondary)
        ridge = RIDGE * np.eye(T - 1)  # a unique μ when the secondary gradients are dependent
        mu, report = nonneg_qp(secondary + ridge, q, max_iter=10 * T + 10)
        slack = secondary @ mu + q  # g̃_j·d̃ − τ‖g̃_j‖², in units of the mean squared norm
        if not report.converged or not np.all(np.isfinite(mu)) or slack.min() < -INFEASIBLE:
            return np.zeros(T - 1), False
        return mu, True

    def config(self) -> dict:
        return {"name": self.name, "primary": self.primary, "tau": self.tau, "beta": self.beta, "eps": self.eps}

    def state_dict(self) -> dict:
        average = None if self.squared_norm_average is None else self.squared_norm_average.tolist()
        return {"squared_norm_average": average, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        average = state.get("squared_norm_average")
        self.squared_norm_average = None if average is None else np.array(average, dtype=np.float64)
        self.steps = int(state.get("steps", 0))
