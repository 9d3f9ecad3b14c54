"""Shared trunks: the networks that turn an input into the representation all task heads read.

* :class:`MLPTrunk` flattens the input and applies ``Linear → ReLU`` layers (widths ``hidden``).
* :class:`CNNTrunk` applies ``Conv3×3 → ReLU → (MaxPool 2×2)`` blocks, then one ``Linear → ReLU``
  to a vector of width ``out_dim``. It expects images ``[C, H, W]``.
* :class:`LeNetTrunk` is the LeNet-style encoder of the MultiMNIST experiments: two 5×5 convolutions
  (10 and 20 channels), each followed by 2×2 max-pooling and ReLU, then ``Linear(50) → ReLU``.

Both expose ``out_dim`` (the representation width) and are plain ``nn.Sequential`` inside, so every
layer a learner may inspect is visible in ``print(trunk)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def check_widths(widths: tuple[int, ...] | list[int], what: str) -> tuple[int, ...]:
    widths = tuple(widths)
    if not widths or any(not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"{what} must be a non-empty list of positive ints, got {list(widths)}")
    return widths


class MLPTrunk(nn.Module):
    """``Flatten → [Linear → ReLU (→ Dropout)] × len(hidden)``."""

    def __init__(self, input_shape: tuple[int, ...], hidden: tuple[int, ...] = (256, 256), dropout: float = 0.0):
        super().__init__()
        hidden = check_widths(hidden, "hidden")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.net = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNNTrunk(nn.Module):
    """``[Conv3×3 → ReLU → MaxPool2] × len(channels) → Flatten → Linear(out_dim) → ReLU``.

    Pooling is skipped once the feature map is smaller than 2×2, so small images (8×8 digits) work.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        channels: tuple[int, ...] = (16, 32),
        out_dim: int = 128,
        dropout: float = 0.0,
    ):
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"a CNN trunk needs image inputs [C, H, W], got input shape {tuple(input_shape)}")
        channels = check_widths(channels, "channels")
        if not isinstance(out_dim, int) or out_dim < 1:
            raise ValueError(f"out_dim must be a positive int, got {out_dim!r}")
        c, h, w = input_shape
        layers: list[nn.Module] = []
        for ch in channels:
            layers += [nn.Conv2d(c, ch, kernel_size=3, padding=1), nn.ReLU()]
            if h >= 2 and w >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = ch
        layers += [nn.Flatten(), nn.Linear(c * h * w, out_dim), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class LeNetTrunk(nn.Module):
    """``Conv5×5(10) → MaxPool2 → ReLU → Conv5×5(20) → MaxPool2 → ReLU → Flatten → Linear(out_dim) → ReLU``.

    LeNet (LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document recognition",
    Proc. IEEE 1998) in the small form the MultiMNIST experiments share as their encoder (Sener & Koltun,
    NeurIPS 2018; Lin et al., NeurIPS 2019): 10 and 20 channels and a 50-wide representation, the
    defaults here. A 28×28 input gives 20×4×4 = 320 features before the linear layer.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        channels: tuple[int, ...] = (10, 20),
        kernel_size: int = 5,
        out_dim: int = 50,
    ):
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"a LeNet trunk needs image inputs [C, H, W], got input shape {tuple(input_shape)}")
        channels = check_widths(channels, "channels")
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
            raise ValueError(f"kernel_size must be a positive int, got {kernel_size!r}")
        if isinstance(out_dim, bool) or not isinstance(out_dim, int) or out_dim < 1:
            raise ValueError(f"out_dim must be a positive int, got {out_dim!r}")
        c, h, w = input_shape
        layers: list[nn.Module] = []
        for ch in channels:
            h, w = (h - kernel_size + 1) // 2, (w - kernel_size + 1) // 2
            if h < 1 or w < 1:
                raise ValueError(
                    f"input {tuple(input_shape)} is too small for {len(channels)} LeNet blocks with {kernel_size}×"
                    f"{kernel_size} kernels (each block shrinks the side to (side - {kernel_size} + 1) // 2)"
                )
            layers += [nn.Conv2d(c, ch, kernel_size=kernel_size), nn.MaxPool2d(2), nn.ReLU()]
            c = ch
        layers += [nn.Flatten(), nn.Linear(c * h * w, out_dim), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


TRUNKS = {"mlp": MLPTrunk, "cnn": CNNTrunk, "lenet": LeNetTrunk}


def build_trunk(kind: str, input_shape: tuple[int, ...], **options) -> nn.Module:
    """A trunk by name (``"mlp"``, ``"cnn"`` or ``"lenet"``) with its options."""
    if kind not in TRUNKS:
        raise ValueError(f"unknown trunk {kind!r}; choose from {sorted(TRUNKS)}")
    return TRUNKS[kind](tuple(input_shape), **options)
