"""Hard parameter sharing: one shared trunk, one small head per task.

Caruana, "Multitask Learning", Machine Learning 28, 1997. The representation ``r = f_θ(x)`` is
computed once by the shared trunk; each task ``t`` reads it with its own head ``y_t = h_t(r)``.
The training objective is ``Σ_t w_t L_t(h_t(f_θ(x)), y_t)``, so the trunk's gradient is the
weighted sum of every task's gradient — the place where tasks help or fight each other.
"""

from __future__ import annotations

import torch
from torch import nn

from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.trunks import build_trunk
from mtl_lab.tasks import Task


def make_head(in_dim: int, out_dim: int, hidden: tuple[int, ...] = ()) -> nn.Sequential:
    """A task head: ``[Linear → ReLU] × len(hidden) → Linear(out_dim)``."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class HardSharing(MultiTaskModel):
    """A shared trunk (``"mlp"`` or ``"cnn"``) and one head per task, built from the task specs."""

    architecture = "hard"

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        trunk: str = "mlp",
        head_hidden: tuple[int, ...] = (),
        **trunk_options,
    ) -> None:
        super().__init__(tasks)
        self.trunk = build_trunk(trunk, input_shape, **trunk_options)
        width = self.trunk.out_dim
        self.heads = nn.ModuleDict({t.name: make_head(width, t.out_dim, tuple(head_hidden)) for t in tasks})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: head(rep) for name, head in self.heads.items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        return list(self.heads[name].parameters())
