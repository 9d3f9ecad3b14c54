"""Comparing multi-task models: single-task baselines and the Δm % summary.

Δm % (Maninis, Radosavovic, Kokkinos, "Attentive Single-Tasking of Multiple Tasks", CVPR 2019; the
summary LibMTL reports) averages each task's relative change against its single-task baseline::

    Δm = 100/T · Σ_t (−1)^{l_t} (M_{m,t} − M_{b,t}) / M_{b,t}

with ``l_t = 1`` when lower is better for task ``t`` (a loss or an error) and ``l_t = 0`` when higher is
better (accuracy, IoU). Positive Δm: the multi-task model beats the single-task models on average.
"""

from __future__ import annotations

import math

from mtl_lab.data.base import MultiTaskData
from mtl_lab.history import History
from mtl_lab.train import build_trainer


def relative_change(value: float, baseline: float, higher_is_better: bool) -> float:
    """``(−1)^{l} (value − baseline) / baseline``: positive when ``value`` is the better one."""
    if not math.isfinite(value) or not math.isfinite(baseline):
        raise ValueError(f"metrics must be finite, got value={value!r}, baseline={baseline!r}")
    if baseline == 0:
        raise ValueError("a baseline metric of 0 makes the relative change undefined")
    sign = 1.0 if higher_is_better else -1.0
    return sign * (value - baseline) / abs(baseline)


def delta_m(metrics: dict[str, float], baseline: dict[str, float], higher_is_better: dict[str, bool]) -> float:
    """Δm in percent over the tasks of ``baseline`` (every one must be in ``metrics``)."""
    if not baseline:
        raise ValueError("delta_m needs at least one baseline task")
    missing = [t for t in baseline if t not in metrics or t not in higher_is_better]
    if missing:
        raise ValueError(f"no metric or direction for task(s) {missing}; metrics has {sorted(metrics)}")
    changes = [relative_change(metrics[t], baseline[t], higher_is_better[t]) for t in baseline]
    return 100.0 * sum(changes) / len(changes)


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
    """A Markdown table: one row per run, one column per task metric, and Δm % when a baseline is given."""
    names = data.task_names
    head = [f"{t} ({data.task(t).metric_name} {'↑' if data.task(t).higher_is_better else '↓'})" for t in names]
    cols = ["run", *head] + (["Δm %"] if baseline else [])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows = ([("single-task", baseline)] if baseline else []) + list(runs.items())
    for label, metrics in rows:
        cells = [label] + [f"{metrics[t]:.{digits}f}" if t in metrics else "—" for t in names]
        if baseline:
            cells.append(f"{delta_m(metrics, baseline, directions(data)):+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
