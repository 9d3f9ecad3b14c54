"""Evaluation of a model on a split: each task's mean loss and metric over its labelled rows only."""

from __future__ import annotations

import math

import torch

from mtl_lab.data.base import MultiTaskData, Split
from mtl_lab.history import History
from mtl_lab.models.base import MultiTaskModel
from mtl_lab.tasks import Task
from mtl_lab.training import masks as label_masks

SPLITS = ("train", "val", "test")


def evaluate_split(model: MultiTaskModel, data: MultiTaskData, tasks: list[Task], split: str,
                   batch_size: int = 1024, pixel_batch_size: int | None = None,
                   ) -> tuple[dict[str, float], dict[str, float]]:
    """Per-task mean loss and metric on ``split`` (``train``, ``val`` or ``test``) of shared-row data
    (:func:`evaluate_rows`; multi-input data go through :mod:`mtl_lab.training.inputs`)."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    return evaluate_rows(model, getattr(data, split), tasks, batch_size, pixel_batch_size)


@torch.no_grad()
def evaluate_rows(model: MultiTaskModel, rows: Split, tasks: list[Task], batch_size: int = 1024,
                  pixel_batch_size: int | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """Per-task mean loss and metric of ``tasks`` on the rows of a split, over labelled rows only
    (:mod:`mtl_lab.training.masks`); the model is put back in the mode it was in. Outputs of other tasks
    are not scored.

    Pixel tasks accumulate over the split batch by batch (:class:`~mtl_lab.training.masks.SplitAccumulator`),
    at most ``pixel_batch_size`` rows at a time (the Trainer passes its training batch size): the feature
    maps of 1024 images would not fit. The other tasks' outputs are concatenated, so a metric such as the
    ROC AUC is computed over the whole split.
    """
    if len(rows) == 0:
        return {}, {}
    if any(t.is_pixel for t in tasks) and pixel_batch_size is not None:
        batch_size = min(batch_size, pixel_batch_size)
    was_training = model.training
    model.eval()
    chunks: dict[str, list[torch.Tensor]] = {t.name: [] for t in tasks if not t.is_pixel}
    dense = {t.name: label_masks.SplitAccumulator(t) for t in tasks if t.is_pixel}  # sums, not outputs
    for x, y, masks in rows.batches(batch_size, with_mask=True):
        for name, out in model(x).items():
            if name in dense:
                dense[name].update(out, y[name], masks.get(name))
            elif name in chunks:
                chunks[name].append(out)
    model.train(was_training)
    losses, metrics = {}, {}
    for task in tasks:
        if task.is_pixel:
            losses[task.name], metrics[task.name] = dense[task.name].loss(), dense[task.name].metric()
            continue
        out = torch.cat(chunks[task.name])
        mask = rows.mask.get(task.name)
        losses[task.name] = label_masks.task_loss_value(task, out, rows.y[task.name], mask)
        metrics[task.name] = label_masks.task_metric(task, out, rows.y[task.name], mask)
    return losses, metrics


def non_finite_results(record: dict) -> list[str]:
    """The NaN or infinite validation/test losses and metrics of an epoch or test record, named."""
    return sorted({f"{key}[{task!r}] = {v}" for key in ("val_loss", "val_metric", "test_loss", "test_metrics")
                   for task, v in record.get(key, {}).items() if not math.isfinite(v)})


def note_non_finite_results(history: History, record: dict, where: str, step: int) -> None:
    """Say the NaN or infinite results of ``record`` in a note and in ``meta["warnings"]`` (nothing if none)."""
    bad = non_finite_results(record)
    if not bad:
        return
    message = f"{where}: non-finite evaluation results {bad}; check the validation/test data and the model"
    history.add_note({"step": step, "warning": message})
    with history.lock:
        history.meta.setdefault("warnings", []).append(message)
