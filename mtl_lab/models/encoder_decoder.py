"""An encoder–decoder trunk for dense (per-pixel) tasks, and the small convolutional heads that read it.

The shape follows SegNet (Badrinarayanan, Kendall and Cipolla, "SegNet: A Deep Convolutional
Encoder-Decoder Architecture for Image Segmentation", TPAMI 2017), the trunk MTAN and LibMTL use for
NYUv2 and Cityscapes, cut down to a few layers so it trains on a CPU:

* encoder stage ``k`` (``k = 1 … S``): ``Conv3×3(channels[k]) → ReLU → MaxPool2`` — the map halves;
* decoder stage ``k`` (``k = S … 1``): ``Upsample×2 (nearest) → Conv3×3(channels[k−1]) → ReLU``, with
  ``channels[0]`` read as ``channels[1]`` for the last stage — the map doubles, back to the input size.

SegNet re-uses the encoder's pooling indices to upsample; this lite version upsamples by nearest
neighbour (no indices to carry between the halves) and has no batch normalisation. The decoder's
maps are kept per stage (coarse to fine) so that MTAN-lite can attend to each of them; the last one,
``[B, channels[0], H, W]``, is the shared representation of :class:`~mtl_lab.models.segnet_lite.SegNetLite`.

A pixel head is ``Conv3×3 → ReLU → Conv1×1(out_dim)`` at full resolution, as MTAN's task heads.
"""

from __future__ import annotations

import torch
from torch import nn

from mtl_lab.models.trunks import check_widths
from mtl_lab.tasks import Task


def check_image_input(architecture: str, input_shape: tuple[int, ...], stages: int) -> tuple[int, int, int]:
    """``(C, H, W)`` of image inputs whose sides halve ``stages`` times without a remainder."""
    if len(input_shape) != 3:
        raise ValueError(f"{architecture} needs image inputs [C, H, W]; this data has input shape {tuple(input_shape)}")
    c, h, w = input_shape
    step = 2**stages
    if h % step or w % step:
        raise ValueError(
            f"{architecture}: image sides {h}×{w} must be multiples of 2^{stages} = {step} "
            f"for {stages} pooling stages (choose fewer channels entries or crop the images)"
        )
    return c, h, w


def check_pixel_tasks(architecture: str, tasks: list[Task]) -> None:
    """Every task must be a pixel task (segmentation, depth, normals)."""
    other = [f"{t.name} ({t.kind})" for t in tasks if not t.is_pixel]
    if other:
        raise ValueError(
            f"{architecture} predicts one output per pixel; task(s) {other} are not pixel tasks "
            "(segmentation, depth, normals). Use hard, mtan_lite … for per-image tasks"
        )


class EncoderDecoder(nn.Module):
    """SegNet-lite: ``S`` encoder stages down, ``S`` decoder stages back up; ``forward`` gives the decoder maps."""

    def __init__(self, input_shape: tuple[int, ...], channels: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        channels = check_widths(channels, "channels")
        c, _, _ = check_image_input("the encoder–decoder", input_shape, len(channels))
        self.encoder = nn.ModuleList()
        for ch in channels:
            self.encoder.append(
                nn.Sequential(nn.Conv2d(c, ch, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
            )
            c = ch
        outs = list(channels[:-1])[::-1] + [channels[0]]  # decoder widths, coarse to fine
        self.decoder = nn.ModuleList()
        for ch in outs:
            self.decoder.append(
                nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, ch, kernel_size=3, padding=1), nn.ReLU()
                )
            )
            c = ch
        self.decoder_channels = tuple(outs)
        self.out_channels = channels[0]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The decoder's maps, coarse to fine; the last is ``[B, channels[0], H, W]``."""
        for stage in self.encoder:
            x = stage(x)
        maps = []
        for stage in self.decoder:
            x = stage(x)
            maps.append(x)
        return maps


def pixel_head(in_channels: int, out_dim: int) -> nn.Sequential:
    """``Conv3×3(in) → ReLU → Conv1×1(out_dim)``: one output vector per pixel."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1), nn.ReLU(), nn.Conv2d(in_channels, out_dim, 1)
    )
