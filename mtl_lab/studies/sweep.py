"""The Pareto sweep: train briefly for many static weightings and see the trade-off they trace.

For two tasks the weights run over log-spaced ratios ``w_1 : w_2`` (:func:`ratio_grid`); for three,
over a grid on the simplex ``w_1 + w_2 + w_3 = 1`` (:func:`simplex_grid`). Each weight vector trains
one model with the ``static`` method (same seed, same initial weights, same batches: only the
weighting differs), and its final per-task metrics become one point. The points that no other point
beats on every task form the empirical trade-off front (:func:`front`). Adaptive methods (MGDA,
uncertainty weighting, …) are trained with the same budget and marked on the same axes: do they land
on the front, and where?

:func:`sweep` returns a :class:`SweepResult`; :func:`front_figure` draws it.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure

from mtl_lab.data.base import MultiTaskData
from mtl_lab.metrics import hypervolume, minimisation_points, nadir_reference
from mtl_lab.palette import method_color
from mtl_lab.training import build_trainer

METHOD_MARKERS = ["*", "P", "X", "D", "s", "^", "v", "p"]


def ratio_grid(points: int = 7, span: float = 100.0) -> list[list[float]]:
    """Two-task weights ``[w, 1 − w]`` whose ratios ``w_1/w_2`` are log-spaced in ``[1/span, span]``."""
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an int ≥ 2, got {points!r}")
    if not span > 1:
        raise ValueError(f"span must be > 1, got {span!r}")
    out = []
    for i in range(points):
        ratio = span ** (2 * i / (points - 1) - 1)
        out.append([ratio / (1 + ratio), 1 / (1 + ratio)])
    return out


def simplex_grid(n_tasks: int = 3, resolution: int = 4, interior: bool = True) -> list[list[float]]:
    """Weights ``k/resolution`` on the simplex; ``interior=True`` leaves out vectors with a zero weight."""
    if n_tasks < 2:
        raise ValueError(f"a sweep needs at least 2 tasks, got {n_tasks}")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be a positive int, got {resolution!r}")
    low = 1 if interior else 0
    out = []
    for counts in itertools.product(range(low, resolution + 1), repeat=n_tasks - 1):
        last = resolution - sum(counts)
        if last >= low:
            out.append([c / resolution for c in (*counts, last)])
    if not out:
        raise ValueError(f"resolution {resolution} leaves no interior point for {n_tasks} tasks; raise it")
    return out


def weight_grid(n_tasks: int, points: int = 7) -> list[list[float]]:
    """:func:`ratio_grid` for two tasks, :func:`simplex_grid` (``points`` as resolution) for more."""
    return ratio_grid(points) if n_tasks == 2 else simplex_grid(n_tasks, points)


@dataclass
class SweepPoint:
    """One trained model: its ``label``, ``method`` and static ``weights`` (``None`` for adaptive methods)."""

    label: str
    method: str
    weights: list[float] | None
    metrics: dict[str, float]
    status: str = "completed"


@dataclass
class SweepResult:
    """Static-weight points, adaptive-method points, and the facts needed to judge them."""

    task_names: list[str]
    higher_is_better: dict[str, bool]
    metric_names: dict[str, str]
    split: str
    static: list[SweepPoint] = field(default_factory=list)
    adaptive: list[SweepPoint] = field(default_factory=list)

    def front(self) -> list[int]:
        """Indices of the static points that no other static point dominates."""
        return front([p.metrics for p in self.static], self.higher_is_better)

    def scores(self, margin: float = 0.1) -> dict:
        """Front scores (:func:`mtl_lab.metrics.hypervolume`, metrics where higher is better negated):
        the reference is the worst finite value of each metric over every point plus ``margin`` × its
        range; ``hv_static`` is the static points' hypervolume and ``hv_with[method]`` that hypervolume
        with the method's point added (larger than ``hv_static``: the method reaches beyond the front).
        ``None`` values when the tasks are not 2 or 3 or no point is finite."""
        points = minimisation_points([p.metrics for p in self.static + self.adaptive], self.higher_is_better)
        finite = np.isfinite(points).all(axis=1)
        if len(self.task_names) not in (2, 3) or not finite.any():
            return {"reference": None, "hv_static": None, "hv_with": {}}
        reference = nadir_reference(points, margin)
        n = len(self.static)
        static = points[:n][finite[:n]]
        hv = hypervolume(static, reference)
        hv_with = {p.method: hypervolume(np.vstack([static, points[n + k: n + k + 1]]), reference)
                   for k, p in enumerate(self.adaptive) if finite[n + k]}
        return {"reference": reference.tolist(), "hv_static": hv, "hv_with": hv_with}

    def scores_text(self) -> str:
        """One line: the static front's hypervolume and what each adaptive method adds to it."""
        s = self.scores()
        if s["hv_static"] is None:
            return "hypervolume: needs 2 or 3 tasks with finite metrics"
        added = ", ".join(f"{m} {v - s['hv_static']:+.3g}" for m, v in s["hv_with"].items())
        unscored = [p.method for p in self.adaptive if p.method not in s["hv_with"]]
        return (f"hypervolume of the static points {s['hv_static']:.4g} (reference: worst metric + 10 % of "
                f"its range; ↑ negated)" + (f"; added by {added}" if added else "")
                + (f"; not scored (non-finite metrics): {', '.join(unscored)}" if unscored else ""))

    def to_dict(self) -> dict:
        def rows(points):
            return [{"label": p.label, "method": p.method, "weights": p.weights, "metrics": p.metrics,
                     "status": p.status} for p in points]

        return {"task_names": self.task_names, "higher_is_better": self.higher_is_better,
                "metric_names": self.metric_names, "split": self.split,
                "static": rows(self.static), "adaptive": rows(self.adaptive), "front": self.front()}


def dominates(a: dict[str, float], b: dict[str, float], higher_is_better: dict[str, bool]) -> bool:
    """``a`` is at least as good as ``b`` on every task and better on one."""
    better = False
    for task, up in higher_is_better.items():
        x, y = (a[task], b[task]) if up else (-a[task], -b[task])
        if x < y:
            return False
        better = better or x > y
    return better


def front(metrics: list[dict[str, float]], higher_is_better: dict[str, bool]) -> list[int]:
    """Indices of the non-dominated entries of ``metrics`` (NaN metrics never make the front)."""
    ok = [i for i, m in enumerate(metrics) if all(math.isfinite(m[t]) for t in higher_is_better)]
    return [i for i in ok if not any(dominates(metrics[j], metrics[i], higher_is_better) for j in ok if j != i)]


def sweep(
    data: MultiTaskData,
    weights: list[list[float]] | None = None,
    methods: tuple[str, ...] | list[str] = ("equal", "mgda"),
    architecture: str = "hard",
    model_options: dict | None = None,
    method_options: dict[str, dict] | None = None,
    split: str = "val",
    progress: Callable[[int, int, str], None] | None = None,
    stop: threading.Event | None = None,
    **train_options,
) -> SweepResult:
    """Train one static-weight model per weight vector and one per adaptive method; collect metrics.

    Args:
        data: the data set (its tasks set the number of weights).
        weights: the weight vectors (default :func:`weight_grid` of the number of tasks).
        methods: adaptive methods to mark (any registry names).
        split: whose final metrics are compared: ``val`` (the last epoch's) or ``test``.
        progress: called as ``progress(done, total, label)`` before each training.
        stop: when this event is set, the sweep ends after the current training (partial result).
        train_options: passed to :func:`mtl_lab.training.build_trainer` (``epochs``, ``lr``, ``seed`` …).
    """
    if split not in ("val", "test"):
        raise ValueError(f"split {split!r} is not one of ('val', 'test')")
    T = len(data.task_names)
    weights = weights if weights is not None else weight_grid(T)
    for w in weights:
        if len(w) != T:
            raise ValueError(f"weights {w} has {len(w)} entries, the data has {T} tasks ({data.task_names})")
    result = SweepResult(
        task_names=list(data.task_names),
        higher_is_better={t.name: t.higher_is_better for t in data.tasks},
        metric_names={t.name: t.metric_name for t in data.tasks},
        split=split,
    )
    jobs = [("static", list(w)) for w in weights] + [(m, None) for m in methods]
    options = method_options or {}
    for i, (method, w) in enumerate(jobs):
        if stop is not None and stop.is_set():
            break
        label = "w=" + ":".join(f"{v:.2g}" for v in w) if w is not None else method
        if progress is not None:
            progress(i, len(jobs), label)
        m_options = {"weights": w} if w is not None else dict(options.get(method, {}))
        trainer = build_trainer(data, architecture, method, model_options, m_options, **train_options)
        history = trainer.fit()
        metrics = history.final_metrics(split)
        point = SweepPoint(label, method, w, {t: float(metrics.get(t, math.nan)) for t in data.task_names},
                           history.status)
        (result.static if w is not None else result.adaptive).append(point)
    if progress is not None:
        progress(len(jobs), len(jobs), "done")
    return result


def front_figure(result: SweepResult, figsize: tuple[float, float] | None = None, fig: Figure | None = None) -> Figure:
    """One panel per task pair: static points (colour = weight of the first task of the pair), the front
    joined by a line, adaptive methods as large markers."""
    pairs = list(itertools.combinations(result.task_names, 2))
    if fig is None:
        fig = Figure(figsize=figsize or (5.2 * len(pairs) + 0.6, 4.4), layout="constrained")
    fig.clear()
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    on_front = set(result.front())
    for ax, (a, b) in zip(axes, pairs):
        ia, ib = result.task_names.index(a), result.task_names.index(b)
        xs = [p.metrics[a] for p in result.static]
        ys = [p.metrics[b] for p in result.static]
        share = [p.weights[ia] / max(p.weights[ia] + p.weights[ib], 1e-12) for p in result.static]
        if xs:
            dots = ax.scatter(xs, ys, c=share, cmap="Greys", vmin=0, vmax=1, s=30, zorder=3,
                              edgecolors="black", linewidths=0.4, label="static weights")
            fig.colorbar(dots, ax=ax, fraction=0.05, pad=0.02).set_label(f"w_{a} / (w_{a} + w_{b})", fontsize=9)
        best = sorted((p.metrics[a], p.metrics[b]) for k, p in enumerate(result.static) if k in on_front)
        if len(best) > 1 and len(result.task_names) == 2:
            ax.plot([q[0] for q in best], [q[1] for q in best], "-", color="grey", lw=1.2, zorder=2,
                    label="front")
        for k, p in enumerate(result.adaptive):
            ax.plot(p.metrics[a], p.metrics[b], METHOD_MARKERS[k % len(METHOD_MARKERS)], ms=11, zorder=4,
                    color=method_color(p.method), markeredgecolor="black", label=p.method)
        arrow = {True: "↑", False: "↓"}
        ax.set_xlabel(f"{a}: {result.split} {result.metric_names[a]} {arrow[result.higher_is_better[a]]}")
        ax.set_ylabel(f"{b}: {result.split} {result.metric_names[b]} {arrow[result.higher_is_better[b]]}")
        ax.legend(fontsize=9)
    fig.suptitle("Trade-off of static weightings; adaptive methods marked\n" + result.scores_text(), fontsize=10)
    return fig
