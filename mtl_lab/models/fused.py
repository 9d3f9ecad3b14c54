"""Task fusion: every task's output comes from one output layer, split back per task afterwards.

The multi-task network of Caruana ("Multitask Learning", Machine Learning 28, 1997) is one network
with one output layer holding the outputs of all tasks. Here::

    z = u(f(x))                          # the trunk f and the fusion layers u: shared by every task
    ŷ = W·z + b                          # ONE output layer with Σ_t D_t units
    y_t = ŷ[o_t : o_t + D_t]             # split back: task t's loss reads its own slice

Why this is (and is not) different from separate heads: the rows of ``W`` that produce task ``t``'s
slice, ``W_t = W[o_t : o_t + D_t]``, touch nothing but task ``t``'s outputs, so a fused *linear*
output layer is exactly ``T`` separate linear heads stacked: ``W·z = [W_1·z ; … ; W_T·z]``. That is
why the fused layer is stored as one block ``W_t, b_t`` per task (:attr:`Fused.blocks`, the task
parameters) and assembled with :meth:`Fused.output_layer` at every forward pass — the computation is
one matrix product, and each block is owned by its task. What fusion changes is *below* the output:
with separate heads each task may have its own hidden layers (``HardSharing(head_hidden=…)``); in the
fused design the last hidden layers ``u`` (``fuse_hidden``) are shared, the whole network is one
multi-output predictor. ``fuse_hidden=()`` makes the fused model hard sharing with linear heads,
weight for weight.

Defaults: the hard-sharing trunk and one shared fusion layer of 64 units (our choice, to contrast
with ``HardSharing(head_hidden=(64,))``, which gives every task its own 64-unit layer instead).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.trunks import MLPTrunk, build_trunk
from mtl_lab.tasks import Task


class Fused(MultiTaskModel):
    """Trunk, shared fusion layers, and one output layer of ``Σ_t D_t`` units split per task."""

    architecture = "fused"

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        trunk: str = "mlp",
        fuse_hidden: tuple[int, ...] = (64,),
        **trunk_options,
    ) -> None:
        super().__init__(tasks)
        self.trunk = build_trunk(trunk, input_shape, **trunk_options)
        width = self.trunk.out_dim
        fuse_hidden = tuple(fuse_hidden)
        self.fusion = MLPTrunk((width,), hidden=fuse_hidden) if fuse_hidden else nn.Identity()
        width = fuse_hidden[-1] if fuse_hidden else width
        self.blocks = nn.ModuleDict({t.name: nn.Linear(width, t.out_dim) for t in tasks})
        self.out_dims = [t.out_dim for t in tasks]

    def output_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fused output layer ``(W [Σ D_t, width], b [Σ D_t])``: the task blocks stacked in task order."""
        weight = torch.cat([self.blocks[n].weight for n in self.task_names], dim=0)
        bias = torch.cat([self.blocks[n].bias for n in self.task_names], dim=0)
        return weight, bias

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``z = u(f(x))``: the input of the fused output layer."""
        return self.fusion(self.trunk(x))

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        weight, bias = self.output_layer()
        fused = F.linear(rep, weight, bias)  # [B, Σ D_t]
        return dict(zip(self.task_names, fused.split(self.out_dims, dim=1)))

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters()) + list(self.fusion.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        return list(self.blocks[name].parameters())
