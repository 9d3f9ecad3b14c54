"""A small seeded three-task data set that trains in well under a second (the ``toy`` fixture's data)."""

from __future__ import annotations

import torch

from mtl_lab import tasks
from mtl_lab.data.base import MultiTaskData


def make_toy(n: int = 240, seed: int = 0) -> MultiTaskData:
    """Three tasks on 10 Gaussian features: a 3-way class, a yes/no and a 2-d regression."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    targets = {
        "cls": (x[:, 0] > 0).long() + (x[:, 1] > 1).long(),
        "yes": (x[:, 2] + x[:, 3] > 0).float(),
        "reg": torch.stack([x[:, 4] - x[:, 5], x[:, 6] * 0.5], dim=1),
    }
    task_list = [tasks.classification("cls", 3), tasks.binary("yes"), tasks.regression("reg", dim=2)]
    return MultiTaskData.from_tensors(x, targets, task_list, seed=seed)
