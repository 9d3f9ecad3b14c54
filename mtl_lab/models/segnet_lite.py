"""SegNet-lite: hard parameter sharing for dense tasks — one encoder–decoder, one pixel head per task.

The "Split" multi-task baseline of Liu, Johns and Davison ("End-to-End Multi-Task Learning with
Attention", CVPR 2019) on a SegNet trunk (Badrinarayanan et al., TPAMI 2017), the set-up LibMTL
calls HPS on NYUv2 and Cityscapes. The trunk (:class:`~mtl_lab.models.encoder_decoder.EncoderDecoder`)
maps an image to a feature map ``r = f_θ(x)`` of shape ``[B, channels[0], H, W]``; each task ``t``
reads it with its own ``Conv3×3 → ReLU → Conv1×1`` head: ``y_t = h_t(r)``, one output per pixel.
The representation is the feature map itself (``rep_grads`` differentiates the losses at every pixel
of it: ``Z`` has ``B · channels[0] · H · W`` columns).

Defaults ``channels=(16, 32, 64)``: three pooling stages, so image sides must be multiples of 8.
"""

from __future__ import annotations

import torch
from torch import nn

from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.encoder_decoder import EncoderDecoder, check_pixel_tasks, pixel_head
from mtl_lab.tasks import Task


class SegNetLite(MultiTaskModel):
    """A shared encoder–decoder and one full-resolution convolutional head per pixel task."""

    architecture = "segnet_lite"

    def __init__(self, tasks: list[Task], input_shape: tuple[int, ...], channels: tuple[int, ...] = (16, 32, 64)):
        super().__init__(tasks)
        check_pixel_tasks(self.architecture, tasks)
        self.trunk = EncoderDecoder(tuple(input_shape), tuple(channels))
        width = self.trunk.out_channels
        self.heads = nn.ModuleDict({t.name: pixel_head(width, t.out_dim) for t in tasks})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's last map ``[B, channels[0], H, W]``."""
        return self.trunk(x)[-1]

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: head(rep) for name, head in self.heads.items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        return list(self.heads[name].parameters())
