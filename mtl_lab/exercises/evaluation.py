"""Exercise on Δm %, the summary that compares a multi-task model with its single-task baselines.

The student's value is compared with :func:`mtl_lab.metrics.delta_m` on tasks whose metrics mix
"higher is better" (accuracy) and "lower is better" (an error or a loss).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mtl_lab.exercises.grading import Case, Grader, Mistake, take
from mtl_lab.metrics import delta_m

DELTA_M_HINT = "Δm = 100/T · Σ_t (−1)^{l_t} (M_{m,t} − M_{b,t}) / M_{b,t}, with l_t = 1 when lower is better."

TASK_POOL = [("digit", True), ("parity", True), ("depth", False), ("normals", False), ("segmentation", True),
             ("recon", False), ("age", False)]


def _delta(metrics: dict, baseline: dict, higher: dict, sign_of: Callable[[bool], float] = lambda h: 1.0 if h else -1.0,
           scale: float = 100.0, average: bool = True, divide_by_model: bool = False) -> float:
    """Δm with one ingredient changed: the sign rule, the scale, mean or sum, the reference of the ratio."""
    changes = [
        sign_of(higher[t]) * (metrics[t] - baseline[t]) / (metrics[t] if divide_by_model else baseline[t])
        for t in baseline
    ]
    return scale * sum(changes) / (len(changes) if average else 1)


DELTA_M_MISTAKES = [
    Mistake(
        "for a lower-is-better task (an error, a loss) a decrease is an improvement: multiply its relative change "
        "by −1.",
        lambda m, b, h: _delta(m, b, h, sign_of=lambda _: 1.0),
    ),
    Mistake(
        "the signs are the wrong way round: (−1)^{l_t} is −1 only when *lower* is better (higher_is_better False).",
        lambda m, b, h: _delta(m, b, h, sign_of=lambda higher: -1.0 if higher else 1.0),
    ),
    Mistake("Δm is in percent: multiply by 100.", lambda m, b, h: _delta(m, b, h, scale=1.0)),
    Mistake("average over the tasks (divide by T); do not just sum.", lambda m, b, h: _delta(m, b, h, average=False)),
    Mistake(
        "divide by the single-task baseline M_{b,t}, not by the multi-task model's metric.",
        lambda m, b, h: _delta(m, b, h, divide_by_model=True),
    ),
]


def delta_m_cases(n_cases: int, seed: int) -> list[Case]:
    """Mixed directions first, then no change, all higher-/lower-is-better, then random tasks (4 decimals)."""
    def case(kind: str, metrics: dict, baseline: dict, higher: dict) -> Case:
        return Case(kind, {"metrics": metrics, "baseline": baseline, "higher_is_better": higher})

    edges = [
        case("one accuracy up, one error down", {"digit": 0.92, "depth": 0.40}, {"digit": 0.90, "depth": 0.50},
             {"digit": True, "depth": False}),
        case("no change", {"digit": 0.9, "depth": 0.5}, {"digit": 0.9, "depth": 0.5}, {"digit": True, "depth": False}),
        case("all higher is better", {"digit": 0.85, "parity": 0.97}, {"digit": 0.9, "parity": 0.95},
             {"digit": True, "parity": True}),
        case("all lower is better", {"depth": 0.55, "normals": 0.3, "recon": 0.07},
             {"depth": 0.5, "normals": 0.32, "recon": 0.09}, {"depth": False, "normals": False, "recon": False}),
    ]
    return take(edges, random_delta_m_case, n_cases, seed)


def random_delta_m_case(generator: torch.Generator, i: int) -> Case:
    """2–5 tasks from :data:`TASK_POOL`, baselines in [0.1, 1], the model within ±30 % of each."""
    n_tasks = int(torch.randint(2, 6, (), generator=generator))
    chosen = torch.randperm(len(TASK_POOL), generator=generator)[:n_tasks].tolist()
    baseline, metrics, higher = {}, {}, {}
    for index in chosen:
        name, higher_is_better = TASK_POOL[index]
        base = 0.1 + 0.9 * float(torch.rand((), generator=generator))
        change = 0.6 * float(torch.rand((), generator=generator)) - 0.3
        baseline[name], metrics[name] = round(base, 4), round(base * (1 + change), 4)
        higher[name] = higher_is_better
    kinds = "mixed" if len(set(higher.values())) == 2 else "one-direction"
    return Case(f"random {kinds} tasks", {"metrics": metrics, "baseline": baseline, "higher_is_better": higher})


def check_delta_m(
    delta_m_percent: Callable[[dict[str, float], dict[str, float], dict[str, bool]], float],
    n_cases: int = 20,
    seed: int = 0,
) -> None:
    """Check ``delta_m_percent(metrics, baseline, higher_is_better) -> Δm`` (in percent) against the library's.

    The three arguments are dicts keyed by task name: the multi-task model's metric, the single-task
    baseline's metric, and whether higher is better for that task.
    """
    grader = Grader("delta_m", delta_m_percent, delta_m_cases(n_cases, seed), DELTA_M_HINT)
    for case in grader.cases:
        received = grader.number(case, grader.call(case))
        expected = delta_m(*case.inputs.values())
        if abs(received - expected) > 1e-6 * max(1.0, abs(expected)):
            grader.fail(case, "wrong Δm", expected, received, grader.diagnose(case, received, DELTA_M_MISTAKES))
    grader.passed()
