"""Coursework checks: grade a student's implementation against the library, with a hint on failure.

Each ``check_<name>(student_fn, n_cases=…, seed=0)`` runs the student's function on seeded cases —
the edge cases first (orthogonal, identical, zero …), then random ones — and compares every answer
with the library's within tolerances. On success it prints one line, ``✓ <name>: N cases passed``;
on the first failure it raises :class:`ExerciseError` (an ``AssertionError``) whose message names the
case and its inputs (rounded), the expected and received values, and a hint — the specific one when
the answer matches a typical mistake. A function that still raises ``NotImplementedError`` gets
"not written yet" rather than a traceback of the checker.

``notebooks/coursework/coursework_solutions.ipynb`` holds the exercises with their solutions between
``### BEGIN SOLUTION`` / ``### END SOLUTION``; :func:`strip_notebook` (``mtl-lab exercises strip``)
makes the student version.

| exercise | the student writes | compared with |
|---|---|---|
| ``pcgrad_projection``   | ``project_conflicting(g_i, g_j)``            | the projection in the library's PCGrad |
| ``pcgrad_two_tasks``    | ``pcgrad_two_tasks(g_1, g_2)``               | ``aggregate("pcgrad", [g_1, g_2])`` |
| ``mgda_two_tasks``      | ``mgda_two_tasks_weight(g_1, g_2)``          | ``aggregate("mgda", [g_1, g_2])`` |
| ``task_gradients``      | ``task_gradient_matrix(losses, params)``     | ``gradients.task_gradients`` |
| ``dwa_weights``         | ``dwa_weights(epoch_losses, n_tasks, temp)`` | ``aggregate("dwa", I, context=…)`` |
| ``uncertainty_optimum`` | ``uncertainty_optimum(losses)``              | the slope of ``Uncertainty.objective`` |
| ``delta_m``             | ``delta_m_percent(metrics, baseline, hib)``  | ``metrics.delta_m`` |
| ``coupling_penalty``    | ``coupling_penalty(thetas, lam)``            | ``SoftSharing.regularizer``'s definition |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mtl_lab.exercises.evaluation import check_delta_m
from mtl_lab.exercises.gradient_surgery import check_mgda_two_tasks, check_pcgrad_projection, check_pcgrad_two_tasks
from mtl_lab.exercises.grading import ExerciseError
from mtl_lab.exercises.loss_weighting import check_dwa_weights, check_uncertainty_optimum
from mtl_lab.exercises.soft_sharing import check_coupling_penalty
from mtl_lab.exercises.strip import StripReport, strip_notebook, strip_solutions
from mtl_lab.exercises.task_gradients import check_task_gradients


@dataclass(frozen=True)
class Exercise:
    """One exercise: its check, the function the student writes, and what it is about."""

    name: str
    check: Callable[..., None]
    function: str
    description: str


EXERCISES: dict[str, Exercise] = {
    e.name: e
    for e in [
        Exercise("pcgrad_projection", check_pcgrad_projection, "project_conflicting(g_i, g_j)",
                 "PCGrad's projection of one gradient off a conflicting one"),
        Exercise("pcgrad_two_tasks", check_pcgrad_two_tasks, "pcgrad_two_tasks(g_1, g_2)",
                 "PCGrad's update direction for two tasks"),
        Exercise("mgda_two_tasks", check_mgda_two_tasks, "mgda_two_tasks_weight(g_1, g_2)",
                 "MGDA's closed-form weight for two tasks"),
        Exercise("task_gradients", check_task_gradients, "task_gradient_matrix(losses, params)",
                 "the per-task gradient matrix G[T, P] with autograd"),
        Exercise("dwa_weights", check_dwa_weights, "dwa_weights(epoch_losses, n_tasks, temperature)",
                 "Dynamic Weight Average from the epoch-loss history"),
        Exercise("uncertainty_optimum", check_uncertainty_optimum, "uncertainty_optimum(losses)",
                 "the log-variances that minimise uncertainty weighting's objective"),
        Exercise("delta_m", check_delta_m, "delta_m_percent(metrics, baseline, higher_is_better)",
                 "Δm %, the multi-task model against its single-task baselines"),
        Exercise("coupling_penalty", check_coupling_penalty, "coupling_penalty(thetas, lam)",
                 "soft sharing's coupling penalty and its gradient"),
    ]
}

__all__ = [
    "EXERCISES",
    "Exercise",
    "ExerciseError",
    "StripReport",
    "check_coupling_penalty",
    "check_delta_m",
    "check_dwa_weights",
    "check_mgda_two_tasks",
    "check_pcgrad_projection",
    "check_pcgrad_two_tasks",
    "check_task_gradients",
    "check_uncertainty_optimum",
    "strip_notebook",
    "strip_solutions",
]
