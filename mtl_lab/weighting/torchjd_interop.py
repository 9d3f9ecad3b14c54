"""Use any TorchJD aggregator as an mtl_lab method.

TorchJD (Quinton & Rey's library for Jacobian descent, optional dependency: ``pip install
mtl-lab[torchjd]``) turns a matrix of task gradients ``G[T, P]`` into one direction with an
*aggregator*. :func:`from_torchjd` wraps one so that it runs in the Trainer, the gradient arena and
:func:`mtl_lab.weighting.aggregate` like any other method::

    from torchjd.aggregation import UPGrad
    from mtl_lab.weighting.torchjd_interop import from_torchjd

    method = from_torchjd(UPGrad())      # compare with mtl_lab's own "upgrad"

The wrapped method asks for the gradients (``requires="grads"``), returns ``d = aggregator(G)`` as its
direction, and the least-squares weights ``w = argmin ‖Gᵀw − d‖`` as its effective weights
(``info["lstsq_residual"]`` is ``‖Gᵀw − d‖/‖d‖``, near 0 when ``d`` is a combination of the gradients).

TorchJD's random aggregators (PCGrad, GradDrop, GradVac) draw from torch's global generator; the wrapper
seeds it for each call from ``ctx.generator`` inside ``torch.random.fork_rng``, so a run stays
reproducible by its seed and the global generator is left as it was. Stateful aggregators (GradVac,
NashMTL) are reset by :meth:`reset` when they have a ``reset`` method.
"""

from __future__ import annotations

import importlib

import torch

from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import least_squares_fit

INSTALL_HINT = "pip install mtl-lab[torchjd]"


def import_torchjd_aggregation():
    """``torchjd.aggregation``, imported on first use, with a clear error when TorchJD is missing."""
    try:
        return importlib.import_module("torchjd.aggregation")
    except ImportError as error:
        raise ImportError(f"from_torchjd needs the optional package torchjd: {INSTALL_HINT}") from error


class TorchJDMethod(Weighting):
    """An mtl_lab method whose direction is a TorchJD aggregator applied to the task gradients."""

    name = "torchjd"
    description = "A TorchJD aggregator applied to the task gradients."
    requires = "grads"

    def __init__(self, aggregator) -> None:
        super().__init__()
        aggregation = import_torchjd_aggregation()
        if not isinstance(aggregator, aggregation.Aggregator):
            raise TypeError(
                f"from_torchjd expects a torchjd.aggregation.Aggregator instance (e.g. UPGrad()), "
                f"got {type(aggregator).__name__}"
            )
        self.aggregator = aggregator
        self.name = f"torchjd:{aggregator}"
        self.description = f"TorchJD's {aggregator} aggregator applied to the task gradients."

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        if callable(getattr(self.aggregator, "reset", None)):
            self.aggregator.reset()

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        seed = int(torch.randint(0, 2**62, (1,), generator=ctx.generator))
        devices = [grads.device.index or 0] if grads.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            direction = self.aggregator(grads).detach()
        weights, residual = least_squares_fit(grads, direction)
        return Combination(weights, direction, info={"lstsq_residual": residual})

    def config(self) -> dict:
        return {"name": self.name, "aggregator": repr(self.aggregator)}


def from_torchjd(aggregator) -> Weighting:
    """Wrap a TorchJD aggregator (e.g. ``torchjd.aggregation.UPGrad()``) as an mtl_lab method."""
    return TorchJDMethod(aggregator)
