"""Figures drawn from a History (pure functions: a History in, a matplotlib Figure out).

* :func:`signature_figure` — the side-by-side view: per-task loss curves (train and validation) and the
  effective weights on the left; on the right the gradient contributions — each task's share of the
  update over time, stacked (negative shares, i.e. a task pulled against the update, below zero) —
  and the pairwise cosines of the task gradients over time as a heat strip (orange: the tasks conflict).
* :func:`comparison_figure` — several runs overlaid: validation loss per task, and the task's metric
  where it is not the loss itself (no duplicated rows).
* :func:`gates_figure` — for mixture-of-experts models, each gate's mean weight per expert (the last
  model record, or the one at a given step) as a heat map: which experts each task uses.
* :func:`matrix_figure` — any square task × task matrix as an annotated heat map (the affinities of
  :mod:`mtl_lab.grouping`, a task-relation matrix Ω).

When the model has a regulariser (soft sharing's coupling penalty, the task-relation penalty), the
loss panel also draws its value per step as a black dash-dotted curve.

Every task keeps its colour *and* its second cue (:func:`mtl_lab.palette.task_linestyle`,
:func:`~mtl_lab.palette.task_marker`), so the figures read the same to a colour-blind reader and in
grey-scale print. Type is at least 9 pt: at the size the widgets and reports show a figure (90 px per inch,
rendered at twice that density by :func:`to_png` and :func:`save`) that is ≥ 11 px.

Figures are ``matplotlib.figure.Figure`` objects, not pyplot figures, so nothing accumulates in
pyplot's list of open figures when a live view redraws; :func:`to_png` renders one to bytes.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from mtl_lab.history import History
from mtl_lab.palette import cosine_color, method_color, task_color, task_linestyle, task_marker

RUN_DASHES = ["-", "--", ":", "-."]
SMALL = 9  # pt: legends and tick labels (≥ 11 px at the display density below)
DISPLAY_DPI = 90  # px per inch at which widgets and reports show a figure
DENSITY = 2  # pixels rendered per displayed pixel
HATCHES = ["", "//", "..", "xx", "\\\\", "oo", "++", "--"]  # the share band's second cue per task
COSINE_MAP = ListedColormap([cosine_color(-1 + 2 * k / 255) for k in range(256)], name="mtl_cosine")


def smooth(values: list[float], factor: float) -> list[float]:
    """Exponential moving average (``factor`` = weight of the past, 0 = no smoothing)."""
    out, avg = [], None
    for v in values:
        avg = v if avg is None else factor * avg + (1 - factor) * v
        out.append(avg)
    return out


def task_slots(history: History) -> list[int]:
    """Each task's palette slot (colour, dash, marker): its place in the data set the run was drawn from
    (``meta["task_slots"]``, written by the Lab, so an unticked task does not shift the others' colours), else
    its place in the run."""
    slots = history.meta.get("task_slots") or {}
    return [int(slots.get(name, i)) for i, name in enumerate(history.task_names)]


def draw_losses(ax: Axes, history: History, smoothing: float = 0.8, log: bool = True) -> None:
    """Training loss per step (smoothed) as lines in the task's colour and dash, validation loss per epoch
    as the task's markers."""
    steps = history.steps
    for i, (task, slot) in enumerate(zip(history.task_names, task_slots(history))):
        color = task_color(slot)
        if steps:
            ax.plot(steps, smooth([row[i] for row in history.losses], smoothing), color=color, lw=1.6,
                    ls=task_linestyle(slot), label=f"{task} train")
        val = [(e["step"], e["val_loss"][task]) for e in history.epochs if "val_loss" in e]
        if val:
            ax.plot([v[0] for v in val], [v[1] for v in val], ls="none", marker=task_marker(slot), color=color,
                    ms=4, markevery=max(1, len(val) // 12), label=f"{task} val")
    draw_regularizer(ax, history, smoothing)
    if log and any(v > 0 for row in history.losses for v in row):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Per-task loss (lines: train · markers: validation)")
    if history.task_names and (steps or history.epochs):
        ax.legend(fontsize=SMALL, ncol=2)


def draw_regularizer(ax: Axes, history: History, smoothing: float = 0.8) -> None:
    """The model's regulariser per step (``History.regularizer``), when it has one."""
    if not history.regularizer or len(history.regularizer) != len(history.steps):
        return
    ax.plot(history.steps, smooth(history.regularizer, smoothing), color="black", ls="-.", lw=1.3,
            label="regularizer")


def draw_weights(ax: Axes, history: History) -> None:
    """Effective weight of each task per step."""
    for i, (task, slot) in enumerate(zip(history.task_names, task_slots(history))):
        if history.steps:
            ax.plot(history.steps, [row[i] for row in history.weights], color=task_color(slot), lw=1.4,
                    ls=task_linestyle(slot), label=task)
    ax.set_xlabel("step")
    ax.set_ylabel("weight")
    ax.set_title("Effective task weights w_t")


def not_available(ax: Axes, history: History) -> bool:
    """Write why there is nothing to draw, when there are no gradient diagnostics."""
    if history.diagnostics:
        return False
    reason = history.meta.get("diagnostics") or "no gradient diagnostics recorded yet (diagnostics_every)"
    ax.text(0.5, 0.5, reason, ha="center", va="center", transform=ax.transAxes, fontsize=SMALL + 1, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    return True


def draw_shares(ax: Axes, history: History) -> None:
    """Contribution shares ``w_t g_t·d / ‖d‖²`` stacked: positive parts above 0, negative below.

    The shares sum to 1, but one may be negative — a task whose gradient points against the step (the
    step raises its loss) — and then the others add up to more than 1. The band says so in its title when
    it happens, and the negative parts are drawn paler, below 0. Each task has its colour and a hatch.
    """
    ax.set_title("Share of the update per task (sums to 1)")
    if not_available(ax, history):
        return
    steps = [d["step"] for d in history.diagnostics]
    T = history.n_tasks
    shares = [[d["shares"][t] for d in history.diagnostics] for t in range(T)]
    pos = [[max(v, 0.0) for v in row] for row in shares]
    neg = [[min(v, 0.0) for v in row] for row in shares]
    colors = [task_color(slot) for slot in task_slots(history)]
    hatches = [HATCHES[slot % len(HATCHES)] for slot in task_slots(history)]
    ax.stackplot(steps, pos, colors=colors, labels=history.task_names, alpha=0.85, hatch=hatches,
                 edgecolor="white", lw=0)
    if any(v < 0 for row in neg for v in row):
        ax.stackplot(steps, neg, colors=colors, alpha=0.45, hatch=hatches, edgecolor="white", lw=0)
        ax.set_title("Share of the update per task (sums to 1; below 0: that task's\n"
                     "gradient opposes the step, so the others add up to more than 1)")
    ax.axhline(1.0, color="black", lw=0.8, ls=":")
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("share")
    ax.legend(fontsize=SMALL, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def draw_cosines(ax: Axes, history: History) -> None:
    """``cos(g_i, g_j)`` of every task pair over time as a heat strip (one row per pair) on the diverging
    conflict scale of :func:`mtl_lab.palette.cosine_color`: orange < 0 (conflict) < white < blue."""
    ax.set_title("Gradient cosine per task pair (orange < 0: conflict)")
    if not_available(ax, history):
        return
    steps = [d["step"] for d in history.diagnostics]
    names = history.task_names
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    if not pairs:
        ax.text(0.5, 0.5, "one task: no pair to compare", ha="center", va="center", transform=ax.transAxes)
        return
    strip = [[d["cosines"][i][j] for d in history.diagnostics] for i, j in pairs]
    last = steps[-1] + (steps[-1] - steps[-2] if len(steps) > 1 else 1)
    image = ax.imshow(strip, cmap=COSINE_MAP, vmin=-1, vmax=1, aspect="auto", interpolation="nearest",
                      extent=(steps[0], last, len(pairs) - 0.5, -0.5))
    labels = [f"{names[i]}·{names[j]}" for i, j in pairs]
    ax.set_yticks(range(len(pairs)), labels if len(pairs) <= 15 else [""] * len(pairs), fontsize=SMALL)
    ax.set_xlabel("step")
    ax.figure.colorbar(image, ax=ax, ticks=[-1, 0, 1], label="cosine", shrink=0.9, pad=0.01)


def draw_norms(ax: Axes, history: History) -> None:
    """``‖g_t‖`` of every task over time (log scale)."""
    ax.set_title("Gradient norm per task")
    if not_available(ax, history):
        return
    steps = [d["step"] for d in history.diagnostics]
    for i, (task, slot) in enumerate(zip(history.task_names, task_slots(history))):
        ax.plot(steps, [d["norms"][i] for d in history.diagnostics], color=task_color(slot), lw=1.4,
                ls=task_linestyle(slot), label=task)
    if any(n > 0 for d in history.diagnostics for n in d["norms"]):
        ax.set_yscale("log")
    ax.set_xlabel("step")


def signature_figure(history: History, title: str | None = None, figsize: tuple[float, float] = (13, 7.5)) -> Figure:
    """Loss curves and weights (left) | gradient contributions and cosines (right)."""
    fig = Figure(figsize=figsize, layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 2])
    draw_losses(fig.add_subplot(grid[0, 0]), history)
    draw_weights(fig.add_subplot(grid[1, 0]), history)
    draw_shares(fig.add_subplot(grid[0, 1]), history)
    draw_cosines(fig.add_subplot(grid[1, 1]), history)
    method = history.meta.get("method", {}).get("name", "")
    fig.suptitle(title or f"{method} — {history.meta.get('data', {}).get('name', '')}".strip(" —"))
    return fig


def comparison_figure(histories: dict[str, History], figsize: tuple[float, float] | None = None) -> Figure:
    """Validation loss per task, one line per run, plus the task's validation metric where the metric is
    not the loss itself (an MSE metric of an MSE loss would repeat the panel). Panels wrap into at most four
    columns, so six tasks fit one 16:9 slide.

    A run is drawn in its method's colour (:mod:`mtl_lab.palette`); runs of the same method are told apart
    by the line's dash.
    """
    if not histories:
        raise ValueError("comparison_figure needs at least one History")
    tasks = list(next(iter(histories.values())).task_names)
    for label, h in histories.items():
        missing = [t for t in tasks if t not in h.task_names]
        if missing:
            raise ValueError(f"run {label!r} lacks task(s) {missing}")
    spec = {s["name"]: s for s in next(iter(histories.values())).meta.get("data", {}).get("tasks", [])}
    panels = []
    for task in tasks:
        loss, metric = spec.get(task, {}).get("loss", "loss"), spec.get(task, {}).get("metric", "metric")
        panels.append((task, "val_loss", f"{task}: validation loss ({loss})"))
        if metric != loss:
            panels.append((task, "val_metric", f"{task}: validation {metric}"))
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=figsize or (3.2 * cols + 0.6, 2.5 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    methods = [h.meta.get("method", {}).get("name", "") for h in histories.values()]
    dashes = [methods[:k].count(m) for k, m in enumerate(methods)]
    for ax, (task, key, title) in zip(axes.flat, panels):
        for k, (label, h) in enumerate(histories.items()):
            epochs, values = h.epoch_series(key, task)
            ax.plot(epochs, values, lw=1.5, color=method_color(methods[k]),
                    ls=RUN_DASHES[dashes[k] % len(RUN_DASHES)], label=label)
        ax.set_title(title, fontsize=SMALL + 1)
        ax.tick_params(labelsize=SMALL)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=SMALL)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside upper center", ncol=min(6, len(histories)),
               fontsize=SMALL + 1, frameon=False)
    return fig


def draw_matrix(ax: Axes, matrix: list[list[float]], rows: list[str], cols: list[str], title: str) -> None:
    """An annotated heat map (diverging colours centred on 0)."""
    limit = max((abs(v) for row in matrix for v in row), default=1.0) or 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=SMALL)
    ax.set_yticks(range(len(rows)), rows, fontsize=SMALL)
    if len(rows) * len(cols) <= 100:
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=SMALL)
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


def matrix_figure(matrix, names: list[str], title: str = "", figsize: tuple[float, float] = (5.5, 4.5)) -> Figure:
    """A square task × task matrix (list of lists or tensor) as a heat map; rows and columns are ``names``."""
    values = matrix.tolist() if hasattr(matrix, "tolist") else [list(r) for r in matrix]
    if len(values) != len(names) or any(len(r) != len(names) for r in values):
        raise ValueError(f"matrix must be {len(names)}×{len(names)} for tasks {names}")
    fig = Figure(figsize=figsize, layout="constrained")
    draw_matrix(fig.add_subplot(), values, names, names, title)
    return fig


def gates_figure(history: History, step: int | None = None, figsize: tuple[float, float] | None = None) -> Figure:
    """Mean gate weight per expert, one row per gate, from the model record at ``step`` (default: the last)."""
    records = [r for r in history.model_records if "gates" in r]
    if not records:
        raise ValueError("this History has no gate records (train an mmoe, omoe, cgc or ple model)")
    record = records[-1] if step is None else min(records, key=lambda r: abs(r["step"] - step))
    gates = record["gates"]
    names = history.meta.get("model", {}).get("gate_experts", {})
    fig = Figure(figsize=figsize or (7, 1.2 + 0.9 * len(gates)), layout="constrained")
    axes = fig.subplots(len(gates), 1, squeeze=False)
    for ax, (gate, weights) in zip(axes[:, 0], gates.items()):
        labels = names.get(gate, [f"expert {i}" for i in range(len(weights))])
        ax.imshow([weights], cmap="Blues", vmin=0, vmax=max(weights) or 1.0, aspect="auto")
        ax.set_xticks(range(len(weights)), labels, fontsize=SMALL)
        ax.set_yticks([0], [gate], fontsize=SMALL)
        for j, w in enumerate(weights):
            ax.text(j, 0, f"{w:.2f}", ha="center", va="center", fontsize=SMALL)
    fig.suptitle(f"Mean gate weight per expert (step {record['step']})")
    return fig


def to_png(fig: Figure, dpi: int = DISPLAY_DPI * DENSITY) -> bytes:
    """Render a figure to PNG bytes (for an ``ipywidgets.Image`` or a file) at twice the display density:
    show it at :func:`display_width` pixels and it is crisp on a high-density screen or a projector."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def display_width(fig: Figure) -> int:
    """The width in CSS pixels at which a figure rendered by :func:`to_png` is meant to be shown."""
    return round(fig.get_figwidth() * DISPLAY_DPI)


def save(fig: Figure, path: str | Path, dpi: int = DISPLAY_DPI * DENSITY) -> Path:
    """Write a figure to ``path`` (format from the suffix; ``.svg`` and ``.pdf`` are vector, a ``.png`` has
    twice the display density)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
