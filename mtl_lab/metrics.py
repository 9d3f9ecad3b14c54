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

Front scores (:func:`hypervolume`, :func:`igd_plus`) judge a *set* of trade-off points at once. Both
take **minimisation** points — lower is better in every coordinate (losses, errors). A metric where
higher is better (accuracy, IoU) is negated by the caller before it is passed in
(:func:`minimisation_points` does it from a data set's directions).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mtl_lab.data.base import MultiTaskData
from mtl_lab.history import History
from mtl_lab.training import build_trainer
from mtl_lab.training.masks import SplitAccumulator


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


KIND_GROUPS = {
    "multiclass": "classification",
    "binary": "classification",
    "regression": "regression",
    "box": "box",
    "segmentation": "segmentation",
    "depth": "depth",
    "normals": "normals",
}


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


# ---------------------------------------------------------------- dense tasks: every metric of every task


@torch.no_grad()
def pixel_metrics(model: torch.nn.Module, data: MultiTaskData, split: str = "test", batch_size: int = 32) -> dict:
    """``{"task/metric": value}`` for every metric of every pixel task of ``data`` on ``split``.

    Accumulated over the whole split (:class:`mtl_lab.training.masks.SplitAccumulator`), labelled rows only.
    The model is left in the mode it was in.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split {split!r} is not one of ('train', 'val', 'test')")
    pixel = [t for t in data.tasks if t.is_pixel]
    if not pixel:
        raise ValueError(f"dataset {data.name!r} has no pixel tasks; its kinds are {[t.kind for t in data.tasks]}")
    part = getattr(data, split)
    device = next(model.parameters()).device
    accumulators = {t.name: SplitAccumulator(t) for t in pixel}
    was_training = model.training
    model.eval()
    for x, y, masks in part.batches(batch_size, with_mask=True):
        out = model(x.to(device))
        for name, acc in accumulators.items():
            mask = masks.get(name)
            acc.update(out[name], y[name].to(device), None if mask is None else mask.to(device))
    model.train(was_training)
    return {f"{name}/{metric}": value for name, acc in accumulators.items() for metric, value in acc.metrics().items()}


def pixel_directions(data: MultiTaskData) -> dict[str, bool]:
    """``{"task/metric": higher_is_better}`` of every metric of every pixel task (:func:`pixel_metrics`'s keys)."""
    return {f"{t.name}/{m}": up for t in data.tasks if t.is_pixel for m, up in t.metric_directions().items()}


def delta_m_by_task(metrics: dict[str, float], baseline: dict[str, float], data: MultiTaskData) -> dict[str, float]:
    """Δm % over each pixel task's own metrics (``"task/metric"`` keys), then ``"all"``: over every metric.

    ``"all"`` is the Δm that LibMTL and the NYUv2 tables report (the mean over all metrics of all tasks,
    so normals, with five metrics, weigh 5/9 on NYUv2); the per-task means show what it hides.
    """
    changes = relative_changes(metrics, baseline, pixel_directions(data))
    out: dict[str, float] = {}
    for task in data.tasks:
        mine = [v for key, v in changes.items() if key.split("/")[0] == task.name]
        if mine:
            out[task.name] = sum(mine) / len(mine)
    out["all"] = sum(changes.values()) / len(changes)
    return out
# ---------------------------------------------------------------------------------------------------
# Front scores: hypervolume and IGD+ (minimisation)


def as_points(name: str, points, n_objectives: int | None = None) -> np.ndarray:
    """``points`` as a float64 ``[N, M]`` array of finite numbers; ``ValueError`` naming what is wrong."""
    array = np.asarray(points, dtype=np.float64)
    if array.ndim == 1 and array.size == 0:
        array = array.reshape(0, n_objectives or 0)
    if array.ndim != 2:
        raise ValueError(f"{name} must be an [N, M] array (one row per point), got shape {array.shape}")
    if n_objectives is not None and array.shape[1] != n_objectives:
        raise ValueError(f"{name} has {array.shape[1]} objective(s) per point, expected {n_objectives}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values: {array.tolist()}")
    return array


def hypervolume(points, reference) -> float:
    """The hypervolume of ``points`` against ``reference``, exact, for 2 or 3 objectives (minimisation).

    Zitzler & Thiele, "Multiobjective Optimization Using Evolutionary Algorithms — A Comparative Case
    Study", PPSN 1998: the volume of the union of the boxes ``[p, reference]`` over the points ``p``,
    i.e. of the region that some point dominates and that dominates the reference. Larger is better.
    A point that is not strictly better than the reference in every coordinate adds nothing; dominated
    points and duplicates add nothing either.

    Algorithms (exact): two objectives — sort by the first coordinate and sweep, each point adding the
    rectangle between it and the best second coordinate so far, O(N log N). Three objectives — slice
    along the third coordinate: between consecutive levels the dominated region is the 2-D region of the
    points at or below the level, O(N² log N) (enough for the fronts of a sweep).
    """
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    if ref.shape[0] not in (2, 3):
        raise ValueError(
            f"hypervolume is exact for 2 or 3 objectives; the reference has {ref.shape[0]}: {ref.tolist()}")
    if not np.isfinite(ref).all():
        raise ValueError(f"reference must be finite, got {ref.tolist()}")
    P = as_points("points", points, ref.shape[0])
    P = P[(P < ref).all(axis=1)]
    if P.shape[0] == 0:
        return 0.0
    if ref.shape[0] == 2:
        return hypervolume_2d(P, ref)
    order = np.argsort(P[:, 2], kind="stable")
    P = P[order]
    levels = np.append(np.unique(P[:, 2]), ref[2])
    volume = 0.0
    for low, high in zip(levels[:-1], levels[1:]):
        volume += hypervolume_2d(P[P[:, 2] <= low, :2], ref[:2]) * (high - low)
    return float(volume)


def hypervolume_2d(P: np.ndarray, ref: np.ndarray) -> float:
    """Area dominated by the rows of ``P[N, 2]`` (all strictly below ``ref``) and bounded by ``ref``."""
    order = np.lexsort((P[:, 1], P[:, 0]))  # by x, ties by y
    area, best_y = 0.0, ref[1]
    for x, y in P[order]:
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(area)


def igd_plus(points, front) -> float:
    """IGD+ of ``points`` against a reference ``front`` (minimisation; smaller is better, 0 = covers it).

    Ishibuchi, Masuda, Tanigaki and Nojima, "Modified Distance Calculation in Generational Distance and
    Inverted Generational Distance", EMO 2015::

        IGD+(A, Z) = (1/|Z|) Σ_{z ∈ Z} min_{a ∈ A} ‖max(a − z, 0)‖₂

    Only the coordinates where ``a`` is worse than ``z`` count, so a point that dominates ``z`` is at
    distance 0 from it (IGD+ is weakly Pareto compliant, unlike IGD). Any number of objectives.
    """
    Z = as_points("front", front)
    if Z.shape[0] == 0:
        raise ValueError("igd_plus needs a reference front with at least one point")
    A = as_points("points", points, Z.shape[1])
    if A.shape[0] == 0:
        raise ValueError("igd_plus needs at least one point to score")
    excess = np.clip(A[None, :, :] - Z[:, None, :], 0.0, None)  # [|Z|, |A|, M]
    return float(np.sqrt((excess**2).sum(axis=2)).min(axis=1).mean())


def minimisation_points(metrics: list[dict[str, float]], higher_is_better: dict[str, bool]) -> np.ndarray:
    """``[N, T]`` rows in task order, negated where higher is better, so every coordinate is minimised."""
    return np.array([[-m[t] if up else m[t] for t, up in higher_is_better.items()] for m in metrics],
                    dtype=np.float64).reshape(len(metrics), len(higher_is_better))


def nadir_reference(points: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """A reference point: the worst value of each coordinate plus ``margin`` × its range (the usual choice
    when no natural reference exists; the extreme points then still add volume). Finite rows only."""
    if not margin >= 0:
        raise ValueError(f"margin must be ≥ 0, got {margin!r}")
    P = points[np.isfinite(points).all(axis=1)]
    if P.shape[0] == 0:
        raise ValueError("no point with finite values to place a reference")
    high, low = P.max(axis=0), P.min(axis=0)
    span = np.where(high > low, high - low, np.maximum(np.abs(high), 1.0))
    return high + margin * span
