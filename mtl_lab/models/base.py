"""The Model protocol: what every multi-task architecture in mtl_lab provides.

A model maps an input batch to one output per task::

    forward(x) -> {task_name: output}

Architectures with a shared representation also split this in two, so the gradient engine can
differentiate with respect to the representation (MGDA-UB) or the shared parameters::

    rep = encode(x)            # the shared representation
    outputs = decode(rep)      # {task_name: output}

Parameters are grouped explicitly: ``shared_parameters()`` (the trunk every task uses) and
``task_parameters(name)`` (what only that task uses). An architecture without a shared trunk
(soft sharing) sets ``has_shared_trunk = False``; the gradient diagnostics then report
"not applicable" instead of failing. ``regularizer()`` returns an extra scalar term that is part of
the training objective (for example soft sharing's coupling penalty), or ``None``.

Two optional hooks let an architecture show and update its own state: ``inspect()`` returns small
JSON-friendly facts (gate weights of the last forward pass, a task-relation matrix …) that the Trainer
records at the diagnostics cadence in ``History.model_records``; ``after_step(step)`` is called after
every optimiser step (the task-relation model updates its relation matrix there).
"""

from __future__ import annotations

import torch
from torch import nn

from mtl_lab.tasks import Task


class MultiTaskModel(nn.Module):
    """Base class of every architecture; subclasses build their layers in ``__init__``."""

    architecture: str = "base"
    has_shared_trunk: bool = True

    def __init__(self, tasks: list[Task]) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("a multi-task model needs at least one task")
        self.tasks = list(tasks)
        self.task_names = [t.name for t in tasks]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{self.architecture} has no shared representation")

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{self.architecture} has no shared representation")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(x))

    def shared_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        raise NotImplementedError

    def regularizer(self) -> torch.Tensor | None:
        """An extra term added to the training objective (``None`` when there is none)."""
        return None

    def inspect(self) -> dict:
        """Small JSON-friendly facts about the model's state, recorded over time (``{}``: nothing to show)."""
        return {}

    def after_step(self, step: int) -> None:
        """Called by the Trainer after optimiser step ``step`` (from 0); nothing happens by default."""

    def check_task(self, name: str) -> None:
        if name not in self.task_names:
            raise KeyError(f"no task {name!r}; this model has {self.task_names}")

    def parameter_count(self) -> dict[str, int]:
        """Number of scalars: shared, per task, and in total."""
        counts = {"shared": sum(p.numel() for p in self.shared_parameters())}
        for name in self.task_names:
            counts[name] = sum(p.numel() for p in self.task_parameters(name))
        counts["total"] = sum(p.numel() for p in self.parameters())
        return counts

    def describe(self) -> dict:
        """Architecture name and parameter counts, JSON-friendly."""
        return {"architecture": self.architecture, "parameters": self.parameter_count()}
