"""COSMOS with a sampled preference: the loss of Pareto-set learning (one model for every trade-off).

Paper: Michael Ruchte and Josif Grabocka, "Scalable Pareto Front Approximation for Deep Multi-Objective
Learning" (COSMOS), ICDM 2021 (arXiv:2103.13392), the objective of their Equation 3 with a sampled ``r``.

Update rule. Each step a preference ``r ~ Dirichlet(α)`` is drawn (:class:`~mtl_lab.models.preference.
PreferenceSampler`), fed to the model ``f_θ(x, r)`` (:mod:`mtl_lab.models.preference_conditioned`) and used
in the loss::

    minimise  s(L) = Σ_t r_t L_t − λ cos(r, L)

whose effective weights ``w = ∂s/∂L`` are those of :func:`mtl_lab.weighting.cosmos.cosmos_weights` at this
step's ``r`` — for a fixed ``r`` this method *is* :class:`~mtl_lab.weighting.cosmos.COSMOS` (tested to 1e-12).
The difference is only where ``r`` comes from: the sampler the model also reads, so the network learns
which output belongs to which preference.

The cosine term and the sign of a preference. ``−λ cos(r, L)`` is smallest when the loss vector points
along ``r`` (``L ∝ r``): COSMOS reads ``r`` as a ray in loss space, so a *larger* ``r_t`` asks for a *larger*
share of loss on task ``t`` — the opposite of what ``r_t L_t`` in the sum asks. Measured in notebook 13
(two tasks that must trade, a one-unit bottleneck): with ``λ = 0`` task 0's error falls by 1.3 from one end
of the preference grid to the other; with ``λ = 0.5`` the two terms nearly cancel (0.1: the model "barely
moves"); with ``λ = 2`` the front runs backwards (−0.6). ``tests/test_pareto_set.py`` pins both directions.

Defaults and their origin: ``penalty = λ = 0.0`` — this lab's choice, from the measurement above, so that a
preference means importance as in a weighted sum (the authors' published settings use λ = 2 for
Multi-MNIST and Multi-Fashion, up to 8 elsewhere, with their ray reading of ``r``; pass ``penalty`` to use
it). The method is built with the model's sampler, so it is not in the registry by name:
:func:`mtl_lab.studies.pareto_set.build_pareto_set_trainer` builds the sampler, the model and this loss
together.
"""

from __future__ import annotations

import torch

from mtl_lab.models.preference import PreferenceSampler
from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses
from mtl_lab.weighting.cosmos import cosmos_weights

DEFAULT_PENALTY = 0.0


class SampledCOSMOS(Weighting):
    """``Σ r_t L_t − λ cos(r, L)`` with ``r`` the shared sampler's current preference."""

    name = "cosmos_sampled"
    description = "COSMOS Pareto-set learning: a fresh Dirichlet preference each step, fed to the model and the loss."
    uses_losses = True
    options = {"penalty": Number(low=0)}  # λ on the cosine; 0 is the linear scalarisation rᵀL

    def __init__(self, sampler: PreferenceSampler, penalty: float = DEFAULT_PENALTY) -> None:
        super().__init__(penalty=penalty)
        if not isinstance(sampler, PreferenceSampler):
            raise ValueError(f"sampler must be a PreferenceSampler, got {sampler!r}")
        self.sampler = sampler
        self.penalty = float(penalty)

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        if self.sampler.n_tasks != len(task_names):
            raise ValueError(f"the sampler draws preferences for {self.sampler.n_tasks} tasks, "
                             f"the data has {len(task_names)} ({task_names})")

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        values = checked_losses(self.name, losses, self.task_names)
        if not bool((values > 0).any()):
            raise ValueError(f"{self.name} needs the cosine of the losses with the preference: not every loss may be 0")
        r = self.sampler.current
        weights = cosmos_weights(values, r, self.penalty)
        return Combination(weights.to(device=losses.device, dtype=losses.dtype),
                           info={"preference": [round(v, 6) for v in r.tolist()]})

    def config(self) -> dict:
        return {"name": self.name, "penalty": self.penalty, "alpha": self.sampler.alpha, "seed": self.sampler.seed}
