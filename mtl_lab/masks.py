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

What the weighting methods then see on a step where task ``t`` has no label (every method is checked
to stay finite, ``tests/test_masks.py``):

* loss-weighting methods get ``L_t = 0``. The step does not move anything for task ``t`` (its gradient
  is zero), but the weights of the other tasks can shift: methods that weight by ``1/L`` (inverse-loss,
  GLS, FAMO, DB-MTL, IMTL-L) clamp the zero to their ``eps`` and put most of the weight on the absent
  task for that one step, so the present tasks move less; equal, static, RLW, uncertainty and DWA are not
  affected. GradNorm ignores a task whose first loss was 0.
* gradient methods get a zero row ``g_t = 0`` in ``G``. Methods that normalise the rows (IMTL-G,
  Aligned-MTL, Nash-MTL, CAGrad …) guard the zero norm; MGDA's min-norm point is then ``0`` (a zero
  gradient is Pareto-stationary), so MGDA does not move the shared parameters on that step.

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
