"""Per-task missing labels: losses and metrics over each task's labelled rows only.

Real multi-task data are partially labelled: an image has a digit label or not, a patient has had one
test and not another. A split keeps, for each task that misses labels, a boolean mask ``[N]``
(``True`` = labelled; see :mod:`mtl_lab.data.base`). Unlabelled rows hold a placeholder target that is
never read: every function here selects the labelled rows first.

Rules, for a batch ``B`` and task ``t`` with labelled rows ``B_t ⊆ B``:

* the loss is the mean over the labelled rows only: ``L_t = mean_{i ∈ B_t} ℓ_t(f_t(x_i), y_{it})``;
* when ``B_t`` is empty the loss is an exact ``0`` with an exact zero gradient: the sum over no rows,
  still attached to the graph so that ``autograd.grad`` of it is defined (``G[t] = 0``);
* a metric on a split uses the labelled rows only; with none it is ``nan`` (nothing to score).

What the weighting methods see on a step where task ``t`` has no label (every method is checked to
stay finite and to leave task ``t``'s head untouched, ``tests/test_masks.py``):

* the loss values a method is shown (:func:`stand_in`): ``L_t`` is replaced by the mean loss of the
  tasks that do have labels in the batch. A true ``0`` would be read as "task solved" by every method
  that weights by ``1/L`` (inverse-loss, GLS, FAMO): clamped to their ``eps`` it takes nearly all the
  weight, and the present tasks would not move at all on that step. Scale-free methods keep the ratios
  of the present tasks' weights whatever the stand-in; the gradient of task ``t`` is zero, so its own
  weight changes nothing. The History records the true per-task losses (``0``), and the effective
  weight of the absent task as ``0`` (:func:`effective_weights`; exact, since ``g_t = 0``).
* gradient methods get a zero row ``g_t = 0`` in ``G`` (or ``Z``, ``K``). Methods that normalise rows
  (IMTL-G, Aligned-MTL, Nash-MTL, CAGrad …) guard the zero norm. MGDA and MGDA-UB are the exception
  by definition: a zero gradient in the convex hull makes the min-norm point ``0`` (the test of Pareto
  stationarity), so they take **no step** of the shared parameters on that batch; use batches in which
  every task has labels with them.

Such batches are rare when the batch is large against ``1 / labelled fraction`` (with 10 % of the rows
labelled and 64 rows, a batch without a label has probability ``0.9⁶⁴ ≈ 0.1 %``); epoch-average losses
(DWA, the History) average only the batches where the task had labels.
"""

from __future__ import annotations

import math

import torch

from mtl_lab.tasks import Task

Masks = dict[str, torch.Tensor]


def task_loss(task: Task, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``task``'s loss over the rows where ``mask`` is ``True`` (all rows when ``mask`` is ``None``).

    No labelled row: ``output[:0].sum()``, a zero that keeps the graph and has a zero gradient.
    """
    if mask is None:
        return task.loss(output, target)
    if not bool(mask.any()):
        return output[:0].sum()
    if bool(mask.all()):
        return task.loss(output, target)
    return task.loss(output[mask], target[mask])


def losses(
    tasks: list[Task], outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], masks: Masks | None
) -> list[torch.Tensor]:
    """Each task's scalar loss over its labelled rows, as a list (in the order of ``tasks``)."""
    masks = masks or {}
    return [task_loss(t, outputs[t.name], targets[t.name], masks.get(t.name)) for t in tasks]


def present(tasks: list[Task], masks: Masks | None, device: torch.device | str) -> torch.Tensor | None:
    """A float ``[T]`` tensor: 1 where the task has at least one labelled row in the batch, else 0.

    ``None`` when no task misses labels (every task is present).
    """
    if not masks:
        return None
    flags = [masks[t.name].any() if t.name in masks else torch.ones((), dtype=torch.bool) for t in tasks]
    return torch.stack([f.to(device) for f in flags]).float()


def task_metric(task: Task, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> float:
    """``task``'s metric over the labelled rows; ``nan`` when there is none."""
    if mask is None or bool(mask.all()):
        return float(task.metric(output, target))
    if not bool(mask.any()):
        return math.nan
    return float(task.metric(output[mask], target[mask]))


def task_loss_value(task: Task, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> float:
    """``task``'s loss over the labelled rows as a float; ``nan`` when there is none (evaluation only)."""
    if mask is not None and not bool(mask.any()):
        return math.nan
    return float(task_loss(task, output, target, mask))


def stand_in(losses: torch.Tensor, labelled: torch.Tensor | None) -> torch.Tensor:
    """The losses a weighting method is shown: a task without labels takes the mean of the labelled ones.

    ``labelled`` is :func:`present`'s ``[T]`` 0/1 tensor (``None``: every task has labels). No device sync.
    """
    if labelled is None:
        return losses
    labelled = labelled.to(losses.dtype)
    mean = (losses * labelled).sum() / labelled.sum().clamp(min=1)
    return torch.where(labelled > 0, losses, mean)


def effective_weights(weights: torch.Tensor, labelled: torch.Tensor | None) -> torch.Tensor:
    """The weights as recorded: ``0`` for a task without labels (its gradient is zero, so ``Gᵀw`` is unchanged)."""
    return weights if labelled is None else weights * labelled.to(weights.dtype)
