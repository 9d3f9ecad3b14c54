"""An encoder–decoder trunk for dense (per-pixel) tasks, and the small convolutional heads that read it.

The shape follows the encoder–decoders of dense multi-task learning — SegNet (Badrinarayanan, Kendall
and Cipolla, TPAMI 2017), the trunk MTAN and LibMTL use for NYUv2 and Cityscapes, and U-Net
(Ronneberger, Fischer and Brox, MICCAI 2015) — cut down to a few layers so it trains on a CPU:

* encoder stage ``k`` (``k = 1 … S``): ``e_k = ReLU(Conv3×3(channels[k]))``, then ``MaxPool2`` — the map
  halves;
* decoder stage ``k`` (``k = S … 1``): ``ReLU(Conv3×3([Upsample×2(previous) ; e_k]))`` with
  ``channels[k−1]`` outputs (``channels[1]`` read as ``channels[0]`` for the last stage) — the map
  doubles, back to the input size.

SegNet carries the encoder's pooling indices to the decoder so that boundaries stay sharp; this lite
version carries the encoder maps themselves and concatenates them (U-Net's skip connections), and has
no batch normalisation. Without either, a three-stage trunk loses every object smaller than 8 pixels.
The decoder's maps are kept per stage (coarse to fine) so that MTAN-dense can attend to each of them;
the last one, ``[B, channels[0], H, W]``, is the shared representation of
:class:`~mtl_lab.models.segnet_lite.SegNetLite`.

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
    """``S`` encoder stages down, ``S`` decoder stages back up with skips; ``forward`` gives the decoder maps."""

    def __init__(self, input_shape: tuple[int, ...], channels: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        channels = check_widths(channels, "channels")
        c, _, _ = check_image_input("the encoder–decoder", input_shape, len(channels))
        self.encoder = nn.ModuleList()
        for ch in channels:
            self.encoder.append(nn.Sequential(nn.Conv2d(c, ch, kernel_size=3, padding=1), nn.ReLU()))
            c = ch
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        outs = list(channels[:-1])[::-1] + [channels[0]]  # decoder widths, coarse to fine
        skips = list(channels)[::-1]  # the encoder map each decoder stage is joined with
        self.decoder = nn.ModuleList()
        for ch, skip in zip(outs, skips):
            self.decoder.append(nn.Sequential(nn.Conv2d(c + skip, ch, kernel_size=3, padding=1), nn.ReLU()))
            c = ch
        self.decoder_channels = tuple(outs)
        self.out_channels = channels[0]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The decoder's maps, coarse to fine; the last is ``[B, channels[0], H, W]``."""
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
            x = self.pool(x)
        maps = []
        for stage, skip in zip(self.decoder, reversed(skips)):
            x = stage(torch.cat([self.upsample(x), skip], dim=1))
            maps.append(x)
        return maps


def pixel_head(in_channels: int, out_dim: int) -> nn.Sequential:
    """``Conv3×3(in) → ReLU → Conv1×1(out_dim)``: one output vector per pixel."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1), nn.ReLU(), nn.Conv2d(in_channels, out_dim, 1)
    )
