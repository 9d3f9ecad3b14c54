"""Shared trunks: the networks that turn an input into the representation all task heads read.

* :class:`MLPTrunk` flattens the input and applies ``Linear → ReLU`` layers (widths ``hidden``).
* :class:`CNNTrunk` applies ``Conv3×3 → ReLU → (MaxPool 2×2)`` blocks, then one ``Linear → ReLU``
  to a vector of width ``out_dim``. It expects images ``[C, H, W]``.

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


TRUNKS = {"mlp": MLPTrunk, "cnn": CNNTrunk}


def build_trunk(kind: str, input_shape: tuple[int, ...], **options) -> nn.Module:
    """A trunk by name (``"mlp"`` or ``"cnn"``) with its options."""
    if kind not in TRUNKS:
        raise ValueError(f"unknown trunk {kind!r}; choose from {sorted(TRUNKS)}")
    return TRUNKS[kind](tuple(input_shape), **options)
