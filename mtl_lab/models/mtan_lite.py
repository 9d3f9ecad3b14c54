"""MTAN-lite: task-specific attention masks over the feature maps of one shared CNN.

After Liu, Johns and Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019 (the
Multi-Task Attention Network, MTAN). A shared CNN computes feature maps ``s^1 … s^S`` stage by stage
(``Conv3×3 → ReLU → MaxPool2``). Every task ``k`` owns one soft attention mask per stage, and its
features are the shared maps seen through its masks::

    a_k^1 = σ(conv1×1_k^1(s^1))                      a_k^j = σ(conv1×1_k^j([s^j ; pool(t_k^{j-1})]))
    t_k^j = a_k^j ⊙ s^j                              (mask values in (0, 1), one per channel and pixel)
    y_k   = h_k(ReLU(Linear_k(flatten(t_k^S))))

so each task picks, channel by channel and pixel by pixel, which shared features it uses, and the
mask at stage ``j`` sees what the task kept at stage ``j−1``. The paper's module has two 1×1 conv
layers with batch norm per mask and a 3×3 conv after every masked map; this *lite* version keeps one
1×1 conv + sigmoid per mask and nothing else, so the idea stays visible in a few lines.

Defaults: the CNN trunk's ``channels=(16, 32)`` and ``out_dim=128`` (:class:`~mtl_lab.models.trunks.CNNTrunk`).
Pooling is skipped once a map is smaller than 2×2, as in that trunk. Image inputs ``[C, H, W]`` only.

The shared stages are the shared parameters; masks, the task's linear layer and head are task ``k``'s.
:meth:`MTANLite.encode` returns the shared maps of every stage, flattened side by side.
The masks of the last forward pass are kept, detached, in ``last_masks`` (``{task: [mask per stage]}``);
``inspect()`` returns each mask's mean value — how much of the shared features a task lets through.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.hard import make_head
from mtl_lab.models.trunks import check_widths
from mtl_lab.tasks import Task

Resize = Callable[[torch.Tensor, tuple[int, ...]], torch.Tensor]


def shared_stage(in_channels: int, out_channels: int, pool: bool) -> nn.Sequential:
    """``Conv3×3 → ReLU (→ MaxPool2)``."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def mask_convs(shapes: list[tuple[int, int, int]]) -> nn.ModuleList:
    """One ``Conv1×1`` per stage of ``shapes``: stage 1 reads ``s^1``, stage ``j`` reads ``[s^j ; t^{j-1}]``."""
    convs = nn.ModuleList()
    previous = 0
    for c, _, _ in shapes:
        convs.append(nn.Conv2d(c + previous, c, kernel_size=1))
        previous = c
    return convs


def split_maps(rep: torch.Tensor, shapes: list[tuple[int, int, int]]) -> list[torch.Tensor]:
    """The maps ``[B, C_j, H_j, W_j]`` back from their flattened, concatenated form ``rep``."""
    sizes = [math.prod(shape) for shape in shapes]
    return [part.reshape(-1, *shape) for part, shape in zip(rep.split(sizes, dim=1), shapes)]


def apply_masks(
    convs: nn.ModuleList, maps: list[torch.Tensor], resize: Resize
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``t^S`` and the detached masks ``a^j = σ(conv^j([s^j ; resize(t^{j-1})]))``, ``t^j = a^j ⊙ s^j``."""
    kept, masks = None, []
    for conv, shared in zip(convs, maps):
        if kept is None:
            mask_input = shared
        else:
            mask_input = torch.cat([shared, resize(kept, shared.shape[-2:])], dim=1)
        mask = torch.sigmoid(conv(mask_input))
        kept = mask * shared
        masks.append(mask.detach())
    return kept, masks


class MTANLite(MultiTaskModel):
    """A shared CNN and, per task, one sigmoid attention mask per stage, a linear layer and a head."""

    architecture = "mtan_lite"

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        channels: tuple[int, ...] = (16, 32),
        out_dim: int = 128,
        head_hidden: tuple[int, ...] = (),
    ) -> None:
        super().__init__(tasks)
        if len(input_shape) != 3:
            raise ValueError(
                f"mtan_lite needs image inputs [C, H, W]; this data has input shape {tuple(input_shape)}. "
                "Use an architecture with an MLP trunk (hard, mmoe, cgc, …) for tabular data"
            )
        channels = check_widths(channels, "channels")
        if isinstance(out_dim, bool) or not isinstance(out_dim, int) or out_dim < 1:
            raise ValueError(f"out_dim must be a positive int, got {out_dim!r}")
        c, h, w = input_shape
        self.stages = nn.ModuleList()
        self.shapes: list[tuple[int, int, int]] = []
        for ch in channels:
            pool = h >= 2 and w >= 2
            self.stages.append(shared_stage(c, ch, pool))
            h, w = (h // 2, w // 2) if pool else (h, w)
            c = ch
            self.shapes.append((c, h, w))
        self.masks = nn.ModuleDict({t.name: self.make_masks() for t in tasks})
        last = math.prod(self.shapes[-1])
        self.projections = nn.ModuleDict(
            {t.name: nn.Sequential(nn.Flatten(), nn.Linear(last, out_dim), nn.ReLU()) for t in tasks}
        )
        self.heads = nn.ModuleDict({t.name: make_head(out_dim, t.out_dim, tuple(head_hidden)) for t in tasks})
        self.last_masks: dict[str, list[torch.Tensor]] = {}

    def make_masks(self) -> nn.ModuleList:
        """One ``Conv1×1`` per stage: stage 1 reads ``s^1``, stage ``j`` reads ``[s^j ; t^{j-1}]``."""
        return mask_convs(self.shapes)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The shared feature maps of every stage, flattened and concatenated."""
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x.flatten(1))
        return torch.cat(maps, dim=1)

    def split_rep(self, rep: torch.Tensor) -> list[torch.Tensor]:
        return split_maps(rep, self.shapes)

    def attend(self, name: str, maps: list[torch.Tensor]) -> torch.Tensor:
        """Task ``name``'s masked features ``t^S`` (its masks are kept in ``last_masks``)."""
        kept, self.last_masks[name] = apply_masks(self.masks[name], maps, F.adaptive_max_pool2d)
        return kept

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = self.split_rep(rep)
        return {name: self.heads[name](self.projections[name](self.attend(name, maps))) for name in self.task_names}

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.stages.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        return (
            list(self.masks[name].parameters())
            + list(self.projections[name].parameters())
            + list(self.heads[name].parameters())
        )

    def inspect(self) -> dict:
        """``{"attention": {task: mean mask value per stage}}`` over the last batch."""
        if not self.last_masks:
            return {}
        return {"attention": {name: [float(m.mean()) for m in masks] for name, masks in self.last_masks.items()}}
