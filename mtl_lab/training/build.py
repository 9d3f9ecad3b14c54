"""Model, method and Trainer in one call: :func:`build_trainer`, and :func:`train` (build and run to the end)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from mtl_lab.data.base import MultiTaskData
from mtl_lab.grouping import resolve_auto_groups
from mtl_lab.models import build_model, check_option_kinds
from mtl_lab.training.config import TrainConfig
from mtl_lab.training.events import Event
from mtl_lab.training.trainer import Trainer
from mtl_lab.weighting import Weighting, create


def build_trainer(
    data: MultiTaskData,
    architecture: str = "hard",
    method: str | Weighting = "equal",
    model_options: dict | None = None,
    method_options: dict | None = None,
    callback: Callable[[Event], None] | None = None,
    **train_options,
) -> Trainer:
    """Model (initialised from ``seed``), method and Trainer in one call.

    The model is built under ``torch.random.fork_rng`` so the caller's global random state is untouched.
    For the ``grouped`` architecture, ``model_options={"groups": "auto"}`` first runs the grouping probe
    of :func:`mtl_lab.grouping.resolve_auto_groups` on ``data``.
    """
    config = replace(TrainConfig(), **train_options) if set(train_options) <= set(TrainConfig.option_names()) else None
    seed = config.seed if config is not None else TrainConfig.seed  # unknown options: Trainer names them below
    check_architecture_options(architecture, model_options or {})
    model_options = resolve_auto_groups(data, model_options or {}, seed) if architecture == "grouped" else model_options
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(architecture, data, **(model_options or {}))
    weighting = create(method, **(method_options or {}))
    return Trainer(model, data, weighting, callback=callback, **train_options)


def check_architecture_options(architecture: str, options: dict) -> None:
    """Model options checked before anything is built (:func:`mtl_lab.models.check_option_kinds`)."""
    check_option_kinds(architecture, options)


def train(data: MultiTaskData, architecture: str = "hard", method: str | Weighting = "equal", **options) -> Trainer:
    """Build a trainer with :func:`build_trainer`, run it to the end, and return it."""
    trainer = build_trainer(data, architecture, method, **options)
    trainer.fit()
    return trainer
