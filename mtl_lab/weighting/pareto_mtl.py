"""Pareto MTL: descend within the sector of loss space around one preference vector.

Paper: Xi Lin, Hui-Ling Zhen, Zhenhua Li, Qingfu Zhang and Sam Kwong, "Pareto Multi-Task Learning",
NeurIPS 2019 (their public code: ParetoMTL).

A set of unit reference vectors ``u_1 … u_K`` splits the loss space into sectors; the sub-problem of
``u_k`` (the ``preference``) is to reach a Pareto-optimal point whose loss vector ``L`` is closer in
angle to ``u_k`` than to any other reference vector::

    minimise L(θ)  subject to  G_j(θ) = (u_j − u_k)ᵀ L(θ) ≤ 0   for every j ≠ k

Note the direction: the loss vector points *towards* ``u_k`` (a larger ``u_t`` allows a larger
``L_t``) — the opposite convention to EPO's ``r``. The method lands *in the sector*, not on the ray.

Update rule, each step, with ``W`` the rows ``u_j − u_k`` whose constraint is active,
``(u_j − u_k)ᵀ L/‖L‖ > 0``:

* initial phase (until a step finds no active constraint, for at most ``init_epochs`` epochs): descend
  the active constraints only — ``λ`` = the min-norm point of the convex hull of the rows of ``W G``
  (Gramian ``W K Wᵀ``), weights ``w = Wᵀλ`` (negative entries raise a loss: that is the point);
* main phase: ``λ`` = the min-norm point of the convex hull of the task gradients and the active
  constraint gradients, the rows of ``[I; W] G`` (Gramian ``[I; W] K [I; W]ᵀ``); weights
  ``w = [I; W]ᵀλ`` rescaled to ``Σ_t |w_t| = T``. With no active constraint this is MGDA's step.

The min-norm problems are solved exactly (:func:`~mtl_lab.weighting.solvers.min_norm_weights`); the
original code uses the Frank–Wolfe solver of the MGDA code.

Defaults and their origin: the reference vectors are evenly spread with ``divisions = 4`` — for two
tasks the paper's five unit vectors ``(cos φ, sin φ)``, ``φ = 0, π/8, …, π/2`` (``φ = kπ/(2·divisions)``);
for ``T > 2`` the simplex lattice with step ``1/divisions`` (Das & Dennis 1998), normalised to unit length.
``preference = None`` is the direction ``(1, …, 1)``
(the middle reference vector for two tasks); a preference equal to a reference vector is left out of
the constraints, as in the paper; any other preference adds its own sector. ``init_epochs = 2``: the
authors' code searches for a feasible start for at most two epochs. Losses must be ≥ 0, not all 0.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from mtl_lab.validate import Integer, TaskWeights
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses
from mtl_lab.weighting.epo import check_preference
from mtl_lab.weighting.solvers import as_float64, check_gramian, min_norm_weights, report_info

SAME = 1e-9  # reference vectors this close to the preference are the preference itself


def reference_vectors(T: int, divisions: int = 4) -> np.ndarray:
    """Evenly spread unit vectors ``[K, T]``: angles ``kπ/(2·divisions)`` for two tasks (the paper's
    ``circle_points``), the normalised simplex lattice of step ``1/divisions`` for more."""
    if T == 2:
        angles = np.linspace(0.0, math.pi / 2, divisions + 1)
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    rows = [c for c in itertools.product(range(divisions + 1), repeat=T) if sum(c) == divisions]
    R = np.array(rows, dtype=np.float64)
    return R / np.linalg.norm(R, axis=1, keepdims=True)


class ParetoMTL(Weighting):
    """MGDA with the sector constraints of one preference vector (after a feasibility search)."""

    name = "pareto_mtl"
    description = "Pareto MTL: a Pareto-optimal point in the loss-space sector of a preference (Lin et al. 2019)."
    requires = "gramian"
    uses_losses = True
    options = {
        "preference": TaskWeights(),  # u_k: one number ≥ 0 per task, not all 0 (None: all 1)
        "divisions": Integer(low=1, high=64),  # how finely the reference vectors split the loss space (the paper: 4)
        "init_epochs": Integer(low=0),  # at most this many epochs search for a point inside the sector
    }

    def __init__(self, preference: list[float] | None = None, divisions: int = 4, init_epochs: int = 2) -> None:
        super().__init__(preference=preference, divisions=divisions, init_epochs=init_epochs)
        self.preference = None if preference is None else list(preference)
        self.divisions = divisions
        self.init_epochs = init_epochs
        self.W = np.zeros((0, 0))
        self.feasible = False

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        u = check_preference(self.name, self.preference, self.task_names, positive=False)
        u = u / np.linalg.norm(u)
        R = reference_vectors(self.n_tasks, self.divisions)
        others = R[np.linalg.norm(R - u, axis=1) > SAME]
        self.W = others - u  # one constraint (u_j − u_k)ᵀ L ≤ 0 per other reference vector
        self.feasible = self.init_epochs == 0

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        check_gramian(self.name, grads)
        values = checked_losses(self.name, losses, self.task_names).numpy()
        norm = np.linalg.norm(values)
        if norm == 0:
            raise ValueError(f"{self.name} places the loss vector in a sector: the losses must not all be 0")
        active = self.W[self.W @ (values / norm) > 0]
        K = as_float64(grads)
        if not self.feasible and not (ctx.epoch < self.init_epochs and len(active)):
            self.feasible = True
        if not self.feasible:
            lam, report = min_norm_weights(active @ K @ active.T)
            weights = lam @ active
            phase = "initial"
        else:
            M = np.vstack([np.eye(self.n_tasks), active])
            lam, report = min_norm_weights(M @ K @ M.T)
            weights = lam @ M
            weights = weights * self.n_tasks / np.abs(weights).sum()
            phase = "main"
        info = {**report_info(self.name, report), "phase": phase, "active_constraints": int(len(active))}
        return Combination(torch.from_numpy(weights).to(grads), info=info)

    def config(self) -> dict:
        return {"name": self.name, "preference": self.preference, "divisions": self.divisions,
                "init_epochs": self.init_epochs}

    def state_dict(self) -> dict:
        return {"feasible": self.feasible}

    def load_state_dict(self, state: dict) -> None:
        self.feasible = bool(state.get("feasible", self.init_epochs == 0))
