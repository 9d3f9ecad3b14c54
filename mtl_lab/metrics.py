"""Comparing multi-task models: single-task baselines and the Δm % summary.

Δm % (Maninis, Radosavovic, Kokkinos, "Attentive Single-Tasking of Multiple Tasks", CVPR 2019; the
summary LibMTL reports) averages each task's relative change against its single-task baseline::

    Δm = 100/T · Σ_t (−1)^{l_t} (M_{m,t} − M_{b,t}) / M_{b,t}

with ``l_t = 1`` when lower is better for task ``t`` (a loss or an error) and ``l_t = 0`` when higher is
better (accuracy, IoU). Positive Δm: the multi-task model beats the single-task models on average.

A mean of *relative* changes reads wrong when one task's baseline is near zero: a regression error of
0.003 that becomes 0.016 is a change of −430 %, and next to it the +1 % of three accuracies vanish. So
this module never shows Δm alone:

* :func:`relative_changes` gives the per-task terms of the sum, in percent (what the Lab panel, the CLI
  report and :func:`metrics_table` print next to Δm);
* :func:`delta_m_by_kind` averages them within each kind of task (classification, regression, box),
  so a regression error cannot hide what happened to the accuracies, and vice versa;
* :func:`dominating_task` names a task whose relative change outweighs all the others together.

:func:`delta_m` stays Maninis et al.'s definition, unchanged.
"""

from __future__ import annotations

import math

from mtl_lab.data.base import MultiTaskData
from mtl_lab.history import History
from mtl_lab.training import build_trainer


def relative_change(value: float, baseline: float, higher_is_better: bool) -> float:
    """``(−1)^{l} (value − baseline) / baseline``: positive when ``value`` is the better one."""
    if not math.isfinite(value) or not math.isfinite(baseline):
        raise ValueError(f"metrics must be finite, got value={value!r}, baseline={baseline!r}")
    if baseline == 0:
        raise ValueError("a baseline metric of 0 makes the relative change undefined")
    sign = 1.0 if higher_is_better else -1.0
    return sign * (value - baseline) / abs(baseline)


def relative_changes(
    metrics: dict[str, float], baseline: dict[str, float], higher_is_better: dict[str, bool]
) -> dict[str, float]:
    """Each task's relative change against its baseline, in percent: the terms that Δm averages."""
    if not baseline:
        raise ValueError("delta_m needs at least one baseline task")
    missing = [t for t in baseline if t not in metrics or t not in higher_is_better]
    if missing:
        raise ValueError(f"no metric or direction for task(s) {missing}; metrics has {sorted(metrics)}")
    return {t: 100.0 * relative_change(metrics[t], baseline[t], higher_is_better[t]) for t in baseline}


def percent(change: float, digits: int = 1) -> str:
    """The one way a relative change (already in percent, as :func:`relative_changes` gives it) is printed:
    signed, ``digits`` decimals, a space and ``%`` — the report, the notebook table and the panel agree."""
    return f"{change:+.{digits}f} %"


def delta_m(metrics: dict[str, float], baseline: dict[str, float], higher_is_better: dict[str, bool]) -> float:
    """Δm in percent over the tasks of ``baseline`` (every one must be in ``metrics``): Maninis et al."""
    changes = relative_changes(metrics, baseline, higher_is_better)
    return sum(changes.values()) / len(changes)


KIND_GROUPS = {"multiclass": "classification", "binary": "classification", "regression": "regression", "box": "box"}


def delta_m_by_kind(metrics: dict[str, float], baseline: dict[str, float], data: MultiTaskData) -> dict[str, float]:
    """Δm % within each group of task kinds (``classification``, ``regression``, ``box``) that has tasks."""
    changes = relative_changes(metrics, baseline, directions(data))
    groups: dict[str, list[float]] = {}
    for task, change in changes.items():
        groups.setdefault(KIND_GROUPS[data.task(task).kind], []).append(change)
    return {group: sum(values) / len(values) for group, values in groups.items()}


def dominating_task(changes: dict[str, float]) -> str | None:
    """The task whose ``|relative change|`` exceeds the others' together (``None``: no such task, or one task)."""
    if len(changes) < 2:
        return None
    task = max(changes, key=lambda t: abs(changes[t]))
    rest = sum(abs(v) for t, v in changes.items() if t != task)
    return task if abs(changes[task]) > rest else None


def dominance_note(changes: dict[str, float]) -> str:
    """One sentence when a single task dominates Δm, else ``""``."""
    task = dominating_task(changes)
    if task is None:
        return ""
    return (
        f"Δm is dominated by {task!r} ({changes[task]:+.1f} %, more than all other tasks together): "
        "read the per-task changes and the per-kind means, not the headline."
    )


def directions(data: MultiTaskData) -> dict[str, bool]:
    """``{task: higher_is_better}`` for every task of ``data``."""
    return {t.name: t.higher_is_better for t in data.tasks}


def single_task_baselines(
    data: MultiTaskData,
    architecture: str = "hard",
    model_options: dict | None = None,
    **train_options,
) -> dict[str, History]:
    """Train one model per task (same architecture and trunk, that task alone); their Histories by task.

    The test metric of each is ``history.meta["test_metrics"][task]``.
    """
    out = {}
    for task in data.task_names:
        trainer = build_trainer(data.select([task]), architecture, "equal", model_options, **train_options)
        out[task] = trainer.fit()
    return out


def baseline_metrics(baselines: dict[str, History]) -> dict[str, float]:
    """``{task: test metric}`` of single-task baseline Histories."""
    return {task: h.meta["test_metrics"][task] for task, h in baselines.items()}


def metrics_table(
    runs: dict[str, dict[str, float]],
    data: MultiTaskData,
    baseline: dict[str, float] | None = None,
    digits: int = 4,
) -> str:
    """A Markdown table: one row per run, one column per task metric, and Δm % when a baseline is given.

    With a baseline, every metric cell also shows the task's relative change in percent, and when the
    tasks are of more than one kind, the per-kind means (:func:`delta_m_by_kind`) come before Δm.
    """
    names = data.task_names
    head = [f"{t} ({data.task(t).metric_name} {'↑' if data.task(t).higher_is_better else '↓'})" for t in names]
    groups = list(dict.fromkeys(KIND_GROUPS[data.task(t).kind] for t in names)) if baseline else []
    group_cols = [f"Δm {g} %" for g in groups] if len(groups) > 1 else []
    cols = ["run", *head, *group_cols] + (["Δm %"] if baseline else [])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows = ([("single-task", baseline)] if baseline else []) + list(runs.items())
    for index, (label, metrics) in enumerate(rows):
        changes = relative_changes(metrics, baseline, directions(data)) if baseline else {}
        is_baseline = baseline is not None and index == 0
        cells = [label]
        for t in names:
            value = f"{metrics[t]:.{digits}f}" if t in metrics else "—"
            cells.append(f"{value} ({percent(changes[t])})" if t in changes and not is_baseline else value)
        if group_cols:
            by_kind = delta_m_by_kind(metrics, baseline, data)
            cells += [f"{by_kind[g]:+.2f}" for g in groups]
        if baseline:
            cells.append(f"{sum(changes.values()) / len(changes):+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
