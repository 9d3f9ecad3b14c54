"""The table at the end of a lab run: per-task test metrics, the single-task baselines and Δm %.

Δm (Maninis et al., CVPR 2019; :func:`mtl_lab.metrics.delta_m`) is the mean over tasks of the relative
change of the multi-task run's test metric against the same task trained alone, signed so that positive
means multi-task learning helps. The baselines are trained here with the run's own architecture and
training options (method ``equal`` on one task) and cached by :meth:`LabConfig.baseline_key`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from mtl_lab.history import History
from mtl_lab.metrics import delta_m, directions, percent, relative_changes
from mtl_lab.training import Trainer, build_trainer
from mtl_lab.widgets.common import html_table
from mtl_lab.widgets.config import LabConfig, selected_data


def single_task_baselines(config: LabConfig, cache: dict[str, float], halt: threading.Event,
                          say: Callable[[str], None],
                          track: Callable[[Trainer | None], None]) -> dict[str, float] | None:
    """Single-task test metrics for ``config``'s tasks, trained now unless in ``cache``; ``None`` when
    ``halt`` is set or a baseline did not complete. ``say`` reports progress; ``track`` is handed the
    baseline trainer while it trains (so Stop can reach it) and ``None`` after."""
    data = selected_data(config)
    out = {}
    for k, task in enumerate(data.task_names):
        key = config.baseline_key(task)
        if key not in cache:
            if halt.is_set():
                return None
            say(f"training the single-task baseline {k + 1}/{len(data.task_names)} ({task}) for Δm …")
            trainer = build_trainer(data.select([task]), config.architecture, "equal",
                                    config.model_options, **config.train_options())
            track(trainer)
            if halt.is_set():
                return None
            history = trainer.fit()
            track(None)
            if history.status != "completed":
                return None
            cache[key] = history.meta["test_metrics"][task]
        out[task] = cache[key]
    return out


def metrics_html(history: History, trainer: Trainer, baseline: dict[str, float] | None) -> str:
    """Per-task test metrics of the run, the single-task baselines and Δm % (when baselines are given)."""
    data = trainer.data
    names = data.task_names
    metrics = history.meta.get("test_metrics", {})
    header = ["run", *[f"{t} ({data.task(t).metric_name} {'↑' if data.task(t).higher_is_better else '↓'})"
                       for t in names]]
    rows = [[history.meta.get("method", {}).get("name", "run"), *[f"{metrics.get(t, math.nan):.4f}" for t in names]]]
    caption = "Test metrics"
    if baseline:
        up = directions(data)
        header.append("Δm %")
        rows[0].append(f"{delta_m(metrics, baseline, up):+.2f}")
        rows.append(["single-task", *[f"{baseline[t]:.4f}" for t in names], "0.00"])
        changes = relative_changes(metrics, baseline, up)
        rows.append(["relative change", *[percent(changes[t]) for t in names], "(mean →)"])
        caption += (" · Δm %: the mean of the per-task relative changes in the last row (positive: multi-task "
                    "helps); one task with a near-zero baseline can dominate it — read the row, not only the mean")
    return html_table(header, rows, caption)
