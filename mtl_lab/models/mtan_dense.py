"""MTAN-dense: task attention on the decoder feature maps of one shared encoder–decoder.

After Liu, Johns and Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019 (MTAN), the
architecture of their NYUv2 and Cityscapes experiments, in a *lite* form. The shared SegNet-lite
(:class:`~mtl_lab.models.encoder_decoder.EncoderDecoder`) gives decoder maps ``s^1 … s^S``, coarse to
fine, the last at the input's resolution. Every task ``k`` owns one soft attention mask per decoder
stage and sees the shared maps through them::

    a_k^1 = σ(conv1×1_k^1(s^1))          a_k^j = σ(conv1×1_k^j([s^j ; up×2(t_k^{j-1})]))
    t_k^j = a_k^j ⊙ s^j                  (a mask value in (0, 1) per channel and pixel)
    y_k   = h_k(t_k^S)                   (Conv3×3 → ReLU → Conv1×1, one output per pixel)

so each task chooses, channel by channel and pixel by pixel, which shared features it uses, and the
mask of stage ``j`` sees what the task kept at stage ``j−1``. The paper attends to every encoder and
decoder block with two 1×1 conv layers and batch norm per mask and a 3×3 conv after each masked map;
here one 1×1 conv + sigmoid per decoder stage is kept, as in :mod:`mtl_lab.models.mtan_lite` (its
per-image counterpart).

The encoder–decoder is the shared parameters; a task's masks and head are its own. The shared
representation is the set of decoder maps every mask reads, flattened per image and concatenated:
``encode(x)`` is ``[B, Σ_j C_j H_j W_j]``, and :meth:`MTANDense.split_rep` gives the maps back.
``inspect()`` returns each mask's mean value over the last batch.

Defaults ``channels=(16, 32, 64)``: three pooling stages, so image sides must be multiples of 8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.encoder_decoder import EncoderDecoder, check_pixel_tasks, pixel_head
from mtl_lab.models.mtan_lite import apply_masks, mask_convs, split_maps
from mtl_lab.tasks import Task


def upsample_nearest(kept: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """``up(t^{j-1})``: the previous stage's kept features, nearest-neighbour resized to ``size``."""
    return F.interpolate(kept, size=size, mode="nearest")


class MTANDense(MultiTaskModel):
    """A shared encoder–decoder; per task, a sigmoid mask per decoder stage and a pixel head."""

    architecture = "mtan_dense"

    def __init__(self, tasks: list[Task], input_shape: tuple[int, ...], channels: tuple[int, ...] = (16, 32, 64)):
        super().__init__(tasks)
        check_pixel_tasks(self.architecture, tasks)
        self.trunk = EncoderDecoder(tuple(input_shape), tuple(channels))
        _, h, w = input_shape
        widths = self.trunk.decoder_channels
        scales = [2 ** (len(widths) - 1 - j) for j in range(len(widths))]  # coarse to fine: ×2 per stage
        self.shapes = [(c, h // s, w // s) for c, s in zip(widths, scales)]
        self.masks = nn.ModuleDict({t.name: self.make_masks() for t in tasks})
        self.heads = nn.ModuleDict({t.name: pixel_head(self.trunk.out_channels, t.out_dim) for t in tasks})
        self.last_masks: dict[str, list[torch.Tensor]] = {}

    def make_masks(self) -> nn.ModuleList:
        """One ``Conv1×1`` per decoder stage: stage 1 reads ``s^1``, stage ``j`` reads ``[s^j ; t^{j-1}]``."""
        return mask_convs(self.shapes)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder maps of every stage, flattened per image and concatenated."""
        return torch.cat([m.flatten(1) for m in self.trunk(x)], dim=1)

    def split_rep(self, rep: torch.Tensor) -> list[torch.Tensor]:
        """The decoder maps ``[B, C_j, H_j, W_j]`` back from :meth:`encode`'s flat representation."""
        return split_maps(rep, self.shapes)

    def attend(self, name: str, maps: list[torch.Tensor]) -> torch.Tensor:
        """Task ``name``'s masked full-resolution features ``t^S`` (its masks are kept in ``last_masks``)."""
        kept, self.last_masks[name] = apply_masks(self.masks[name], maps, upsample_nearest)
        return kept

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = self.split_rep(rep)
        return {name: self.heads[name](self.attend(name, maps)) for name in self.task_names}

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        return list(self.masks[name].parameters()) + list(self.heads[name].parameters())

    def inspect(self) -> dict:
        """``{"attention": {task: mean mask value per decoder stage}}`` over the last batch."""
        if not self.last_masks:
            return {}
        return {"attention": {name: [float(m.mean()) for m in masks] for name, masks in self.last_masks.items()}}
