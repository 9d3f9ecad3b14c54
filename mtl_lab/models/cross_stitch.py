"""Cross-stitch networks: one column per task, mixed by learned weights after every layer.

Misra, Shrivastava, Gupta and Hebert, "Cross-stitch Networks for Multi-task Learning", CVPR 2016.
Each task ``t`` has its own column of layers (the same architecture as the hard-sharing trunk). After
layer ``l`` a *cross-stitch unit* replaces each column's activation by a learned linear combination
of all columns' activations::

    x̃_t^l = Σ_s α^l_{ts} · x_s^l          (α^l is a T×T matrix, learned with the network)

and column ``t`` continues from ``x̃_t^l``; task ``t``'s head reads the last ``x̃_t``. ``α = I`` gives
``T`` separate networks; ``α`` with equal entries gives every column the same input, i.e. sharing.
Learning ``α`` lets the network find how much to share at every depth.

Initialisation (the paper, section 4): close to identity, ``α_ts = 0.9`` for ``s = t`` and the
remaining ``0.1`` spread over the other columns, so every row sums to 1. (The paper also multiplies
the learning rate of ``α`` by about 10³; here ``α`` trains at the model's learning rate.)

A "layer" is a block of the trunk that starts at a ``Linear`` or ``Conv2d`` layer and runs to the next
one (its ReLU, pooling and dropout included): an MLP trunk ``hidden=(256, 256)`` has 2 stitched
blocks, the default CNN trunk 3 (two conv blocks and its final linear layer).

Every column and every ``α`` is shared (a column's activations reach every task through the units);
the heads are the task parameters. :meth:`CrossStitch.encode` returns the ``T`` stitched column
outputs side by side, ``[B, T·D]``; head ``t`` reads block ``t``. ``inspect()`` returns the current
``α`` matrices, one per stitched layer.
"""

from __future__ import annotations

import torch
from torch import nn

from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.hard import make_head
from mtl_lab.models.trunks import MLPTrunk, build_trunk
from mtl_lab.tasks import Task


def trunk_blocks(trunk: nn.Module) -> nn.ModuleList:
    """Cut a trunk's layer sequence into blocks that each begin at a ``Linear`` or ``Conv2d`` layer.

    Layers before the first weight layer (the MLP's ``Flatten``) join the first block.
    """
    sequence = trunk.net if isinstance(trunk, MLPTrunk) else trunk.features
    blocks: list[list[nn.Module]] = [[]]
    for layer in sequence:
        starts_block = isinstance(layer, nn.Linear | nn.Conv2d)
        if starts_block and any(isinstance(m, nn.Linear | nn.Conv2d) for m in blocks[-1]):
            blocks.append([])
        blocks[-1].append(layer)
    return nn.ModuleList([nn.Sequential(*block) for block in blocks])


def task_columns(
    tasks: list[Task], trunk: str, input_shape: tuple[int, ...], **trunk_options
) -> tuple[nn.ModuleDict, int]:
    """One copy of the trunk per task, cut into :func:`trunk_blocks`, and the trunk's output width ``D``."""
    trunks = [build_trunk(trunk, input_shape, **trunk_options) for _ in tasks]
    return nn.ModuleDict({t.name: trunk_blocks(c) for t, c in zip(tasks, trunks)}), trunks[0].out_dim


def column_heads(heads: nn.ModuleDict, rep: torch.Tensor, width: int, task_names: list[str]) -> dict[str, torch.Tensor]:
    """Task ``t``'s head on column ``t``'s block ``rep[:, t·D:(t+1)·D]`` of the side-by-side outputs ``[B, T·D]``."""
    blocks = rep.split(width, dim=1)
    return {name: heads[name](block) for name, block in zip(task_names, blocks)}


class CrossStitchUnit(nn.Module):
    """``x̃_t = Σ_s α_ts x_s`` for a list of ``T`` equally shaped activations."""

    def __init__(self, n_tasks: int, alpha_self: float = 0.9) -> None:
        super().__init__()
        if n_tasks == 1:
            alpha = torch.ones(1, 1)
        else:
            off = (1.0 - alpha_self) / (n_tasks - 1)
            alpha = torch.full((n_tasks, n_tasks), off) + (alpha_self - off) * torch.eye(n_tasks)
        self.alpha = nn.Parameter(alpha)

    def forward(self, activations: list[torch.Tensor]) -> list[torch.Tensor]:
        stacked = torch.stack(activations)  # [T, B, ...]
        mixed = torch.tensordot(self.alpha, stacked, dims=([1], [0]))
        return list(mixed.unbind(0))


class CrossStitch(MultiTaskModel):
    """``T`` columns with the hard-sharing trunk's layers, a cross-stitch unit after every block."""

    architecture = "cross_stitch"

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        trunk: str = "mlp",
        head_hidden: tuple[int, ...] = (),
        alpha_self: float = 0.9,
        **trunk_options,
    ) -> None:
        super().__init__(tasks)
        if not isinstance(alpha_self, int | float) or not 0.0 <= alpha_self <= 1.0:
            raise ValueError(f"alpha_self (the initial α_tt) must be in [0, 1], got {alpha_self!r}")
        self.columns, self.width = task_columns(tasks, trunk, input_shape, **trunk_options)
        n_blocks = len(self.columns[self.task_names[0]])
        self.stitches = nn.ModuleList([CrossStitchUnit(len(tasks), float(alpha_self)) for _ in range(n_blocks)])
        self.heads = nn.ModuleDict({t.name: make_head(self.width, t.out_dim, tuple(head_hidden)) for t in tasks})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The stitched outputs of the ``T`` columns side by side, ``[B, T·D]``."""
        activations = [x] * len(self.task_names)
        for depth, unit in enumerate(self.stitches):
            activations = [self.columns[n][depth](a) for n, a in zip(self.task_names, activations)]
            activations = unit(activations)
        return torch.cat(activations, dim=1)

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        return column_heads(self.heads, rep, self.width, self.task_names)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.columns.parameters()) + list(self.stitches.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        return list(self.heads[name].parameters())

    @torch.no_grad()
    def inspect(self) -> dict:
        """``{"alpha": [α^l as a T×T list, for every stitched layer l]}``."""
        return {"alpha": [unit.alpha.tolist() for unit in self.stitches]}
