"""Training options: :class:`TrainConfig` (every option through :mod:`mtl_lab.validate`) and the device."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from mtl_lab import validate

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "step", "cosine")
DEVICES = ("auto", "cpu", "cuda", "mps")
GRADIENT_PATHS = ("auto", "jacobian", "gramian")
NONFINITE_CHECKS = ("auto", "host", "device")


@dataclass(frozen=True)
class TrainConfig:
    """Every training option, with checks that name the bad value and what is allowed.

    Attributes:
        epochs: passes over the training split.
        batch_size: rows per step.
        optimizer: ``adam``, ``adamw`` or ``sgd``; ``momentum`` applies to SGD.
        lr: learning rate (> 0); ``weight_decay`` (≥ 0) is the optimiser's L2 decay.
        l1: L1 penalty ``l1·Σ|θ|`` on every model parameter (≥ 0).
        schedule: ``none``, ``step`` (× ``gamma`` every ``step_size`` epochs) or ``cosine`` (to 0 over ``epochs``).
        device: ``auto`` (cuda, else mps, else cpu), ``cpu``, ``cuda`` (or ``cuda:N``) or ``mps``.
        seed: seeds the model's dropout, the batch order and the method's random numbers.
        diagnostics_every: compute gradient diagnostics every this many steps (0: never).
        record_every: copy per-step records to the History every this many steps (``None``: 10 on CPU, 25 else).
        gradient_path: ``auto`` (= ``jacobian`` for now), ``jacobian`` (materialise ``G``) or ``gramian``
            (``K`` from linear layers, without ``G``; see :meth:`Trainer.make_gramian_engine`).
        evaluate: evaluate the validation split after every epoch.
        train_metrics: also evaluate the training split's metrics after every epoch.
        augment: apply the data set's training augmentation, when it has one.
        nonfinite_check: how a NaN/inf loss or gradient is kept from the weights (:mod:`mtl_lab.training.guards`):
            ``host`` (read at once), ``device`` (a device-side flag gating a fused optimiser, read at the next
            flush) or ``auto`` (``host`` on CPU, ``device`` elsewhere).
        rep_grads: feed a gradient method the per-task gradients of the shared representation instead of
            the shared parameters (see :mod:`mtl_lab.training.rep_grad`).
    """

    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    l1: float = 0.0
    schedule: str = "none"
    step_size: int = 10
    gamma: float = 0.5
    device: str = "auto"
    seed: int = 0
    diagnostics_every: int = 10
    record_every: int | None = None
    gradient_path: str = "auto"
    evaluate: bool = True
    train_metrics: bool = True
    augment: bool = False
    nonfinite_check: str = "auto"
    rep_grads: bool = False

    def __post_init__(self) -> None:
        """Every value through :mod:`mtl_lab.validate` (the one validation layer)."""
        for name in ("epochs", "batch_size", "step_size"):
            validate.check_int(name, getattr(self, name), 1)
        validate.check_int("diagnostics_every", self.diagnostics_every, 0)
        if self.record_every is not None:
            validate.check_int("record_every", self.record_every, 1)
        validate.check_seed(self.seed)
        validate.check_number("lr", self.lr, 0, low_open=True)
        validate.check_number("gamma", self.gamma, 0, low_open=True)
        for name in ("weight_decay", "momentum", "l1"):
            validate.check_number(name, getattr(self, name), 0)
        for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("gradient_path", GRADIENT_PATHS),
                              ("nonfinite_check", NONFINITE_CHECKS)):
            validate.check_choice(name, getattr(self, name), allowed)
        for name in ("evaluate", "train_metrics", "augment"):
            validate.check_bool(name, getattr(self, name))
        validate.check_device(self.device)
        step_options = {"step_size": (self.step_size, TrainConfig.step_size), "gamma": (self.gamma, TrainConfig.gamma)}
        validate.check_unused_options(self.optimizer, self.momentum, self.schedule, step_options)
        validate.check_bool("rep_grads", self.rep_grads)
        if self.rep_grads and self.gradient_path == "gramian":
            raise ValueError("rep_grads=True and gradient_path='gramian' exclude each other: choose one")

    @staticmethod
    def option_names() -> list[str]:
        return [f.name for f in fields(TrainConfig)]


def resolve_device(name: str) -> torch.device:
    """``auto`` → the best available device; an unavailable one is a clear error."""
    return validate.check_device_available(name)
