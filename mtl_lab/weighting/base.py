"""The Weighting protocol shared by every loss-weighting and gradient-manipulation method.

A method sees, at each training step, the per-task losses ``L[T]`` and — when it asks for them —
what its ``requires`` attribute names:

* ``"losses"``    nothing more (``grads`` is ``None``): loss-weighting methods.
* ``"grads"``     the per-task gradients ``G[T, P]`` of the shared parameters.
* ``"rep_grads"`` the per-task gradients ``Z[T, B·D]`` of the shared representation (MGDA-UB style).
* ``"gramian"``   only the Gramian ``K = G Gᵀ`` ``[T, T]``; the method must return weights alone.
* ``"cross_gramian"`` ``A = G_ξ G_ξ'ᵀ`` ``[T, T]`` from two further *independent* mini-batches ``ξ, ξ'``
                  (an unbiased estimate of ``E[G] E[G]ᵀ``): the step needs **three batches** — the
                  Trainer draws ``ξ, ξ'`` (:mod:`mtl_lab.training.extra_batches`) and applies the returned weights
                  to the losses of its own batch. Weights only (SDMGrad, MoDo).
* ``"lookahead"`` ``H[T, 1]``: the derivative of the validation loss after a virtual training step with the
                  method's ``current_weights()`` (:mod:`mtl_lab.training.lookahead`; one validation batch per step).
                  Weights only (Auto-λ).

and returns a :class:`Combination`: the **effective weights** ``w[T]`` and, for methods that build
the update direction of the shared parameters themselves, that **direction** ``d[P]``.

How the trainer applies it:

* the shared parameters move along ``direction`` when the method gives one, else along
  ``Gᵀw = ∇ Σ_t w_t L_t``;
* task head ``t`` gets ``h_t ∇L_t`` with ``h = Combination.head_weights``. When a method leaves it
  ``None``: ``h = w`` for loss-only methods (``requires == "losses"``: exactly the gradient of the
  weighted sum of losses) and ``h = 1`` for every other method — each head follows its own loss, the
  convention of LibMTL's gradient methods and of TorchJD's ``mtl_backward``. A method that weighs the
  losses but needs gradients to find the weights (GradNorm) sets ``head_weights = w`` itself.

Options. Each method declares its hyper-parameters once, as a table at the top of its class — name →
constraint (:mod:`mtl_lab.validate`: ``Number``, ``Integer``, ``Flag``, ``OneOf``, ``Numbers``,
``TaskWeights``) — and passes every one of them to ``Weighting.__init__``, which checks them::

    options = {"c": Number(low=0), "rescale": OneOf((0, 1, 2))}

    def __init__(self, c: float = 0.5, rescale: int = 1) -> None:
        super().__init__(c=c, rescale=rescale)
        self.c, self.rescale = c, rescale

The defaults stay in the signature; the table says what is allowed. ``create``, ``aggregate``, the CLI,
study files and the lab panel all build methods, so they all get the one verdict and message.

Inputs are detached. A method that learns its weights (uncertainty, GradNorm, FAMO …) keeps its own
parameters and optimiser as plain attributes created in :meth:`Weighting.reset`, updates them inside
:meth:`Weighting.combine` (or :meth:`Weighting.after_step` when it needs the losses after the update),
and lists them in :meth:`Weighting.parameters`. Randomness comes only from ``ctx.generator``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from mtl_lab import validate
from mtl_lab.validate import Constraint

REQUIRES = ("losses", "grads", "rep_grads", "gramian", "cross_gramian", "lookahead")


@dataclass(frozen=True)
class StepContext:
    """Read-only facts about the current step that a method may use.

    Attributes:
        step: global step index, from 0.
        epoch: epoch index, from 0.
        epoch_losses: average training loss per task of each finished epoch (oldest first).
        first_losses: the per-task losses of the run's first step (``None`` before it).
        generator: the run's seeded generator; the only source of randomness a method may use.
        lr: the optimiser's current learning rate.
    """

    step: int = 0
    epoch: int = 0
    epoch_losses: tuple[tuple[float, ...], ...] = ()
    first_losses: tuple[float, ...] | None = None
    generator: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(0))
    lr: float = 1e-3


@dataclass(frozen=True)
class Combination:
    """What a method returns for one step.

    Attributes:
        weights: effective weights ``w[T]`` (``d = Gᵀw`` when no direction is given).
        direction: the update direction ``d[P]`` of the shared parameters, or ``None``.
        head_weights: factors ``h[T]`` on each head's own-loss gradient (``None``: the default rule above).
        info: JSON-friendly facts worth recording (e.g. ``{"converged": False, "iterations": 100}``).
    """

    weights: torch.Tensor
    direction: torch.Tensor | None = None
    head_weights: torch.Tensor | None = None
    info: dict = field(default_factory=dict)


class Weighting:
    """Base class: subclasses set the class attributes and implement :meth:`combine`.

    Class attributes:
        name: registry name.
        description: one line for tables and tooltips.
        requires: what ``combine`` needs besides the losses (see ``REQUIRES``).
        uses_losses: whether the values of the losses matter (``aggregate`` then insists on them).
        needs_losses_after_step: whether :meth:`after_step` must be called with the losses after the update.
        gives_direction: whether ``combine`` builds the direction ``d`` itself (else ``d = Gᵀw``).
        options: the hyper-parameters, name → constraint (what is allowed), in the order of ``__init__``.
    """

    name: str = "base"
    description: str = ""
    requires: str = "losses"
    uses_losses: bool = False
    needs_losses_after_step: bool = False
    gives_direction: bool = False
    options: ClassVar[dict[str, Constraint]] = {}

    def __init__(self, **values) -> None:
        """Check ``values`` (every declared option, as given to the subclass) against :attr:`options`."""
        missing = [k for k in self.options if k not in values]
        if missing:
            raise TypeError(f"{type(self).__name__} must pass every declared option to Weighting.__init__, "
                            f"missing {missing}")
        validate.check_declared_options(self.name, self.options, values)
        self.task_names: list[str] = []

    @property
    def requires_grads(self) -> bool:
        """Does this method need per-task gradient information (G, Z or K)?"""
        return self.requires != "losses"

    @property
    def n_tasks(self) -> int:
        return len(self.task_names)

    def reset(self, task_names: list[str]) -> None:
        """Forget all state and prepare for a run over ``task_names``."""
        if not task_names:
            raise ValueError("a weighting needs at least one task")
        self.task_names = list(task_names)

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        """Return the effective weights (and direction) for this step."""
        raise NotImplementedError

    def after_step(self, losses_after: torch.Tensor, ctx: StepContext) -> None:
        """Called with the losses of the same batch after the update (only if ``needs_losses_after_step``)."""

    def parameters(self) -> list[torch.Tensor]:
        """Learned parameters of the method itself (empty for most methods)."""
        return []

    def config(self) -> dict:
        """The method's name and hyper-parameters, JSON-friendly, for the run's History."""
        return {"name": self.name}

    def state_dict(self) -> dict:
        """State to checkpoint (learned parameters, running statistics)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""

    def check_inputs(self, losses: torch.Tensor, grads: torch.Tensor | None) -> None:
        """Shape checks shared by every method; raise ``ValueError`` with the offending sizes."""
        if losses.dim() != 1 or losses.shape[0] != self.n_tasks:
            raise ValueError(
                f"{self.name}: losses has shape {tuple(losses.shape)}, expected [{self.n_tasks}] (one per task)"
            )
        if self.requires != "losses":
            if grads is None:
                raise ValueError(f"{self.name} needs {self.requires}, got None")
            if grads.dim() != 2 or grads.shape[0] != self.n_tasks:
                raise ValueError(
                    f"{self.name}: {self.requires} has shape {tuple(grads.shape)}, "
                    f"expected [{self.n_tasks}, ...] (one row per task)"
                )


def checked_losses(method: str, losses: torch.Tensor, task_names: list[str]) -> torch.Tensor:
    """The losses as float64 on the CPU; ``ValueError`` naming the task if one is negative or not finite."""
    values = losses.detach().to("cpu", torch.float64)
    for task, value in zip(task_names, values.tolist()):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{method} needs finite losses ≥ 0, got {value!r} for task {task!r}")
    return values


def preference_vector(method: str, preference, task_names: list[str]) -> torch.Tensor:
    """One preference ``r_t ≥ 0`` per task, not all 0 (``None``: all 1), as a float64 vector."""
    values = validate.check_task_weights(preference, task_names, name=f"{method}: preference")
    return torch.tensor(values, dtype=torch.float64)


def cpu_copy(optimizer_state: dict) -> dict:
    """A deep copy of an optimiser state with every tensor on the CPU (a checkpoint may be loaded onto a GPU)."""
    state = copy.deepcopy(optimizer_state)
    for values in state["state"].values():
        values.update({key: value.cpu() for key, value in values.items() if torch.is_tensor(value)})
    return state
