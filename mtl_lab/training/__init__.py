"""Training: one run of one model with one weighting method (see ``mtl_lab/README.md`` for where things happen).

Modules, in the order a step meets them: :mod:`~mtl_lab.training.config` (:class:`TrainConfig`),
:mod:`~mtl_lab.training.build` (:func:`build_trainer`, :func:`train`), :mod:`~mtl_lab.training.trainer` (the
loop, the step, records, ``state_dict``), :mod:`~mtl_lab.training.setup` (what the trainer builds once),
:mod:`~mtl_lab.training.paths` (one class per gradient path, the one function that writes ``.grad``, the
diagnostics observer), :mod:`~mtl_lab.training.parallel` (one process or torch.distributed),
:mod:`~mtl_lab.training.inputs` (shared rows, or each task its own: multi-input mode) and
:mod:`~mtl_lab.training.streams` (seeded endless batch streams), :mod:`~mtl_lab.training.masks` (missing labels),
:mod:`~mtl_lab.training.rep_grad`,
:mod:`~mtl_lab.training.extra_batches` and :mod:`~mtl_lab.training.lookahead` (what some paths need),
:mod:`~mtl_lab.training.guards` (NaN/inf), :mod:`~mtl_lab.training.interrupts` (Ctrl-C),
:mod:`~mtl_lab.training.resume` and :mod:`~mtl_lab.training.checkpoint` (exact resume, files),
:mod:`~mtl_lab.training.records` (per-step rows → History, epoch totals), :mod:`~mtl_lab.training.ending` (a
run's status, test results, end event), :mod:`~mtl_lab.training.evaluation` and :mod:`~mtl_lab.training.events`
(what views and reports read).
"""

from mtl_lab.training.build import build_trainer, check_architecture_options, train
from mtl_lab.training.config import (
    DEVICES,
    GRADIENT_PATHS,
    NONFINITE_CHECKS,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    resolve_device,
)
from mtl_lab.training.events import Event, EventStream, RunHandle, plain
from mtl_lab.training.guards import NonFiniteLossError
from mtl_lab.training.trainer import Trainer

__all__ = [
    "DEVICES", "GRADIENT_PATHS", "NONFINITE_CHECKS", "OPTIMIZERS", "SCHEDULES", "Event", "EventStream",
    "NonFiniteLossError", "RunHandle", "TrainConfig", "Trainer", "build_trainer", "check_architecture_options",
    "plain", "resolve_device", "train",
]
