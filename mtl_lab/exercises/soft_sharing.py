"""Exercise on the coupling penalty of soft parameter sharing, its value and its gradient.

:class:`mtl_lab.models.soft_sharing.SoftSharing` ties its task columns ``θ_1 … θ_T`` with
``λ · Σ_{i<j} ‖θ_i − θ_j‖²``. Its gradient for column ``i`` is ``2λ·Σ_j (θ_i − θ_j) = 2λ·(T·θ_i − Σ_j θ_j)``,
so a gradient step moves every column towards the others. The check compares the student's value
with the definition, differentiates it with autograd, compares that gradient with the formula, and
checks that a small gradient step brings the columns closer together.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mtl_lab.exercises.grading import Case, Grader, Mistake, close, take, type_name

PENALTY_HINT = "λ · Σ_{i<j} ‖θ_i − θ_j‖²: every pair of rows once, squared differences summed over the parameters."
NO_GRAD_HINT = (
    "build the penalty from thetas with torch operations and return that tensor (no .item(), float() or "
    "torch.tensor(...) on the way), so that autograd can differentiate it."
)
IDENTICAL_NOTE = (
    "identical columns: the penalty and its gradient are 0. If the gradient is NaN, square the differences "
    "directly (((θ_i − θ_j) ** 2).sum()) instead of squaring a norm."
)


def reference_penalty(thetas: torch.Tensor, lam: float) -> torch.Tensor:
    """``λ · Σ_{i<j} ‖θ_i − θ_j‖²`` straight from the definition (rows of ``thetas`` are the columns' θ)."""
    T = thetas.shape[0]
    total = thetas.new_zeros(())
    for i in range(T):
        for j in range(i + 1, T):
            total = total + ((thetas[i] - thetas[j]) ** 2).sum()
    return lam * total


def reference_gradient(thetas: torch.Tensor, lam: float) -> torch.Tensor:
    """Row ``i``: ``2λ·(T·θ_i − Σ_j θ_j)``, the gradient of the penalty for column ``i``."""
    T = thetas.shape[0]
    return 2 * lam * (T * thetas - thetas.sum(dim=0, keepdim=True))


def spread(thetas: torch.Tensor) -> float:
    """``Σ_i ‖θ_i − θ̄‖²``: how far the columns are from their mean."""
    return float(((thetas - thetas.mean(dim=0, keepdim=True)) ** 2).sum())


def _pairs(thetas: torch.Tensor) -> list[torch.Tensor]:
    T = thetas.shape[0]
    return [thetas[i] - thetas[j] for i in range(T) for j in range(i + 1, T)]


PENALTY_MISTAKES = [
    Mistake(
        "sum over the pairs i < j, each pair once; summing over all i ≠ j counts every pair twice.",
        lambda thetas, lam: 2 * reference_penalty(thetas, lam),
    ),
    Mistake("multiply by the coupling strength λ.", lambda thetas, lam: reference_penalty(thetas, 1.0)),
    Mistake(
        "use the squared distance ‖θ_i − θ_j‖², not the distance ‖θ_i − θ_j‖.",
        lambda thetas, lam: lam * sum((d.norm() for d in _pairs(thetas)), thetas.new_zeros(())),
    ),
    Mistake(
        "sum the squared differences over the parameters; do not average them.",
        lambda thetas, lam: lam * sum(((d**2).mean() for d in _pairs(thetas)), thetas.new_zeros(())),
    ),
]


def penalty_cases(n_cases: int, seed: int) -> list[Case]:
    """One column, identical columns, λ = 0, two simple columns, then random ``Θ[T, P]`` and λ."""
    def case(kind: str, thetas: list[list[float]], lam: float, note: str = "") -> Case:
        return Case(kind, {"thetas": torch.tensor(thetas, dtype=torch.float64), "lam": lam}, note=note)

    edges = [
        case("two columns", [[1.0, 0.0, 2.0], [0.0, 1.0, 2.0]], 0.5),
        case("a single column", [[1.0, -2.0, 0.5]], 0.3, note="with one column there are no pairs: the penalty is 0."),
        case("identical columns", [[0.5, -1.0], [0.5, -1.0], [0.5, -1.0]], 1.0, note=IDENTICAL_NOTE),
        case("λ = 0", [[1.0, 2.0], [3.0, -1.0]], 0.0),
    ]

    def random_case(generator: torch.Generator, i: int) -> Case:
        T = int(torch.randint(2, 5, (), generator=generator))
        P = int(torch.randint(2, 6, (), generator=generator))
        lam = [0.01, 0.1, 0.5, 2.0][int(torch.randint(0, 4, (), generator=generator))]
        thetas = torch.randn(T, P, generator=generator, dtype=torch.float64)
        return Case(f"random {T} columns of {P} parameters", {"thetas": thetas, "lam": lam})

    return take(edges, random_case, n_cases, seed)


def check_coupling_penalty(
    coupling_penalty: Callable[[torch.Tensor, float], torch.Tensor], n_cases: int = 15, seed: int = 0
) -> None:
    """Check ``coupling_penalty(thetas, lam) -> λ·Σ_{i<j} ‖θ_i − θ_j‖²``, a scalar tensor, and its gradient.

    ``thetas[i]`` holds column ``i``'s parameters (``[T, P]``, ``requires_grad=True``). The value must
    match :func:`reference_penalty`; its autograd gradient must match :func:`reference_gradient`; and a
    small step against that gradient must bring the columns closer (their spread around the mean falls).
    """
    cases = [Case(c.kind, {"thetas": c.inputs["thetas"].clone().requires_grad_(), "lam": c.inputs["lam"]},
                  shown={"thetas": c.inputs["thetas"].tolist(), "lam": c.inputs["lam"]}, note=c.note)
             for c in penalty_cases(n_cases, seed)]
    grader = Grader("coupling_penalty", coupling_penalty, cases, PENALTY_HINT)
    for case in grader.cases:
        thetas, lam = case.inputs["thetas"], case.inputs["lam"]
        value = grader.call(case)
        if not isinstance(value, torch.Tensor):
            grader.fail(case, f"{grader.function_name} returned {type_name(value)}, not a torch.Tensor",
                        received=value, hint=NO_GRAD_HINT)
        received = grader.tensor(case, value, ())
        expected = reference_penalty(thetas.detach(), lam)
        if not close(received, expected):
            grader.fail(case, "wrong penalty", expected, received,
                        grader.diagnose(case, received, PENALTY_MISTAKES))
        check_gradient(grader, case, value, thetas, lam)
    grader.passed()


def check_gradient(grader: Grader, case: Case, value: torch.Tensor, thetas: torch.Tensor, lam: float) -> None:
    """The autograd gradient of the student's penalty: present, equal to the formula, pulling the columns together."""
    expected = reference_gradient(thetas.detach(), lam)
    if not value.requires_grad:
        if not bool(expected.any()):
            return  # one column or λ = 0: a constant 0 is a fair answer, there is nothing to differentiate
        grader.fail(case, "the penalty has no gradient (it is cut off from thetas)", hint=NO_GRAD_HINT)
    (gradient,) = torch.autograd.grad(value, thetas, allow_unused=True)
    if gradient is None:
        gradient = torch.zeros_like(thetas)
    gradient = gradient.detach()
    grader.finite(case, gradient, problem="the gradient of the penalty contains NaN or infinity")
    step = 0.01 / max(1.0, lam * thetas.shape[0])  # small enough that the step cannot overshoot the mean
    before, after = spread(thetas.detach()), spread(thetas.detach() - step * gradient)
    if before > 0 and lam > 0 and not after < before:
        grader.fail(case, f"a gradient step on the penalty does not pull the columns together (their spread goes "
                    f"from {before:.4g} to {after:.4g})", expected, gradient,
                    "the penalty must grow with the distances between the columns: check its sign.")
    if not close(gradient, expected):
        grader.fail(case, "the gradient of the penalty is wrong", expected, gradient,
                    "the gradient for column i is 2λ·Σ_j (θ_i − θ_j); check that every term depends on thetas.")
