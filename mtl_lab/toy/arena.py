"""The gradient arena: two or three task gradients in the plane and what each method makes of them.

A task gradient ``g_t`` is set by an angle (degrees, counter-clockwise from the x axis) and a length.
For every chosen method the arena calls :func:`mtl_lab.weighting.aggregate` on ``G = [g_1; g_2; …]``
and reports, from :func:`mtl_lab.gradients.diagnostics_from_gradients`:

* the combined update ``d`` and its length ``‖d‖``;
* the method's effective weights ``w`` (its ``Combination.weights``; ``d = Gᵀw`` unless it builds ``d``
  itself);
* each task's first-order loss change along a step of size ``lr``: ``ΔL_t ≈ −lr·g_t·d``
  (negative: the step lowers that task's loss; positive: the step hurts it);
* the pairwise cosines (below zero the tasks conflict: their half-planes of improvement disagree).

:func:`arena_figure` draws it: the task gradients as thin arrows, each method's ``d`` as a thick one,
and for each task the half-plane of directions that would *increase* its loss, shaded lightly, so a
conflict shows as a region every method must avoid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mtl_lab.gradients import diagnostics_from_gradients
from mtl_lab.palette import method_color, task_color
from mtl_lab.weighting import StepContext, aggregate, combination_for, create

# Preset gradients: (angle in degrees, length) per task, for two or three tasks.
PRESETS: dict[str, list[tuple[float, float]]] = {
    "aligned": [(10.0, 1.0), (40.0, 1.2), (70.0, 0.8)],
    "conflicting": [(0.0, 1.0), (135.0, 1.0), (250.0, 0.9)],
    "one dominates": [(0.0, 4.0), (120.0, 0.5), (220.0, 0.4)],
}


def gradients_from_polar(angles: list[float], lengths: list[float]) -> torch.Tensor:
    """``G[T, 2]`` with row ``t = lengths[t]·(cos angles[t], sin angles[t])`` (angles in degrees)."""
    if len(angles) != len(lengths) or not 1 <= len(angles) <= 3:
        raise ValueError(f"give 1 to 3 angles and as many lengths, got {len(angles)} and {len(lengths)}")
    rows = []
    for a, r in zip(angles, lengths):
        if not (math.isfinite(a) and math.isfinite(r)) or r < 0:
            raise ValueError(f"angle must be finite and length finite and ≥ 0, got angle={a!r}, length={r!r}")
        rows.append([r * math.cos(math.radians(a)), r * math.sin(math.radians(a))])
    return torch.tensor(rows, dtype=torch.float64)


def preset(name: str, n_tasks: int = 2) -> tuple[list[float], list[float]]:
    """Angles and lengths of a preset for ``n_tasks`` (2 or 3)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {list(PRESETS)}")
    if n_tasks not in (2, 3):
        raise ValueError(f"the arena shows 2 or 3 tasks, got {n_tasks}")
    rows = PRESETS[name][:n_tasks]
    return [a for a, _ in rows], [r for _, r in rows]


@dataclass(frozen=True)
class ArenaResult:
    """One method's answer: ``direction`` ``d[2]`` and the numbers shown (``error`` if it failed)."""

    method: str
    direction: list[float]
    weights: list[float]
    norm: float
    loss_change: list[float]
    error: str = ""


def combine_all(
    G: torch.Tensor,
    methods: list[str],
    losses: list[float] | None = None,
    lr: float = 1.0,
    options: dict[str, dict] | None = None,
    seed: int = 0,
) -> list[ArenaResult]:
    """Each method's combined update of ``G`` (via :func:`aggregate`) and its numbers.

    ``losses`` (default: every loss 1) are passed to the methods that use loss values; a method that
    fails (bad option, unsuitable input) gives a result with ``error`` set instead of raising.
    """
    G = torch.as_tensor(G, dtype=torch.float64)
    losses = losses if losses is not None else [1.0] * G.shape[0]
    out = []
    for method in methods:
        method_options = (options or {}).get(method, {})
        try:
            d = aggregate(method, G, losses, seed=seed, **method_options)
            weighting = create(method, **method_options)
            weighting.reset([f"task{t}" for t in range(G.shape[0])])
            ctx = StepContext(generator=torch.Generator().manual_seed(seed))
            weights = combination_for(weighting, G, torch.tensor(losses, dtype=G.dtype), ctx).weights
            diag = diagnostics_from_gradients(G, weights.to(G.dtype), d, lr)
        except (ValueError, RuntimeError) as exc:
            out.append(ArenaResult(method, [0.0, 0.0], [math.nan] * G.shape[0], math.nan,
                                   [math.nan] * G.shape[0], error=str(exc)))
            continue
        out.append(ArenaResult(method, d.tolist(), weights.tolist(), diag.direction_norm, diag.loss_change))
    return out


def cosines(G: torch.Tensor) -> list[list[float]]:
    """Pairwise cosines of the rows of ``G`` (0 where a row is zero)."""
    norms = G.norm(dim=1)
    outer = torch.outer(norms, norms)
    K = G @ G.T
    return torch.where(outer > 0, K / outer.clamp(min=1e-300), torch.zeros_like(K)).tolist()


def results_table(results: list[ArenaResult], task_names: list[str]) -> list[list[str]]:
    """Rows of strings: method, ‖d‖, one weight per task, one ΔL per task (for a table view)."""
    rows = []
    for r in results:
        if r.error:
            rows.append([r.method, "—", *["—"] * (2 * len(task_names)), r.error])
            continue
        rows.append([r.method, f"{r.norm:.3f}", *[f"{w:.3f}" for w in r.weights],
                     *[f"{c:+.3f}" for c in r.loss_change], ""])
    return rows


def draw_arena(ax: Axes, G: torch.Tensor, results: list[ArenaResult], task_names: list[str] | None = None) -> None:
    """Task gradients (thin), each method's ``d`` (thick), the half-planes where a task's loss rises shaded."""
    T = G.shape[0]
    task_names = task_names or [f"task {t + 1}" for t in range(T)]
    reach = max([float(G.norm(dim=1).max())] + [r.norm for r in results if not r.error and math.isfinite(r.norm)])
    lim = 1.25 * max(reach, 1e-6)
    for t in range(T):
        g = G[t]
        n = float(g.norm())
        if n > 0:  # the half-plane {v : g·v < 0}: moving there increases task t's loss
            u = (g / n).tolist()
            far = 4 * lim
            corner = [(-u[1] * far, u[0] * far), (-u[1] * far - u[0] * far, u[0] * far - u[1] * far),
                      (u[1] * far - u[0] * far, -u[0] * far - u[1] * far), (u[1] * far, -u[0] * far)]
            ax.fill([p[0] for p in corner], [p[1] for p in corner], color=task_color(t), alpha=0.07, lw=0)
        ax.annotate("", xy=(float(g[0]), float(g[1])), xytext=(0, 0),
                    arrowprops={"arrowstyle": "->", "color": task_color(t), "lw": 1.5})
        ax.text(float(g[0]) * 1.05, float(g[1]) * 1.05, f"g{t + 1} ({task_names[t]})", color=task_color(t),
                fontsize=9)
    for r in results:
        if r.error:
            continue
        color = method_color(r.method)
        ax.annotate("", xy=(r.direction[0], r.direction[1]), xytext=(0, 0),
                    arrowprops={"arrowstyle": "-|>", "color": color, "lw": 2.6, "alpha": 0.85})
        ax.plot([], [], color=color, lw=2.6, label=f"{r.method}: ‖d‖={r.norm:.2f}")
    ax.axhline(0, color="black", lw=0.5)
    ax.axvline(0, color="black", lw=0.5)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_title("task gradients (thin), combined updates d (thick);\nshaded: where a task's loss would rise",
                 fontsize=9)
    if results:
        ax.legend(fontsize=9, loc="lower left")


def arena_figure(G: torch.Tensor, results: list[ArenaResult], task_names: list[str] | None = None,
                 figsize: tuple[float, float] = (5.2, 5.2), fig: Figure | None = None) -> Figure:
    """A figure with :func:`draw_arena` (``fig`` is cleared and reused when given)."""
    if fig is None:
        fig = Figure(figsize=figsize)
    fig.clear()
    draw_arena(fig.add_subplot(1, 1, 1), G, results, task_names)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.07)
    return fig
