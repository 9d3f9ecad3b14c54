"""The two-task toy problem of CAGrad, and method trajectories on it.

Source: Bo Liu, Xingchao Liu, Xiaojie Jin, Peter Stone and Qiang Liu, "Conflict-Averse Gradient Descent
for Multi-task Learning", NeurIPS 2021, the toy example (their Figure 1) and its public code. A point
``x = (x1, x2)`` in the plane has two losses. Above the ``x1`` axis each loss is a logarithmic valley,
below it a shallow quadratic bowl; ``tanh`` blends the two halves::

    a1 = log(max(|0.5·(−x1 − 7) − tanh(−x2)|,     5e-6)) + 6
    a2 = log(max(|0.5·(−x1 + 3) + tanh(−x2) + 2|, 5e-6)) + 6
    b1 = ((−x1 + 7)² + 0.1·(−x2 − 8)²) / 10 − 20
    b2 = ((−x1 − 7)² + 0.1·(−x2 − 8)²) / 10 − 20
    c_up   = max(tanh( x2 / 2), 0)
    c_down = max(tanh(−x2 / 2), 0)
    L1 = c_up·a1 + c_down·b1        L2 = c_up·a2 + c_down·b2

The minimum of ``L1`` is near ``(7, −8.36)``, that of ``L2`` near ``(−7, −8.36)``; between them lies the
Pareto set, a nearly flat segment, whose midpoint ``(0, −8.36)`` minimises the mean loss. The paper
starts its runs at ``(−8.5, 7.5)``, ``(−8.5, −5)`` and ``(9, 9)`` (:data:`PAPER_STARTS`) and shows that
descending the mean loss stalls in a valley, MGDA and PCGrad stop at arbitrary Pareto points, and CAGrad
heads for the mean-loss optimum.

:func:`trajectories` runs registered weighting methods here without a Trainer. The defaults are the
paper's settings — Adam with ``lr = 1e-3`` for 100 000 steps (:data:`PAPER_LR`, :data:`PAPER_STEPS`),
from :data:`PAPER_STARTS` — under which descent on the mean loss stays in the valleys from
``(−8.5, 7.5)`` and ``(9, 9)`` (ending near ``(−5.04, 2.1)`` and ``(5.05, 2.3)``) while CAGrad (``c = 0.5``)
reaches the balanced point ``(0, −8.3551)`` from all three starts. (Larger steps change the story: with
Adam at ``lr = 0.05`` for 1000 steps the mean gradient jumps out of the valleys and CAGrad does not yet
arrive.) Two paths compute the same trajectories:

* equal, MGDA, PCGrad and CAGrad (default solver options) run all starts × methods at once in
  :mod:`mtl_lab.toy.batched`: closed-form gradients, two-task closed forms of the methods, Adam
  written out on the batch (100 000 steps of 4 methods × 3 starts take seconds);
* every other method follows the per-step path: at each point the two gradients come from
  ``torch.autograd`` (the rows of ``G[2, 2]``), the method combines them as in
  :func:`mtl_lab.weighting.aggregate` (one instance kept over the whole run, so stateful methods act as
  in training), and ``torch.optim`` moves the point along the combined direction.

The two agree to rounding (``tests/test_toy.py``). A path keeps every k-th point (at most
``max_points``, 2001 by default, the start and the end included), enough to draw it.

Loss-based methods that need positive losses (inverse-loss, IMTL-L, …) meet negative losses below the
axis; their run ends with the method's error message. ``loss_shift`` adds a constant to the losses the
method sees (the gradients do not change) for such methods.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mtl_lab.palette import method_color
from mtl_lab.toy import batched as toy_batched
from mtl_lab.weighting import StepContext, available, combination_for, create

LOWER = 5e-6  # the floor under the logarithms' arguments in the paper's code
PAPER_STARTS: tuple[tuple[float, float], ...] = ((-8.5, 7.5), (-8.5, -5.0), (9.0, 9.0))
MORE_STARTS: tuple[tuple[float, float], ...] = ((-7.5, -0.5), (9.0, -1.0), (0.0, 9.0))
EXTENT = 10.0  # the plots show [-EXTENT, EXTENT]²
TASK_NAMES = ("L1", "L2")
OPTIMIZERS = ("adam", "sgd")
PAPER_LR = 1e-3  # the paper's Adam learning rate ...
PAPER_STEPS = 100_000  # ... and number of steps (its public code)
MAX_POINTS = 2001  # a path keeps at most this many points (every k-th step)
PROGRESS_EVERY = 20  # steps of the per-step path between two progress calls (about 0.05 s: Stop is prompt)


def toy_losses(points: torch.Tensor) -> torch.Tensor:
    """The two losses at ``points[..., 2]``: returns ``[..., 2]`` (``L1``, ``L2``), differentiable."""
    points = torch.as_tensor(points)
    if points.shape[-1] != 2:
        raise ValueError(f"points must have a last dimension of 2 (x1, x2), got shape {tuple(points.shape)}")
    if not points.dtype.is_floating_point:
        points = points.double()
    x1, x2 = points[..., 0], points[..., 1]
    a1 = torch.clamp((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), LOWER).log() + 6
    a2 = torch.clamp((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), LOWER).log() + 6
    b1 = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    b2 = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    up = torch.clamp(torch.tanh(x2 / 2), 0)
    down = torch.clamp(torch.tanh(-x2 / 2), 0)
    return torch.stack([up * a1 + down * b1, up * a2 + down * b2], dim=-1)


def toy_gradients(points: torch.Tensor | tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Losses and gradient matrices at one point or a batch of points.

    For ``points[2]``: the losses ``L[2]`` and ``G[2, 2]`` (row ``t`` = ∇L_t). For ``points[S, 2]``:
    ``L[S, 2]`` and ``G[S, 2, 2]``. One backward pass serves all: each point is copied once per task and
    task ``t``'s loss is taken on copy ``t``.
    """
    x = torch.as_tensor(points, dtype=torch.float64).detach()
    single = x.dim() == 1
    x = x.reshape(-1, 2)
    copies = x.unsqueeze(1).expand(x.shape[0], 2, 2).clone().requires_grad_(True)
    losses = toy_losses(copies).diagonal(dim1=1, dim2=2)  # [S, 2]: task t on copy t
    (G,) = torch.autograd.grad(losses.sum(), copies)
    losses = losses.detach()
    return (losses[0], G[0]) if single else (losses, G)


@dataclass
class Trajectory:
    """One method's path from one start, kept every ``step_index[1] − step_index[0]`` steps.

    Attributes:
        method: registry name; ``start``: the first point; ``options``: the method's hyper-parameters.
        step_index: ``[R]`` the step numbers of the kept rows (0 first, the last step taken last).
        points: ``[R, 2]`` positions after those steps; ``losses``: ``[R, 2]`` the losses there.
        weights: ``[R−1, 2]`` effective weights of the step taken from each kept point but the last;
            ``directions``: ``[R−1, 2]`` the combined updates of those steps.
        error: the method's message when it could not go on (``""`` otherwise).
    """

    method: str
    start: tuple[float, float]
    points: torch.Tensor
    losses: torch.Tensor
    weights: torch.Tensor
    directions: torch.Tensor
    step_index: torch.Tensor
    error: str = ""
    options: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """The number of steps taken."""
        return int(self.step_index[-1])

    @property
    def end(self) -> tuple[float, float]:
        x1, x2 = self.points[-1].tolist()
        return x1, x2

    def points_upto(self, step: int) -> torch.Tensor:
        """The kept points up to step ``step`` (for replaying the run)."""
        return self.points[: int((self.step_index <= step).sum())]


Progress = Callable[[float], bool]  # called with the fraction done; returns False to stop


def check_run_options(
    steps: int,
    lr: float,
    optimizer: str,
    starts: tuple[tuple[float, float], ...] = PAPER_STARTS,
    max_points: int = MAX_POINTS,
) -> None:
    """The one place that decides which run options are allowed (the widget shows these messages)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) or not lr > 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r} is not one of {OPTIMIZERS}")
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2:
        raise ValueError(f"max_points must be an int ≥ 2 (the start and the end), got {max_points!r}")
    if not starts:
        raise ValueError("starts is empty: give at least one (x1, x2)")
    for start in starts:
        ok = isinstance(start, tuple | list) and len(start) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in start)
        if not ok:
            raise ValueError(f"start {start!r} is not a point (x1, x2) of two finite numbers")


def check_methods(methods: list[str] | tuple[str, ...], options: dict[str, dict] | None = None) -> None:
    """Unknown methods, or options a method does not take, raise ValueError naming what is allowed."""
    if isinstance(methods, str) or not methods:
        raise ValueError(f"methods must be a non-empty list of registry names, got {methods!r}")
    names = [name for name, _ in available()]
    unknown = [m for m in methods if m not in names]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {names}")
    for method in methods:
        create(method, **(options or {}).get(method, {}))  # the method's own constructor checks its options


def method_paths(
    method: str,
    starts: tuple[tuple[float, float], ...] = PAPER_STARTS,
    steps: int = PAPER_STEPS,
    lr: float = PAPER_LR,
    optimizer: str = "adam",
    method_options: dict | None = None,
    loss_shift: float = 0.0,
    seed: int = 0,
    max_points: int = MAX_POINTS,
    progress: Progress | None = None,
    vectorised: bool = True,
) -> list[Trajectory]:
    """Follow ``method``'s combined direction from each start for ``steps`` optimiser steps.

    The batched path (:mod:`mtl_lab.toy.batched`) serves the methods it knows unless ``vectorised`` is
    False; otherwise :func:`stepwise_paths` does.
    """
    check_run_options(steps, lr, optimizer, starts, max_points)
    check_methods([method], {method: method_options or {}})
    if vectorised and toy_batched.can_vectorise(method, method_options):
        return batched_paths([method], starts, steps, lr, optimizer, {method: method_options or {}}, max_points,
                             progress)[method]
    return stepwise_paths(method, starts, steps, lr, optimizer, method_options, loss_shift, seed, max_points,
                          progress)


def batched_paths(
    methods: list[str],
    starts: tuple[tuple[float, float], ...],
    steps: int,
    lr: float,
    optimizer: str,
    options: dict[str, dict],
    max_points: int,
    progress: Progress | None = None,
) -> dict[str, list[Trajectory]]:
    """All ``methods`` × ``starts`` at once with :func:`mtl_lab.toy.batched.integrate`."""
    every = toy_batched.record_stride(steps, max_points)
    result = toy_batched.integrate(methods, [tuple(map(float, s)) for s in starts], steps, lr, optimizer,
                                   options, every, progress)
    out = {}
    for method in methods:
        arrays = {k: torch.from_numpy(v) for k, v in result[method].items()}
        out[method] = [
            Trajectory(method=method, start=(float(start[0]), float(start[1])), points=arrays["points"][i],
                       losses=arrays["losses"][i], weights=arrays["weights"][i],
                       directions=arrays["directions"][i], step_index=arrays["step"],
                       options=dict(options.get(method, {})))
            for i, start in enumerate(starts)
        ]
    return out


def stepwise_paths(
    method: str,
    starts: tuple[tuple[float, float], ...],
    steps: int,
    lr: float,
    optimizer: str,
    method_options: dict | None,
    loss_shift: float,
    seed: int,
    max_points: int,
    progress: Progress | None = None,
) -> list[Trajectory]:
    """The per-step path: the method's own ``combine`` at every step.

    Each step, for every start: ``L, G`` at the current point (:func:`toy_gradients`); the start's own
    method instance (created once, reset to the tasks ``L1, L2``) sees ``L + loss_shift`` and ``G`` and
    returns weights and maybe a direction ``d`` (else ``d = Gᵀw``); the optimiser (``adam`` or plain
    ``sgd``, elementwise, so one per start) takes ``x.grad = d``. A method error ends that start's path
    early and is kept in ``Trajectory.error``; the others go on. ``progress`` is called every
    :data:`PROGRESS_EVERY` steps; when it returns False every path ends where it is.
    """
    methods = [create(method, **(method_options or {})) for _ in starts]
    for weighting in methods:
        weighting.reset(list(TASK_NAMES))
    x = torch.tensor([[float(a), float(b)] for a, b in starts], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([x], lr=lr) if optimizer == "adam" else torch.optim.SGD([x], lr=lr)
    generators = [torch.Generator().manual_seed(seed + i) for i in range(len(starts))]
    every = toy_batched.record_stride(steps, max_points)
    S = len(starts)
    kept: list[list[int]] = [[0] for _ in range(S)]  # step numbers of the kept points
    points = [[x[i].detach().clone()] for i in range(S)]
    weights: list[list[torch.Tensor]] = [[] for _ in range(S)]
    directions: list[list[torch.Tensor]] = [[] for _ in range(S)]
    first: list[tuple[float, ...] | None] = [None] * S
    errors = [""] * S
    taken = [0] * S  # steps taken by each path
    final: list[torch.Tensor | None] = [None] * S  # where a path that ended early stopped
    for step in range(steps):
        if progress is not None and step and step % PROGRESS_EVERY == 0 and not progress(step / steps):
            break
        live = [i for i in range(S) if not errors[i]]
        if not live:
            break
        L, G = toy_gradients(x.detach())
        grad = torch.zeros_like(x)
        moved = []
        for i in live:
            seen = L[i] + loss_shift
            first[i] = first[i] or tuple(seen.tolist())
            ctx = StepContext(step=step, first_losses=first[i], generator=generators[i], lr=lr)
            try:
                comb = combination_for(methods[i], G[i], seen, ctx)
            except (ValueError, RuntimeError) as exc:
                errors[i], final[i] = f"{method} stopped at step {step}: {exc}", x[i].detach().clone()
                continue
            d = comb.direction if comb.direction is not None else comb.weights.to(G.dtype) @ G[i]
            grad[i] = d.detach()
            moved.append(i)
            if step % every == 0:
                weights[i].append(comb.weights.detach().to(torch.float64))
                directions[i].append(grad[i].clone())
        opt.zero_grad()
        x.grad = grad
        opt.step()
        after = toy_losses(x.detach())
        for i in moved:
            taken[i] = step + 1
            if methods[i].needs_losses_after_step:
                try:
                    methods[i].after_step(after[i] + loss_shift, ctx)
                except (ValueError, RuntimeError) as exc:
                    errors[i], final[i] = f"{method} stopped at step {step}: {exc}", x[i].detach().clone()
                    continue
            if (step + 1) % every == 0 or step + 1 == steps:
                kept[i].append(step + 1)
                points[i].append(x[i].detach().clone())
    out = []
    for i, start in enumerate(starts):
        if taken[i] > kept[i][-1]:  # ended between two kept points: keep where it stopped
            kept[i].append(taken[i])
            points[i].append(final[i] if final[i] is not None else x[i].detach().clone())
        path = torch.stack(points[i])
        empty = torch.zeros(0, 2, dtype=torch.float64)
        out.append(Trajectory(
            method=method,
            start=(float(start[0]), float(start[1])),
            points=path,
            losses=toy_losses(path),
            weights=torch.stack(weights[i]) if weights[i] else empty,
            directions=torch.stack(directions[i]) if directions[i] else empty,
            step_index=torch.tensor(kept[i]),
            error=errors[i],
            options=dict(method_options or {}),
        ))
    return out


def trajectory(method: str, start: tuple[float, float], **kwargs) -> Trajectory:
    """One start's path; ``kwargs`` as for :func:`method_paths`."""
    return method_paths(method, (start,), **kwargs)[0]


def trajectories(
    methods: list[str] | tuple[str, ...],
    starts: tuple[tuple[float, float], ...] = PAPER_STARTS,
    options: dict[str, dict] | None = None,
    steps: int = PAPER_STEPS,
    lr: float = PAPER_LR,
    optimizer: str = "adam",
    loss_shift: float = 0.0,
    seed: int = 0,
    max_points: int = MAX_POINTS,
    progress: Progress | None = None,
    vectorised: bool = True,
) -> dict[str, list[Trajectory]]:
    """``{method: [one Trajectory per start]}``; ``options[method]`` are its hyper-parameters.

    The methods :mod:`mtl_lab.toy.batched` knows run together in one batch, the others one by one on
    the per-step path. ``progress`` (optional) is called with the fraction done, a few times a second;
    when it returns False the run stops and the paths end where they are.
    """
    options = options or {}
    check_run_options(steps, lr, optimizer, starts, max_points)
    check_methods(methods, options)
    unknown_keys = [m for m in options if m not in methods]
    if unknown_keys:
        raise ValueError(f"options given for {unknown_keys}, which are not among the methods {list(methods)}")
    fast = [m for m in methods if vectorised and toy_batched.can_vectorise(m, options.get(m))]
    slow = [m for m in methods if m not in fast]
    parts = (1 if fast else 0) + len(slow)
    stopped = False

    def part_progress(index: int) -> Progress | None:
        if progress is None:
            return None

        def report(fraction: float) -> bool:
            nonlocal stopped
            stopped = stopped or not progress((index + fraction) / parts)
            return not stopped

        return report

    runs: dict[str, list[Trajectory]] = {}
    if fast:
        runs.update(batched_paths(fast, starts, steps, lr, optimizer, options, max_points, part_progress(0)))
    for k, method in enumerate(slow):
        if stopped:
            break
        runs[method] = stepwise_paths(method, starts, steps, lr, optimizer, options.get(method), loss_shift, seed,
                                      max_points, part_progress(k + (1 if fast else 0)))
    return {m: runs[m] for m in methods if m in runs}


def loss_grid(n: int = 200, extent: float = EXTENT) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``X[n, n]``, ``Y[n, n]`` over ``[-extent, extent]²`` and the losses ``Z[n, n, 2]`` on that grid."""
    axis = torch.linspace(-extent, extent, n, dtype=torch.float64)
    Y, X = torch.meshgrid(axis, axis, indexing="ij")
    return X, Y, toy_losses(torch.stack([X, Y], dim=-1))


def pareto_set(n: int = 41, grid: int = 201, iterations: int = 50) -> torch.Tensor:
    """Points ``[n, 2]`` of the Pareto set, found numerically.

    For each weight ``α`` in ``[0, 1]`` the point minimising ``α·L1 + (1 − α)·L2`` is searched: the best
    point of a ``grid × grid`` lattice over the plotted square, refined by L-BFGS. Every such minimiser
    is Pareto-optimal (no other point lowers one loss without raising the other).
    """
    X, Y, Z = loss_grid(grid)
    out = []
    for alpha in torch.linspace(0.0, 1.0, n, dtype=torch.float64).tolist():
        mix = alpha * Z[..., 0] + (1 - alpha) * Z[..., 1]
        k = int(torch.argmin(mix))
        x = torch.tensor([float(X.flatten()[k]), float(Y.flatten()[k])], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

        def closure(x=x, alpha=alpha, opt=opt):
            opt.zero_grad()
            L = toy_losses(x)
            value = alpha * L[0] + (1 - alpha) * L[1]
            value.backward()
            return value

        opt.step(closure)
        out.append(x.detach().clone())
    return torch.stack(out)


# ---------------------------------------------------------------- drawing


def draw_contours(ax: Axes, X: torch.Tensor, Y: torch.Tensor, Z: torch.Tensor, title: str) -> None:
    ax.contour(X.numpy(), Y.numpy(), Z.numpy(), levels=14, cmap="viridis", linewidths=1.0)
    ax.set_title(title, fontsize=10)
    ax.set_xlim(-EXTENT, EXTENT)
    ax.set_ylim(-EXTENT, EXTENT)
    ax.set_aspect("equal")


def draw_trajectories(ax: Axes, runs: dict[str, list[Trajectory]], upto: int | None = None) -> None:
    """Each method's paths (up to step ``upto``) with a dot at the current point; starts in black."""
    for method, paths in runs.items():
        color = method_color(method)
        for i, path in enumerate(paths):
            pts = path.points if upto is None else path.points_upto(upto)
            ax.plot(pts[:, 0].numpy(), pts[:, 1].numpy(), "-", color=color, lw=1.4,
                    label=method if i == 0 else None)
            ax.plot(float(pts[-1, 0]), float(pts[-1, 1]), "o", color=color, ms=4, zorder=6)
            ax.plot(path.start[0], path.start[1], "o", color="black", ms=5, zorder=5)


def landscape_figure(
    runs: dict[str, list[Trajectory]] | None = None,
    upto: int | None = None,
    pareto: torch.Tensor | None = None,
    grid: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    figsize: tuple[float, float] = (13, 4.4),
    fig: Figure | None = None,
) -> Figure:
    """Contours of ``L1``, ``L2`` and their mean; the Pareto set in grey; trajectories up to step ``upto``.

    Pass ``grid`` (from :func:`loss_grid`) and ``pareto`` (from :func:`pareto_set`) to reuse them, and
    ``fig`` to redraw into an existing figure (it is cleared).
    """
    X, Y, Z = grid if grid is not None else loss_grid()
    pareto = pareto if pareto is not None else pareto_set()
    if fig is None:
        fig = Figure(figsize=figsize)
    fig.clear()
    axes = fig.subplots(1, 3)
    panels = [(Z[..., 0], "L1(x)"), (Z[..., 1], "L2(x)"), (Z.mean(-1), "mean ½(L1 + L2)")]
    for ax, (values, title) in zip(axes, panels):
        draw_contours(ax, X, Y, values, title)
        ax.plot(pareto[:, 0].numpy(), pareto[:, 1].numpy(), "-", color="grey", lw=5, alpha=0.6, zorder=1,
                label="Pareto set")
        if runs:
            draw_trajectories(ax, runs, upto)
    axes[2].legend(fontsize=9, loc="upper right")
    fig.subplots_adjust(left=0.04, right=0.99, top=0.9, bottom=0.08, wspace=0.15)
    return fig
