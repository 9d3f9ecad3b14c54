"""Multi-task architectures, one module each, and :func:`build_model` to make one by name."""

from __future__ import annotations

import inspect

from mtl_lab.data.base import MultiTaskData
from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.hard import HardSharing
from mtl_lab.models.trunks import CNNTrunk, MLPTrunk

ARCHITECTURES: dict[str, type[MultiTaskModel]] = {
    HardSharing.architecture: HardSharing,
}

__all__ = ["ARCHITECTURES", "CNNTrunk", "HardSharing", "MLPTrunk", "MultiTaskModel", "build_model"]


def build_model(architecture: str, data: MultiTaskData, **options) -> MultiTaskModel:
    """An architecture by name, sized for ``data`` (its tasks and input shape)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose from {sorted(ARCHITECTURES)}")
    cls = ARCHITECTURES[architecture]
    return cls(data.tasks, data.input_shape, **options)


def architecture_options(architecture: str) -> list[str]:
    """The keyword options an architecture accepts (for error messages and UIs)."""
    cls = ARCHITECTURES[architecture]
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "tasks", "input_shape")]
