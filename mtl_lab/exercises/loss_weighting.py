"""Exercises on loss-weighting methods: DWA's weights and uncertainty weighting's optimum.

Both are compared with the library's methods (:mod:`mtl_lab.weighting.dwa`,
:mod:`mtl_lab.weighting.uncertainty`) on seeded cases.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mtl_lab.exercises.grading import Case, ExceptionHint, Grader, Mistake, close, take
from mtl_lab.weighting import StepContext, aggregate, create

# --------------------------------------------------------------------------- 4. DWA

DWA_HINT = "r_t = L̄_t(e−1) / L̄_t(e−2) from the last two epochs; w = T · softmax(r / Temp); all ones before that."
SHORT_HISTORY_NOTE = "with fewer than two finished epochs there is no descending rate yet: every weight is 1."


def library_dwa_weights(epoch_losses: list[list[float]], n_tasks: int, temperature: float) -> torch.Tensor:
    """The library's DWA weights at the epoch after ``epoch_losses``.

    ``aggregate`` returns the direction ``Gᵀw``; with ``G`` the identity matrix that is ``w`` itself.
    """
    context = StepContext(epoch=len(epoch_losses), epoch_losses=tuple(tuple(row) for row in epoch_losses))
    return aggregate("dwa", torch.eye(n_tasks, dtype=torch.float64), context=context, temperature=temperature)


def _dwa(newer: list[float], older: list[float], scale: float, temperature: float) -> torch.Tensor:
    rates = torch.tensor(newer, dtype=torch.float64) / torch.tensor(older, dtype=torch.float64)
    return scale * torch.softmax(rates / temperature, dim=0)


DWA_MISTAKES = [
    Mistake(
        "the descending rate is the newer epoch over the older one: r_t = L̄_t(e−1) / L̄_t(e−2).",
        lambda h, T, temp: _dwa(h[-2], h[-1], T, temp),
    ),
    Mistake(
        "use the last two finished epochs: r = epoch_losses[-1] / epoch_losses[-2] (an off-by-one in the epochs?).",
        lambda h, T, temp: _dwa(h[-2], h[-3], T, temp),
    ),
    Mistake(
        "use the last two finished epochs: r = epoch_losses[-1] / epoch_losses[-2], not the first two.",
        lambda h, T, temp: _dwa(h[1], h[0], T, temp),
    ),
    Mistake(
        "the weights sum to T (the number of tasks): multiply the softmax by T.",
        lambda h, T, temp: _dwa(h[-1], h[-2], 1.0, temp),
    ),
    Mistake(
        "divide the rates by the temperature (softmax(r / Temp)), do not multiply them.",
        lambda h, T, temp: _dwa(h[-1], h[-2], T, 1 / temp),
    ),
    Mistake(
        "divide the rates by the temperature before the softmax: softmax(r / Temp).",
        lambda h, T, temp: _dwa(h[-1], h[-2], T, 1.0),
    ),
]


def dwa_cases(n_cases: int, seed: int) -> list[Case]:
    """No epoch yet, one epoch, a rising loss, then random histories of 2–6 epochs."""
    edges = [
        Case("no finished epoch", {"epoch_losses": [], "n_tasks": 3, "temperature": 2.0}, note=SHORT_HISTORY_NOTE),
        Case("one finished epoch", {"epoch_losses": [[1.2, 0.7]], "n_tasks": 2, "temperature": 2.0},
             note=SHORT_HISTORY_NOTE),
        Case("two epochs, one loss rose", {"epoch_losses": [[1.0, 2.0, 0.5], [0.5, 2.2, 0.5]], "n_tasks": 3,
                                           "temperature": 2.0}),
        Case("three equal epochs", {"epoch_losses": [[0.3, 0.6]] * 3, "n_tasks": 2, "temperature": 1.0}),
    ]
    return take(edges, random_dwa_case, n_cases, seed)


def random_dwa_case(generator: torch.Generator, i: int) -> Case:
    """2–4 tasks, 2–6 epochs of losses that mostly fall, a temperature among 0.5, 1, 2, 4 (4 decimals)."""
    n_tasks = int(torch.randint(2, 5, (), generator=generator))
    n_epochs = int(torch.randint(2, 7, (), generator=generator))
    temperature = [0.5, 1.0, 2.0, 4.0][int(torch.randint(0, 4, (), generator=generator))]
    losses = 0.5 + 2.5 * torch.rand(n_tasks, generator=generator, dtype=torch.float64)
    history = []
    for _ in range(n_epochs):
        history.append([round(float(v), 4) for v in losses])
        losses = losses * (0.6 + 0.5 * torch.rand(n_tasks, generator=generator, dtype=torch.float64))
    return Case(f"random history of {n_epochs} epochs", {"epoch_losses": history, "n_tasks": n_tasks,
                                                          "temperature": temperature})


def check_dwa_weights(
    dwa_weights: Callable[[list[list[float]], int, float], torch.Tensor], n_cases: int = 20, seed: int = 0
) -> None:
    """Check ``dwa_weights(epoch_losses, n_tasks, temperature) -> w[T]`` against the library's DWA.

    ``epoch_losses`` lists the average training loss of each task for every finished epoch, oldest first.
    """
    grader = Grader("dwa_weights", dwa_weights, dwa_cases(n_cases, seed), DWA_HINT,
                    [ExceptionHint("index", SHORT_HISTORY_NOTE)])
    for case in grader.cases:
        history, n_tasks, temperature = case.inputs.values()
        received = grader.vector(case, grader.call(case), n_tasks)
        expected = library_dwa_weights(history, n_tasks, temperature)
        if not close(received, expected):
            grader.fail(case, "wrong weights", expected, received, grader.diagnose(case, received, DWA_MISTAKES))
    grader.passed()


# --------------------------------------------------------------------------- 5. uncertainty weighting's optimum

UNCERTAINTY_HINT = "set ∂/∂s_t [½e^(−s_t)·L_t + ½s_t] = ½(1 − e^(−s_t)·L_t) to 0 and solve for s_t."


def library_uncertainty_slope(losses: torch.Tensor, log_vars: torch.Tensor) -> torch.Tensor:
    """∂/∂s of the library's uncertainty objective ``Σ_t ½e^(−s_t) L_t + ½s_t`` at ``s = log_vars``."""
    method = create("uncertainty")
    method.reset([f"task{t}" for t in range(len(losses))])
    with torch.no_grad():
        method.log_vars.copy_(log_vars)
    with torch.enable_grad():
        (slope,) = torch.autograd.grad(method.objective(losses.double()), method.log_vars)
    return slope


UNCERTAINTY_MISTAKES = [
    Mistake("s_t is a log-variance: the optimum is at s_t = log(L_t), not L_t.", lambda L: L),
    Mistake("check the sign: ½(1 − e^(−s)·L) = 0 gives e^(−s) = 1/L, so s = +log L.", lambda L: -torch.log(L)),
    Mistake(
        "that is the optimum of the classification form e^(−s)·L + ½s; the objective here is ½e^(−s)·L + ½s.",
        lambda L: torch.log(2 * L),
    ),
    Mistake("s_t is the log-variance log σ², not log σ.", lambda L: torch.log(L) / 2),
    Mistake("return the optimal log-variances s*, not the weights ½e^(−s*) = 1/(2L).", lambda L: 1 / (2 * L)),
]


def uncertainty_cases(n_cases: int, seed: int) -> list[Case]:
    """A loss of 1, one task, a tiny and a large loss, then 2–5 losses drawn log-uniformly in [0.01, 10]."""
    def tensor(*values: float) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float64)

    edges = [
        Case("losses of 1", {"losses": tensor(1.0, 1.0)}),
        Case("one task", {"losses": tensor(0.37)}),
        Case("a tiny and a large loss", {"losses": tensor(1e-4, 250.0)}),
    ]

    def random_case(generator: torch.Generator, i: int) -> Case:
        n_tasks = int(torch.randint(2, 6, (), generator=generator))
        exponents = -2 + 3 * torch.rand(n_tasks, generator=generator, dtype=torch.float64)
        return Case(f"random losses of {n_tasks} tasks", {"losses": 10.0**exponents})

    return take(edges, random_case, n_cases, seed)


def check_uncertainty_optimum(
    uncertainty_optimum: Callable[[torch.Tensor], torch.Tensor], n_cases: int = 15, seed: int = 0
) -> None:
    """Check ``uncertainty_optimum(losses) -> s*[T]``: the log-variances that minimise the library's objective.

    For fixed losses the library's objective ``Σ_t ½e^(−s_t) L_t + ½s_t`` has its minimum where its
    slope in every ``s_t`` is zero; the message reports that slope at the received ``s``.
    """
    grader = Grader("uncertainty_optimum", uncertainty_optimum, uncertainty_cases(n_cases, seed), UNCERTAINTY_HINT)
    for case in grader.cases:
        losses = case.inputs["losses"]
        received = grader.vector(case, grader.call(case), len(losses))
        expected = torch.log(losses)
        if not close(received, expected):
            slope = library_uncertainty_slope(losses, received)
            grader.fail(case, f"not the minimum: the objective's slope there is {_rounded(slope)}, it must be 0",
                        expected, received, grader.diagnose(case, received, UNCERTAINTY_MISTAKES))
    grader.passed()


def _rounded(vector: torch.Tensor) -> str:
    return "[" + ", ".join(f"{float(v):.3g}" for v in vector) + "]"
