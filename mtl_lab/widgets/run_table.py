"""The table at the end of a lab run: per-task test metrics, the single-task baselines and Δm %.

Δm (Maninis et al., CVPR 2019; :func:`mtl_lab.metrics.delta_m`) is the mean over tasks of the relative
change of the multi-task run's test metric against the same task trained alone, signed so that positive
means multi-task learning helps. The baselines are trained here with the run's own architecture and
training options (method ``equal`` on one task) and cached by :meth:`LabConfig.baseline_key`.

A pixel task reports several metrics (mIoU and pixel accuracy; absolute and relative depth error; the
normals' mean and median angle and the shares within 11.25°, 22.5° and 30°), each with its direction: the
table has one row per metric (``task/metric``, :func:`mtl_lab.metrics.pixel_metrics`, summed over
the test split) and Δm is their mean, as LibMTL reports it on NYUv2; the caption gives the mean within
each task (:func:`mtl_lab.metrics.delta_m_by_task`), so the task with five metrics cannot hide the others.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from mtl_lab.data.base import MultiTaskData
from mtl_lab.history import History
from mtl_lab.metrics import delta_m, delta_m_by_task, percent, pixel_metrics, relative_changes
from mtl_lab.training import Trainer, build_trainer
from mtl_lab.widgets.common import html_table
from mtl_lab.widgets.config import LabConfig, selected_data
from mtl_lab.widgets.run_status import ProgressLine


def metric_columns(data: MultiTaskData) -> dict[str, bool]:
    """``{column: higher_is_better}`` of the table: a per-image task's metric under the task's name, every
    metric of a pixel task as ``task/metric``."""
    columns: dict[str, bool] = {}
    for task in data.tasks:
        if task.is_pixel:
            columns.update({f"{task.name}/{m}": up for m, up in task.metric_directions().items()})
        else:
            columns[task.name] = task.higher_is_better
    return columns


def run_results(trainer: Trainer) -> dict[str, float]:
    """The run's test metrics by :func:`metric_columns` key: the recorded test metric of a per-image task,
    every metric of a pixel task summed over the test split by the trained model."""
    data = trainer.data
    recorded = trainer.history.meta.get("test_metrics", {})
    out = {t.name: recorded.get(t.name, math.nan) for t in data.tasks if not t.is_pixel}
    if any(t.is_pixel for t in data.tasks):
        out.update(pixel_metrics(trainer.model, data, "test", trainer.config.batch_size))
    return out


def single_task_baselines(config: LabConfig, cache: dict[str, dict[str, float]], halt: threading.Event,
                          say: Callable[[str], None],
                          track: Callable[[Trainer | None], None]) -> dict[str, float] | None:
    """Single-task test metrics for ``config``'s tasks (by :func:`metric_columns` key), trained now unless in
    ``cache``; ``None`` when ``halt`` is set or a baseline did not complete. ``say`` reports progress (each
    baseline's own, with its own rate: :class:`~mtl_lab.widgets.run_status.ProgressLine`);
    ``track`` is handed the baseline trainer while it trains (so Stop can reach it) and ``None`` after."""
    data = selected_data(config)
    out = {}
    for k, task in enumerate(data.task_names):
        key = config.baseline_key(task)
        if key not in cache:
            if halt.is_set():
                return None
            label = f"single-task baseline {k + 1}/{len(data.task_names)} ({task}) for Δm"
            say(f"training the {label} …")
            trainer = build_trainer(data.select([task]), config.architecture, "equal",
                                    config.model_options, **config.train_options())
            trainer.records.callback = ProgressLine(trainer, label, say)  # its own progress and rate
            track(trainer)
            if halt.is_set():
                return None
            history = trainer.fit()
            track(None)
            if history.status != "completed":
                return None
            cache[key] = run_results(trainer)
        out.update(cache[key])
    return out


def metrics_html(history: History, trainer: Trainer, baseline: dict[str, float] | None) -> str:
    """One row per metric (:func:`metric_columns`): the run's test result and, when baselines are given, the
    single-task result and the relative change; then Δm % (a tall table: forty tasks or nine pixel metrics
    stay readable in the panel's width)."""
    data = trainer.data
    up = metric_columns(data)
    metrics = run_results(trainer)
    method = history.meta.get("method", {}).get("name", "run")
    header = ["metric", method, *(["single-task", "relative change"] if baseline else [])]
    rows = [[heading(data, c, up[c]), f"{metrics[c]:.4f}"] for c in up]
    caption = "Test metrics"
    if baseline:
        changes = relative_changes(metrics, baseline, up)
        for row, c in zip(rows, up):
            row += [f"{baseline[c]:.4f}", percent(changes[c])]
        rows.append(["Δm %", f"{delta_m(metrics, baseline, up):+.2f}", "0.00", "mean of the column"])
        caption += (" · Δm %: the mean of the relative changes in the last column (positive: multi-task helps); "
                    "one metric with a near-zero baseline can dominate it — read the column, not only the mean")
        if any(t.is_pixel for t in data.tasks):
            pixel = {c: v for c, v in metrics.items() if "/" in c}
            by_task = delta_m_by_task(pixel, {c: baseline[c] for c in pixel}, data)
            caption += " · Δm within each pixel task: " + ", ".join(
                f"{task} {percent(value)}" for task, value in by_task.items() if task != "all")
    return html_table(header, rows, caption)


def heading(data: MultiTaskData, column: str, higher_is_better: bool) -> str:
    """A metric's name in the table, with its direction: ``cls (accuracy ↑)``, ``segmentation/miou ↑``."""
    arrow = "↑" if higher_is_better else "↓"
    return f"{column} {arrow}" if "/" in column else f"{column} ({data.task(column).metric_name} {arrow})"
