"""Exercise on the per-task gradient matrix ``G[T, P]`` that every gradient method starts from.

The student's matrix is compared with :func:`mtl_lab.gradients.task_gradients` on small random
problems: two parameter tensors shared by ``T`` tasks, one task that does not use one of them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mtl_lab.exercises.grading import Case, ExceptionHint, Grader, Mistake, check_n_cases, close
from mtl_lab.gradients import task_gradients

TASK_GRADIENTS_HINT = (
    "row t is ∇_θ L_t: torch.autograd.grad(losses[t], params, retain_graph=True, allow_unused=True), each "
    "gradient flattened with .reshape(-1) and concatenated in the order of params (zeros where the result is None)."
)
RETAIN_HINT = "autograd frees the graph after a backward pass: pass retain_graph=True to all but the last one."
UNUSED_HINT = (
    "a task that does not use a parameter gets None from torch.autograd.grad(..., allow_unused=True): "
    "put zeros of that parameter's size in its place."
)


def make_problem(n_tasks: int, seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``(losses, params)``: a weight ``W[3, 2]`` and bias ``b[3]`` shared by ``n_tasks`` small regression losses.

    Task ``t`` fits a random target through ``(x Wᵀ + b)·a_t``; the last task is a penalty on ``b``
    alone, so ``W`` gets no gradient from it. The same ``seed`` builds the same problem (a fresh graph).
    """
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    W = randn(3, 2).requires_grad_()
    b = randn(3).requires_grad_()
    x = randn(5, 2)
    hidden = torch.tanh(x @ W.T + b)
    losses = [((hidden @ randn(3) - randn(5)) ** 2).mean() for _ in range(n_tasks - 1)]
    losses.append((b**2).sum() * 0.1)
    return losses, [W, b]


def task_gradient_case(number_of_tasks: int, seed: int) -> Case:
    losses, params = make_problem(number_of_tasks, seed)
    shown = {"losses": [round(float(v.detach()), 4) for v in losses], "params": "[W (3×2), b (3)]"}
    return Case(f"{number_of_tasks} tasks, the last one does not use W", {"losses": losses, "params": params},
                shown=shown)


def library_task_gradients(n_tasks: int, seed: int) -> torch.Tensor:
    """``G`` of :func:`make_problem` ``(n_tasks, seed)`` by the library's gradient engine."""
    losses, params = make_problem(n_tasks, seed)
    return task_gradients(losses, params, [[] for _ in losses])[0]


# Typical wrong matrices, computed from the right one G.
TASK_GRADIENT_MISTAKES = [
    Mistake(
        "p.grad accumulates over backward() calls, so each row also holds the earlier tasks' gradients: set "
        "p.grad = None between tasks, or use torch.autograd.grad.",
        lambda G: torch.cumsum(G, dim=0),
    ),
    Mistake(
        "concatenate the flattened gradients in the order of params (W first, then b).",
        lambda G: torch.cat([G[:, 6:], G[:, :6]], dim=1),
    ),
    Mistake(
        "flatten each gradient with .reshape(-1) (row-major), not by transposing it first.",
        lambda G: torch.cat([G[:, :6].reshape(-1, 3, 2).transpose(1, 2).reshape(-1, 6), G[:, 6:]], dim=1),
    ),
]


def check_task_gradients(
    task_gradient_matrix: Callable[[list[torch.Tensor], list[torch.Tensor]], torch.Tensor],
    n_cases: int = 6,
    seed: int = 0,
) -> None:
    """Check ``task_gradient_matrix(losses, params) -> G[T, P]`` against :func:`mtl_lab.gradients.task_gradients`.

    ``losses`` is a list of ``T`` scalar losses, ``params`` the list of shared parameter tensors;
    row ``t`` of ``G`` is ``∇_θ L_t`` flattened over all parameters, in order.
    """
    problems = [(2 + i % 3, 1000 * seed + i) for i in range(check_n_cases(n_cases))]  # (T, the problem's seed)
    cases = [task_gradient_case(n_tasks, problem_seed) for n_tasks, problem_seed in problems]
    grader = Grader("task_gradients", task_gradient_matrix, cases, TASK_GRADIENTS_HINT,
                    [ExceptionHint("backward through the graph a second time", RETAIN_HINT),
                     ExceptionHint("appears to not have been used in the graph", UNUSED_HINT)])
    for case, (n_tasks, problem_seed) in zip(grader.cases, problems):
        expected = library_task_gradients(n_tasks, problem_seed)
        received = grader.tensor(case, grader.call(case), tuple(expected.shape))
        if not close(received, expected):
            rows = [t for t in range(n_tasks) if not close(received[t], expected[t])]
            matching = [m.hint for m in TASK_GRADIENT_MISTAKES if close(received, m.answer(expected))]
            hint = matching[0] if matching else UNUSED_HINT if rows == [n_tasks - 1] else TASK_GRADIENTS_HINT
            grader.fail(case, f"wrong row(s) {rows} (row t is the gradient of losses[t])", expected, received, hint)
    grader.passed()
