"""The two-task toy problem of CAGrad (Liu et al., NeurIPS 2021) and the gradient arena's maths.

:mod:`~mtl_lab.toy.problem` is the problem, its per-step paths and figures (``from mtl_lab import toy``
reaches them directly, as before); :mod:`~mtl_lab.toy.batched` integrates many starts and methods at once in
float64; :mod:`~mtl_lab.toy.arena` combines hand-set gradients with every method (what the gradient arena
draws).
"""

from mtl_lab.toy.problem import (
    EXTENT,
    LOWER,
    MAX_POINTS,
    MORE_STARTS,
    OPTIMIZERS,
    PAPER_LR,
    PAPER_STARTS,
    PAPER_STEPS,
    PROGRESS_EVERY,
    TASK_NAMES,
    Progress,
    Trajectory,
    batched_paths,
    check_methods,
    check_run_options,
    draw_contours,
    draw_trajectories,
    landscape_figure,
    loss_grid,
    method_paths,
    pareto_set,
    stepwise_paths,
    toy_gradients,
    toy_losses,
    trajectories,
    trajectory,
)

__all__ = [
    "EXTENT", "LOWER", "MAX_POINTS", "MORE_STARTS", "OPTIMIZERS", "PAPER_LR", "PAPER_STARTS", "PAPER_STEPS",
    "PROGRESS_EVERY", "TASK_NAMES", "Progress", "Trajectory", "batched_paths", "check_methods", "check_run_options",
    "draw_contours", "draw_trajectories", "landscape_figure", "loss_grid", "method_paths", "pareto_set",
    "stepwise_paths", "toy_gradients", "toy_losses", "trajectories", "trajectory",
]
