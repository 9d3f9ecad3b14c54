"""Preference-conditioned methods on the toy landscape: one run per preference, each landing on its ray.

EPO (:mod:`mtl_lab.weighting.epo`) and Pareto MTL (:mod:`mtl_lab.weighting.pareto_mtl`) take a
``preference``; run once per preference from the same start, they spread along the Pareto set instead of
stopping wherever the start leads (MGDA, PCGrad). The toy's losses go down to about −20 below the axis,
and both methods read the loss *values* (EPO takes their logarithm, Pareto MTL their direction), so they
see the losses shifted by :data:`LOSS_SHIFT` (``L + 21 ≥ 1``; the gradients do not change,
:func:`mtl_lab.toy.method_paths`'s ``loss_shift``). The rays are drawn in that shifted loss space:

* EPO's ray ``r_1 (L_1 + c) = r_2 (L_2 + c)``: the direction ``(1/r_1, 1/r_2)``;
* Pareto MTL's preference ``u`` is the direction ``(u_1, u_2)`` itself (its sector surrounds it).

:func:`preference_paths` runs them; :func:`preference_figure` draws the paths in parameter space and in
loss space with the rays and the Pareto front; :func:`ray_direction` gives each method's ray.
"""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure

from mtl_lab.palette import NEUTRAL, task_color
from mtl_lab.toy import problem as toy

LOSS_SHIFT = 21.0  # the toy's losses are ≥ −20.0: shifted, they are ≥ 1 (EPO takes their logarithm)
PREFERENCE_METHODS = ("epo", "pareto_mtl")


def ray_direction(method: str, preference: list[float]) -> tuple[float, float]:
    """The unit direction in (shifted) loss space that ``preference`` asks ``method`` to reach."""
    if method not in PREFERENCE_METHODS:
        raise ValueError(f"method {method!r} takes no preference; choose from {PREFERENCE_METHODS}")
    if len(preference) != 2 or not all(math.isfinite(v) and v > 0 for v in preference):
        raise ValueError(f"a toy preference is two finite numbers > 0, got {preference!r}")
    a, b = (1.0 / preference[0], 1.0 / preference[1]) if method == "epo" else (preference[0], preference[1])
    norm = math.hypot(a, b)
    return a / norm, b / norm


def preference_paths(
    method: str,
    preferences: list[list[float]],
    start: tuple[float, float] = (0.0, 0.0),
    steps: int = 1500,
    lr: float = 0.05,
    optimizer: str = "adam",
    loss_shift: float = LOSS_SHIFT,
    **options,
) -> list[toy.Trajectory]:
    """One :class:`mtl_lab.toy.Trajectory` of ``method`` per preference, all from ``start``."""
    for preference in preferences:
        ray_direction(method, preference)
    return [toy.method_paths(method, (start,), steps, lr, optimizer, {**options, "preference": list(p)},
                             loss_shift)[0] for p in preferences]


def angle_to_ray(path: toy.Trajectory, method: str, loss_shift: float = LOSS_SHIFT) -> float:
    """The angle in degrees between the run's final shifted loss vector and its preference's ray."""
    L = (path.losses[-1] + loss_shift).tolist()
    ray = ray_direction(method, path.options["preference"])
    cosine = (L[0] * ray[0] + L[1] * ray[1]) / math.hypot(*L)
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


def preference_figure(
    paths: list[toy.Trajectory],
    method: str,
    loss_shift: float = LOSS_SHIFT,
    pareto: torch.Tensor | None = None,
    figsize: tuple[float, float] = (10.5, 4.6),
) -> Figure:
    """Left: the paths on the contours of the mean loss, Pareto set in grey. Right: the same runs in
    shifted loss space, the Pareto front in grey, each preference's ray dashed in its run's colour."""
    pareto = pareto if pareto is not None else toy.pareto_set()
    X, Y, Z = toy.loss_grid(120)
    fig = Figure(figsize=figsize, layout="constrained")
    left, right = fig.subplots(1, 2)
    toy.draw_contours(left, X, Y, Z.mean(-1), "parameter space: mean loss")
    left.plot(pareto[:, 0].numpy(), pareto[:, 1].numpy(), "-", color=NEUTRAL, lw=5, alpha=0.6, label="Pareto set")
    front = toy.toy_losses(pareto) + loss_shift
    right.plot(front[:, 0].numpy(), front[:, 1].numpy(), "-", color=NEUTRAL, lw=5, alpha=0.6, label="Pareto front")
    reach = float(front.max()) * 1.3
    for k, path in enumerate(paths):
        colour = task_color(k + 2)  # not the first two task colours: L1 and L2 are the axes here
        preference = path.options["preference"]
        label = f"{method} {preference} ({angle_to_ray(path, method, loss_shift):.1f}° off its ray)"
        left.plot(path.points[:, 0].numpy(), path.points[:, 1].numpy(), "-", color=colour, lw=1.4)
        left.plot(*path.end, "o", color=colour, ms=5)
        shifted = path.losses + loss_shift
        right.plot(shifted[:, 0].numpy(), shifted[:, 1].numpy(), "-", color=colour, lw=1.2, label=label)
        right.plot(float(shifted[-1, 0]), float(shifted[-1, 1]), "o", color=colour, ms=6)
        a, b = ray_direction(method, preference)
        right.plot([0.0, reach * a], [0.0, reach * b], "--", color=colour, lw=0.9)
    if paths:
        left.plot(*paths[0].start, "o", color="black", ms=5)
    right.set_xlim(0.0, reach * 0.8)
    right.set_ylim(0.0, reach * 0.8)
    right.set_xlabel(f"L1 + {loss_shift:g}")
    right.set_ylabel(f"L2 + {loss_shift:g}")
    right.set_title("loss space: one run per preference, its ray dashed", fontsize=10)
    right.legend(fontsize=7, loc="upper right")
    left.legend(fontsize=7, loc="upper right")
    return fig
