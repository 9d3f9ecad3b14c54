"""Multi-task architectures, one module each, and :func:`build_model` to make one by name."""

from __future__ import annotations

import inspect

from mtl_lab.data.base import MultiTaskData
from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.cascade import Cascade
from mtl_lab.models.cgc import CGC, PLE
from mtl_lab.models.cross_stitch import CrossStitch
from mtl_lab.models.dselect_k import DSelectK
from mtl_lab.models.fused import Fused
from mtl_lab.models.grouped import Grouped
from mtl_lab.models.hard import HardSharing
from mtl_lab.models.ltb import LearningToBranch
from mtl_lab.models.mmoe import MMoE, OMoE
from mtl_lab.models.mtan_dense import MTANDense
from mtl_lab.models.mtan_lite import MTANLite
from mtl_lab.models.relation import TaskRelation
from mtl_lab.models.segnet_lite import SegNetLite
from mtl_lab.models.soft_sharing import SoftSharing
from mtl_lab.models.trunks import TRUNKS, CNNTrunk, MLPTrunk
from mtl_lab.validate import check_model_options

ARCHITECTURES: dict[str, type[MultiTaskModel]] = {
    HardSharing.architecture: HardSharing,
    SoftSharing.architecture: SoftSharing,
    CrossStitch.architecture: CrossStitch,
    MMoE.architecture: MMoE,
    OMoE.architecture: OMoE,
    DSelectK.architecture: DSelectK,
    CGC.architecture: CGC,
    PLE.architecture: PLE,
    MTANLite.architecture: MTANLite,
    Grouped.architecture: Grouped,
    Fused.architecture: Fused,
    TaskRelation.architecture: TaskRelation,
    Cascade.architecture: Cascade,
    SegNetLite.architecture: SegNetLite,
    MTANDense.architecture: MTANDense,
    LearningToBranch.architecture: LearningToBranch,
}

# architectures whose heads predict one output per pixel (the only ones that take pixel tasks)
DENSE_ARCHITECTURES = (SegNetLite.architecture, MTANDense.architecture)

__all__ = [
    "ARCHITECTURES",
    "DENSE_ARCHITECTURES",
    "CGC",
    "CNNTrunk",
    "Cascade",
    "CrossStitch",
    "DSelectK",
    "Fused",
    "Grouped",
    "HardSharing",
    "LearningToBranch",
    "MLPTrunk",
    "MMoE",
    "MTANDense",
    "MTANLite",
    "MultiTaskModel",
    "OMoE",
    "PLE",
    "SegNetLite",
    "SoftSharing",
    "TaskRelation",
    "build_model",
]


def build_model(architecture: str, data: MultiTaskData, **options) -> MultiTaskModel:
    """An architecture by name, sized for ``data`` (its tasks and input shape)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose from {sorted(ARCHITECTURES)}")
    allowed = architecture_options(architecture, options.get("trunk"))
    unknown = [key for key in options if key not in allowed]
    if unknown:
        raise ValueError(f"architecture {architecture!r} has no option(s) {unknown}; its options are {allowed}")
    check_option_kinds(architecture, options)
    pixel = [t.name for t in data.tasks if t.is_pixel]
    if pixel and architecture not in DENSE_ARCHITECTURES:
        raise ValueError(
            f"architecture {architecture!r} predicts one output per image; task(s) {pixel} are pixel tasks: "
            f"choose one of {list(DENSE_ARCHITECTURES)}"
        )
    return ARCHITECTURES[architecture](data.tasks, data.input_shape, **options)


def check_option_kinds(architecture: str, options: dict) -> None:
    """Each option of the kind of its default (``num_experts`` an int, ``dropout`` a number, ``hidden`` a
    list of ints …), for the architecture and the trunk it forwards options to (:mod:`mtl_lab.validate`)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose from {sorted(ARCHITECTURES)}")
    if not isinstance(options, dict):
        raise ValueError(f"model options must be a dict, got {options!r}")
    check_model_options(ARCHITECTURES[architecture], options, f"architecture {architecture!r}")
    trunk = options.get("trunk", "mlp")
    if isinstance(trunk, str) and trunk in TRUNKS:
        check_model_options(TRUNKS[trunk], options, f"{trunk} trunk")


def architecture_options(architecture: str, trunk: str | None = None) -> list[str]:
    """The keyword options an architecture accepts (for error messages and UIs).

    Architectures that pass extra keywords on to their trunk (``**trunk_options``, ``**expert_options``)
    also accept that trunk's options (``hidden``, ``channels`` …) for the given or default ``trunk``.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose from {sorted(ARCHITECTURES)}")
    params = inspect.signature(ARCHITECTURES[architecture].__init__).parameters
    names = [p for p, v in params.items() if p not in ("self", "tasks", "input_shape") and v.kind != v.VAR_KEYWORD]
    forwards = any(v.kind == v.VAR_KEYWORD for v in params.values())
    if forwards and "trunk" in params:
        kind = trunk or params["trunk"].default
        if kind in TRUNKS:
            trunk_params = inspect.signature(TRUNKS[kind].__init__).parameters
            names += [p for p in trunk_params if p not in ("self", "input_shape")]
    return names
