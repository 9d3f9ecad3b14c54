"""Exercises on two-task gradient surgery: PCGrad's projection, PCGrad's direction, MGDA's closed form.

Every answer is compared with what :func:`mtl_lab.weighting.aggregate` (the library's PCGrad and MGDA)
gives on the same gradients, on edge cases (orthogonal, identical, opposite, zero gradients) and on
random conflicting and non-conflicting pairs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mtl_lab.exercises.grading import Case, ExceptionHint, Grader, Mistake, close, take
from mtl_lab.weighting import StepContext, aggregate, combination_for, create

# --------------------------------------------------------------------------- the library's answers


def library_pcgrad_projections(g_1: torch.Tensor, g_2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g_1^PC, g_2^PC)``: each gradient after the library's PCGrad projected it off the other.

    The library tracks each projected gradient as a combination of the originals and returns the summed
    coefficients as its effective weights ``w``. With two tasks ``g_1^PC = g_1 + (w_2 − 1)·g_2`` and
    ``g_2^PC = g_2 + (w_1 − 1)·g_1``, so the weights give both projections.
    """
    G = torch.stack([g_1, g_2])
    pcgrad = create("pcgrad")
    pcgrad.reset(["task1", "task2"])
    w = combination_for(pcgrad, G, None, StepContext()).weights
    return g_1 + (w[1] - 1) * g_2, g_2 + (w[0] - 1) * g_1


def library_mgda_weight(g_1: torch.Tensor, g_2: torch.Tensor) -> float:
    """The library's MGDA weight of ``g_1`` (the weight of ``g_2`` is one minus it)."""
    G = torch.stack([g_1, g_2])
    mgda = create("mgda")
    mgda.reset(["task1", "task2"])
    return float(combination_for(mgda, G, None, StepContext()).weights[0])


# --------------------------------------------------------------------------- cases


def pair_cases(n_cases: int, seed: int, zero_note: str, equal_note: str) -> list[Case]:
    """Edge cases (orthogonal, opposite, scaled, identical, zero) then random conflicting/non-conflicting pairs."""
    a = torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64)
    b = torch.tensor([-2.0, 1.0, 0.0], dtype=torch.float64)  # a·b = 0
    zero = torch.zeros(3, dtype=torch.float64)
    notes = (zero_note, equal_note)
    edges = [
        Case("orthogonal pair", {"g_1": a, "g_2": b}),
        Case("opposite gradients", {"g_1": a, "g_2": -2.0 * a}),
        Case("same direction, different lengths", {"g_1": a, "g_2": 3.0 * a}),
        Case("identical gradients", {"g_1": a, "g_2": a.clone()}, note=equal_note),
        Case("zero second gradient", {"g_1": a, "g_2": zero}, note=zero_note),
        Case("zero first gradient", {"g_1": zero, "g_2": b}, note=zero_note),
        Case("both gradients zero", {"g_1": zero, "g_2": zero.clone()}, note=" ".join(filter(None, notes))),
    ]
    return take(edges, random_pair, n_cases, seed)


def random_pair(generator: torch.Generator, i: int) -> Case:
    """Alternately a conflicting (``g_1·g_2 < 0``) and a non-conflicting pair, 2 to 6 coordinates."""
    size = int(torch.randint(2, 7, (), generator=generator))
    g_1 = torch.randn(size, generator=generator, dtype=torch.float64)
    g_2 = torch.randn(size, generator=generator, dtype=torch.float64) * float(torch.rand((), generator=generator) * 3)
    conflicting = i % 2 == 0
    if (float(g_1 @ g_2) < 0) != conflicting:
        g_2 = -g_2
    return Case("random conflicting pair" if conflicting else "random non-conflicting pair", {"g_1": g_1, "g_2": g_2})


ZERO_NOTE = "a zero gradient conflicts with nothing (the dot product is 0): no projection, no division by ‖g‖² = 0."

# --------------------------------------------------------------------------- 1. the projection

PROJECTION_HINT = "g_i^PC = g_i − (g_i·g_j / ‖g_j‖²)·g_j when g_i·g_j < 0, and g_i unchanged otherwise."


def _project(g_i: torch.Tensor, g_j: torch.Tensor) -> torch.Tensor:
    return g_i - (g_i @ g_j) / (g_j @ g_j) * g_j


PROJECTION_MISTAKES = [
    Mistake("project only when the gradients conflict (g_i·g_j < 0); otherwise return g_i unchanged.", _project),
    Mistake(
        "you returned the component of g_i along g_j; PCGrad keeps what is left: g_i − (g_i·g_j / ‖g_j‖²)·g_j.",
        lambda g_i, g_j: (g_i @ g_j) / (g_j @ g_j) * g_j if g_i @ g_j < 0 else g_i,
    ),
    Mistake(
        "subtract the projection, do not add it: g_i − (g_i·g_j / ‖g_j‖²)·g_j.",
        lambda g_i, g_j: g_i + (g_i @ g_j) / (g_j @ g_j) * g_j if g_i @ g_j < 0 else g_i,
    ),
    Mistake(
        "divide by the squared norm ‖g_j‖² = g_j·g_j, not by the norm ‖g_j‖.",
        lambda g_i, g_j: g_i - (g_i @ g_j) / g_j.norm() * g_j if g_i @ g_j < 0 else g_i,
    ),
    Mistake(
        "the projection is onto g_j: divide by ‖g_j‖², not ‖g_i‖².",
        lambda g_i, g_j: g_i - (g_i @ g_j) / (g_i @ g_i) * g_j if g_i @ g_j < 0 else g_i,
    ),
    Mistake(
        "project g_i (the first argument) off g_j, not the other way round.",
        lambda g_i, g_j: _project(g_j, g_i) if g_i @ g_j < 0 else g_i,
    ),
]


def check_pcgrad_projection(
    project_conflicting: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], n_cases: int = 25, seed: int = 0
) -> None:
    """Check ``project_conflicting(g_i, g_j) -> g_i^PC``: PCGrad's projection of ``g_i`` off a conflicting ``g_j``.

    Compared with the projection inside the library's PCGrad (see :func:`library_pcgrad_projections`).
    """
    cases = [Case(c.kind, {"g_i": c.inputs["g_1"], "g_j": c.inputs["g_2"]}, note=c.note)
             for c in pair_cases(n_cases, seed, ZERO_NOTE, "")]
    grader = Grader("pcgrad_projection", project_conflicting, cases, PROJECTION_HINT)
    for case in grader.cases:
        g_i, g_j = case.inputs["g_i"], case.inputs["g_j"]
        received = grader.vector(case, grader.call(case), len(g_i))
        expected = library_pcgrad_projections(g_i, g_j)[0]
        if not close(received, expected):
            hint = grader.diagnose(case, received, PROJECTION_MISTAKES)
            grader.fail(case, "wrong projection", expected, received, hint)
    grader.passed()


# --------------------------------------------------------------------------- 2. the two-task direction

PCGRAD_HINT = "d = g_1^PC + g_2^PC, each gradient projected off the *original* other one when they conflict."

PCGRAD_MISTAKES = [
    Mistake(
        "PCGrad sums the projected gradients (d = g_1^PC + g_2^PC); it does not average them.",
        lambda g_1, g_2: sum(library_pcgrad_projections(g_1, g_2)) / 2,
    ),
    Mistake(
        "when g_1·g_2 < 0 both gradients must be projected before they are added.",
        lambda g_1, g_2: g_1 + g_2,
    ),
    Mistake(
        "project g_2 off the original g_1, not off the already projected g_1^PC.",
        lambda g_1, g_2: (lambda p1: p1 + (_project(g_2, p1) if g_2 @ p1 < 0 else g_2))(
            library_pcgrad_projections(g_1, g_2)[0]
        ),
    ),
    Mistake(
        "project only when the gradients conflict (g_1·g_2 < 0).",
        lambda g_1, g_2: _project(g_1, g_2) + _project(g_2, g_1),
    ),
    Mistake(
        "return the sum of both projected gradients, not only g_1^PC.",
        lambda g_1, g_2: library_pcgrad_projections(g_1, g_2)[0],
    ),
]


def check_pcgrad_two_tasks(
    pcgrad_two_tasks: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], n_cases: int = 25, seed: int = 0
) -> None:
    """Check ``pcgrad_two_tasks(g_1, g_2) -> d``, compared with ``aggregate("pcgrad", [g_1, g_2])``."""
    grader = Grader("pcgrad_two_tasks", pcgrad_two_tasks, pair_cases(n_cases, seed, ZERO_NOTE, ""), PCGRAD_HINT)
    for case in grader.cases:
        g_1, g_2 = case.inputs["g_1"], case.inputs["g_2"]
        received = grader.vector(case, grader.call(case), len(g_1))
        expected = aggregate("pcgrad", torch.stack([g_1, g_2]))
        if not close(received, expected):
            grader.fail(case, "wrong direction", expected, received, grader.diagnose(case, received, PCGRAD_MISTAKES))
    grader.passed()


# --------------------------------------------------------------------------- 3. MGDA's closed form

MGDA_HINT = "α* = clip((g_2 − g_1)·g_2 / ‖g_1 − g_2‖², 0, 1) is the weight of g_1; d = α*·g_1 + (1 − α*)·g_2."
EQUAL_NOTE = "when g_1 = g_2 the denominator ‖g_1 − g_2‖² is 0 and every α gives the same point: return 0.5."


def _unclipped_alpha(g_1: torch.Tensor, g_2: torch.Tensor) -> float:
    return float((g_2 - g_1) @ g_2 / ((g_1 - g_2) @ (g_1 - g_2)))


MGDA_MISTAKES = [
    Mistake(
        "α is the weight of g_1 (d = α·g_1 + (1 − α)·g_2); you seem to have returned the weight of g_2.",
        lambda g_1, g_2: 1.0 - library_mgda_weight(g_1, g_2),
    ),
    Mistake(
        "check the numerator's sign: it is (g_2 − g_1)·g_2.",
        lambda g_1, g_2: min(max(-_unclipped_alpha(g_1, g_2), 0.0), 1.0),
    ),
    Mistake(
        "divide by the squared distance ‖g_1 − g_2‖², not by the distance ‖g_1 − g_2‖.",
        lambda g_1, g_2: min(max(float((g_2 - g_1) @ g_2 / (g_1 - g_2).norm()), 0.0), 1.0),
    ),
]


def check_mgda_two_tasks(
    mgda_two_tasks_weight: Callable[[torch.Tensor, torch.Tensor], float], n_cases: int = 25, seed: int = 0
) -> None:
    """Check ``mgda_two_tasks_weight(g_1, g_2) -> α``, the weight of ``g_1`` in MGDA's min-norm point.

    The direction ``α·g_1 + (1 − α)·g_2`` is compared with ``aggregate("mgda", [g_1, g_2])`` (so when
    ``g_1 = g_2``, where every α gives the same point, any α in [0, 1] passes).
    """
    grader = Grader("mgda_two_tasks", mgda_two_tasks_weight, pair_cases(n_cases, seed, "", EQUAL_NOTE), MGDA_HINT,
                    [ExceptionHint("division by zero", EQUAL_NOTE)])
    for case in grader.cases:
        g_1, g_2 = case.inputs["g_1"], case.inputs["g_2"]
        alpha = grader.number(case, grader.call(case))
        if not -1e-9 <= alpha <= 1 + 1e-9:
            grader.fail(case, f"α = {alpha:.4g} is outside [0, 1]", library_mgda_weight(g_1, g_2), alpha,
                        "clip α to [0, 1]: MGDA picks a convex combination of the two gradients (the min-norm point "
                        "of the segment between them, which may be an end point).")
        received = alpha * g_1 + (1 - alpha) * g_2
        expected = aggregate("mgda", torch.stack([g_1, g_2]))
        if not close(received, expected):
            expected_alpha = library_mgda_weight(g_1, g_2)
            hint = grader.diagnose(case, alpha, MGDA_MISTAKES)
            grader.fail(case, f"wrong weight: α = {alpha:.4g}, expected α = {expected_alpha:.4g} "
                        f"(directions: expected {_short(expected)}, received {_short(received)})",
                        expected_alpha, alpha, hint)
    grader.passed()


def _short(vector: torch.Tensor) -> str:
    return "[" + ", ".join(f"{float(v):.4g}" for v in vector) + "]"
