"""The terms a step adds to the method's gradients: the model's own regulariser and the L1 penalty.

``model.regularizer()`` (e.g. the cross-stitch or relation matrices' penalties; ``None`` when the
architecture has none) is differentiated over every trainable parameter and added to ``.grad``; the L1
penalty ``l1·Σ|θ|`` adds ``l1·sign(θ)`` to every parameter that has a gradient.
"""

from __future__ import annotations

import torch

from mtl_lab.models.base import MultiTaskModel


def add_regularizers(model: MultiTaskModel, params: list[torch.Tensor], l1: float) -> torch.Tensor | None:
    """Add the model's regulariser and the L1 penalty to the parameters' gradients.

    Returns the regulariser's value (detached, on the device), or ``None`` when the model has none.
    """
    reg = model.regularizer()
    if reg is None and l1 == 0:
        return None
    if reg is not None:
        for p, g in zip(params, torch.autograd.grad(reg, params, allow_unused=True)):
            if g is not None:
                p.grad = g if p.grad is None else p.grad + g
    if l1 > 0:
        for p in params:
            if p.grad is not None:
                p.grad = p.grad + l1 * torch.sign(p.detach())
    return None if reg is None else reg.detach()
