"""The preference sampler of Pareto-set learning: one preference ``r`` on the simplex per training step.

A preference-conditioned model (:mod:`mtl_lab.models.preference_conditioned`) reads ``r`` as an input,
and its loss (:mod:`mtl_lab.weighting.cosmos_sampled`) weighs the task losses with the same ``r``. Both
hold the *same* :class:`PreferenceSampler` object, passed to each explicitly when they are built — the
model draws the next preference after every optimiser step (its ``after_step`` hook), so the forward
pass and the loss of a step always see one and the same ``r``.

Sampling. COSMOS (Ruchte & Grabocka, ICDM 2021) draws ``r ~ Dirichlet(α, …, α)`` per batch. ``α = 1``
is uniform on the simplex; ``α < 1`` puts more mass near the corners (one task dominates), ``α > 1``
near the centre (balanced preferences), so a large ``α`` leaves the ends of the front untrained. The
authors' published settings use ``α = 1.2`` for their image sets; :data:`DEFAULT_ALPHA` is 1 (uniform on
the simplex: every trade-off trained as often as every other). Notebook 13 measures what a large ``α``
does: at ``α = 10`` the model reaches a fifth as far along its front as at ``α = 1``.

The draws come from the sampler's own NumPy generator (PCG64) seeded with ``seed``; :meth:`state_dict`
holds its state and the current preference, so a run that is saved and loaded draws the same sequence
(the model's ``state_dict`` carries it, see ``PreferenceConditioned.get_extra_state``).
"""

from __future__ import annotations

import numpy as np
import torch

from mtl_lab import validate
from mtl_lab.models.base import MultiTaskModel
from mtl_lab.tasks import Task

DEFAULT_ALPHA = 1.0  # Dirichlet concentration: uniform on the simplex


class PreferenceSampler:
    """Draws preferences ``r ~ Dirichlet(α·1_T)`` from a seeded generator; ``current`` is the step's ``r``.

    Args:
        n_tasks: the number of tasks ``T`` (at least 2).
        alpha: the Dirichlet concentration ``α > 0``.
        seed: seeds the sampler's own generator (``0 ≤ seed ≤ 2**63 − 2``).
    """

    def __init__(self, n_tasks: int, alpha: float = DEFAULT_ALPHA, seed: int = 0) -> None:
        self.n_tasks = validate.check_int("n_tasks", n_tasks, 2)
        self.alpha = float(validate.check_number("alpha", alpha, low=0, low_open=True))
        self.seed = validate.check_seed(seed)
        self.generator = np.random.Generator(np.random.PCG64(self.seed))
        self.current = torch.full((self.n_tasks,), 1.0 / self.n_tasks, dtype=torch.float64)
        self.draws = 0
        self.draw()

    def draw(self) -> torch.Tensor:
        """Draw the next preference (float64 ``[T]``, entries ≥ 0 summing to 1) and make it ``current``."""
        values = self.generator.dirichlet([self.alpha] * self.n_tasks)
        self.current = torch.tensor(values, dtype=torch.float64)
        self.draws += 1
        return self.current

    def state_dict(self) -> dict:
        """The generator's state, the current preference and the number of draws (JSON-friendly)."""
        return {"n_tasks": self.n_tasks, "alpha": self.alpha, "seed": self.seed, "draws": self.draws,
                "generator": self.generator.bit_generator.state, "current": self.current.tolist()}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where :meth:`state_dict` was taken (the same ``T`` and ``α`` are required)."""
        if state["n_tasks"] != self.n_tasks or state["alpha"] != self.alpha:
            raise ValueError(f"a sampler state for {state['n_tasks']} tasks with alpha={state['alpha']!r} cannot be "
                             f"loaded into a sampler for {self.n_tasks} tasks with alpha={self.alpha!r}")
        self.generator.bit_generator.state = state["generator"]
        self.current = torch.tensor(state["current"], dtype=torch.float64)
        self.draws = int(state["draws"])

    def __repr__(self) -> str:
        return f"PreferenceSampler(n_tasks={self.n_tasks}, alpha={self.alpha:g}, seed={self.seed})"


def check_preference(preference, n_tasks: int, name: str = "preference") -> torch.Tensor:
    """One number ≥ 0 per task, not all 0, returned normalised to sum 1 (float64 ``[T]``).

    A preference says how much each task matters *relative* to the others, so ``[1, 3]`` and
    ``[0.25, 0.75]`` are the same preference; the model is conditioned on the normalised one.
    """
    if isinstance(preference, torch.Tensor):
        preference = preference.tolist()
    if not isinstance(preference, list | tuple):
        raise ValueError(f"{name} must be a list of {n_tasks} numbers ≥ 0, got {preference!r}")
    values = validate.check_task_weights(list(preference), [f"task {t + 1}" for t in range(n_tasks)], name)
    r = torch.tensor(values, dtype=torch.float64)
    return r / r.sum()


class PreferenceModel(MultiTaskModel):
    """A model that trains on the preference of a shared :class:`PreferenceSampler` (the Pareto-set models:
    :mod:`~mtl_lab.models.preference_conditioned`, :mod:`~mtl_lab.models.pareto_hypernetwork`).

    The loss reads the same sampler (:mod:`mtl_lab.weighting.cosmos_sampled`); after every optimiser step
    the model has the sampler draw the next preference, and the sampler's state travels with the model's
    ``state_dict`` (exact resume).
    """

    def __init__(self, tasks: list[Task], sampler: PreferenceSampler, kind: str) -> None:
        super().__init__(tasks)
        if len(tasks) < 2:
            raise ValueError(f"{kind} needs at least 2 tasks, got {len(tasks)}")
        if not isinstance(sampler, PreferenceSampler) or sampler.n_tasks != len(tasks):
            raise ValueError(f"sampler must be a PreferenceSampler for {len(tasks)} tasks, got {sampler!r}")
        self.sampler = sampler
        self.register_buffer("evaluation_preference", torch.full((len(tasks),), 1.0 / len(tasks)))

    def set_preference(self, preference) -> None:
        """The preference used in evaluation mode: one number ≥ 0 per task, not all 0 (normalised to sum 1)."""
        r = check_preference(preference, len(self.task_names))
        self.evaluation_preference.copy_(r.to(self.evaluation_preference))

    def preference(self) -> torch.Tensor:
        """The preference of this forward pass, ``[T]``: the sampler's (training) or the set one (evaluation)."""
        r = self.sampler.current if self.training else self.evaluation_preference
        return r.to(device=self.evaluation_preference.device, dtype=self.evaluation_preference.dtype)

    def after_step(self, step: int) -> None:
        """The next step trains on a fresh preference."""
        self.sampler.draw()

    def inspect(self) -> dict:
        return {"preference": [round(v, 6) for v in self.sampler.current.tolist()]}

    def get_extra_state(self) -> dict:
        """The sampler's state travels with the model's ``state_dict`` (exact resume)."""
        return self.sampler.state_dict()

    def set_extra_state(self, state: dict) -> None:
        self.sampler.load_state_dict(state)
