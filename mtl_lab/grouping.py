"""Automatic task grouping: measure how the tasks affect each other in a short probe run, propose groups.

A probe model (hard sharing, trained with equal weights and plain SGD for a few dozen steps) is
watched at every step with two measures of inter-task affinity on the shared trunk ``θ_s``:

* **gradient cosine** — ``cos(g_i, g_j)`` with ``g_t = ∇_{θ_s} L_t``, averaged over the probe steps:
  do the tasks pull the trunk the same way?
* **lookahead affinity** — Fifty, Amid, Zhao, Yu, Anil and Finn, "Efficiently Identifying Task
  Groupings for Multi-Task Learning", NeurIPS 2021 (task affinity grouping, TAG). Take an SGD step on
  task ``i``'s loss alone, ``θ_{s|i} = θ_s − η·g_i``, and see what it does to task ``j`` on the same
  batch::

      Z_{i→j} = 1 − L_j(θ_{s|i}, θ_j) / L_j(θ_s, θ_j)

  positive: a step for ``i`` also lowers ``j``'s loss (``i`` helps ``j``); negative: it hurts.
  ``Z`` is averaged over the probe steps; it is not symmetric (row ``i`` is the source, column ``j``
  the target). ``η`` is the probe's learning rate, as in the paper.

Groups come from the symmetric affinity ``S = (A + Aᵀ)/2``:

* with ``n_groups`` given: the partition of the tasks into exactly ``n_groups`` groups with the
  largest total within-group affinity, found by trying every partition (``T ≤ 8``). Each pair counts
  with its affinity minus the mean affinity of all pairs — without that centring, when every pair has
  a positive affinity, piling all tasks into one big group would always win;
* without: average-linkage agglomerative clustering — start from one group per task and merge the
  two groups with the highest mean pairwise affinity while that mean is above ``threshold`` (0: merge
  tasks only while they help each other on average).

:func:`auto_groups` runs the probe and proposes groups; the :class:`Affinity` it returns holds both
matrices for a heat map. Defaults (our choice): 60 probe steps of batch 64 with SGD at ``η = 0.05``, a
hard-sharing probe with the trunk's default sizes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.func import functional_call

from mtl_lab.data.base import MultiTaskData, Split
from mtl_lab.gradients import assign_flat_grad, assign_head_grads, task_gradients
from mtl_lab.models.hard import HardSharing

MEASURES = ("lookahead", "gradient_cosine")
EXHAUSTIVE_UP_TO = 8


@dataclass(frozen=True)
class Affinity:
    """The probe's affinity matrices (``T × T`` lists, row = source task, column = target task)."""

    task_names: list[str]
    gradient_cosine: list[list[float]]
    lookahead: list[list[float]]
    steps: int
    lr: float

    def matrix(self, measure: str = "lookahead") -> torch.Tensor:
        """One of the matrices as a float64 tensor."""
        if measure not in MEASURES:
            raise ValueError(f"measure {measure!r} is not one of {MEASURES}")
        return torch.tensor(getattr(self, measure), dtype=torch.float64)

    def as_dict(self) -> dict:
        return {
            "task_names": list(self.task_names),
            "gradient_cosine": self.gradient_cosine,
            "lookahead": self.lookahead,
            "steps": self.steps,
            "lr": self.lr,
        }


# ---------------------------------------------------------------- measuring


def cycle_batches(data: MultiTaskData, batch_size: int, generator: torch.Generator) -> Iterator:
    """Shuffled training batches, epoch after epoch."""
    while True:
        yield from data.train.batches(batch_size, shuffle=True, generator=generator)


def lookahead_affinity(
    model: HardSharing, data: MultiTaskData, x: torch.Tensor, y: dict, G: torch.Tensor, losses: torch.Tensor, lr: float
) -> torch.Tensor:
    """``Z[i, j] = 1 − L_j(θ_s − lr·g_i) / L_j(θ_s)`` on one batch (``G`` holds the ``g_i`` as rows)."""
    trunk = [(f"trunk.{name}", p) for name, p in model.trunk.named_parameters()]  # the order of G's columns
    T = len(data.tasks)
    Z = torch.zeros(T, T, dtype=torch.float64)
    with torch.no_grad():
        for i in range(T):
            moved, offset = {}, 0
            for name, p in trunk:
                moved[name] = p - lr * G[i, offset : offset + p.numel()].view_as(p)
                offset += p.numel()
            outputs = functional_call(model, moved, (x,))
            after = torch.stack([t.loss(outputs[t.name], y[t.name]) for t in data.tasks])
            Z[i] = (1.0 - after / losses).double().cpu()
    return Z


def cosine_matrix(G: torch.Tensor) -> torch.Tensor:
    """``cos(g_i, g_j)`` of the rows of ``G`` (0 where a gradient is zero)."""
    norms = G.norm(dim=1)
    K = G @ G.T
    outer = torch.outer(norms, norms)
    return torch.where(outer > 0, K / outer.clamp(min=1e-30), torch.zeros_like(K)).double().cpu()


def measure_affinity(
    data: MultiTaskData,
    steps: int = 60,
    batch_size: int = 64,
    lr: float = 0.05,
    seed: int = 0,
    trunk: str = "mlp",
    **trunk_options,
) -> Affinity:
    """Train a hard-sharing probe for ``steps`` SGD steps; return both affinity matrices, averaged."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not isinstance(lr, int | float) or not lr > 0:
        raise ValueError(f"lr must be a number > 0, got {lr!r}")
    if not isinstance(data.train, Split):  # multi-input data (mtl_lab.data.multi_input)
        raise ValueError(f"the affinity probe reads every task's loss on one batch, and the tasks of {data.name!r} "
                         "each have their own inputs (multi-input data): give the groups yourself instead of 'auto'")
    if data.train.mask:  # the look-ahead ratio L_j(after) / L_j divides by each task's batch loss
        raise ValueError(
            f"the affinity probe needs every training row labelled; task(s) {sorted(data.train.mask)} miss labels"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HardSharing(data.tasks, data.input_shape, trunk=trunk, **trunk_options)
    shared = model.shared_parameters()
    heads = [model.task_parameters(n) for n in data.task_names]
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    batches = cycle_batches(data, batch_size, torch.Generator().manual_seed(seed))
    T = len(data.tasks)
    cos_sum, z_sum = torch.zeros(T, T, dtype=torch.float64), torch.zeros(T, T, dtype=torch.float64)
    for step in range(steps):
        x, y = next(batches)
        outputs = model(x)
        losses = [t.loss(outputs[t.name], y[t.name]) for t in data.tasks]
        detached = torch.stack([loss.detach() for loss in losses])
        if not bool(torch.isfinite(detached).all()):
            bad = [t.name for t, v in zip(data.tasks, detached.tolist()) if not math.isfinite(v)]
            raise ValueError(f"the probe's loss of task(s) {bad} became non-finite at step {step}; "
                             f"lower the probe's lr (now {lr})")
        G, head_grads = task_gradients(losses, shared, heads, retain_graph=False)
        cos_sum += cosine_matrix(G)
        z_sum += lookahead_affinity(model, data, x, y, G, detached, lr)
        optimizer.zero_grad(set_to_none=True)
        assign_flat_grad(shared, G.sum(dim=0))
        assign_head_grads(heads, head_grads, [1.0] * T)
        optimizer.step()
    return Affinity(
        list(data.task_names), (cos_sum / steps).tolist(), (z_sum / steps).tolist(), steps, float(lr)
    )


# ---------------------------------------------------------------- proposing groups


def symmetric(matrix: torch.Tensor) -> torch.Tensor:
    """``(A + Aᵀ) / 2``."""
    return (matrix + matrix.T) / 2


def set_partitions(items: list[int], k: int) -> Iterator[list[list[int]]]:
    """Every partition of ``items`` into exactly ``k`` non-empty groups."""
    if k == 0:
        if not items:
            yield []
        return
    if len(items) < k:
        return
    first, rest = items[0], items[1:]
    for partition in set_partitions(rest, k - 1):
        yield [[first]] + partition
    for partition in set_partitions(rest, k):
        for g in range(len(partition)):
            yield partition[:g] + [[first] + partition[g]] + partition[g + 1 :]


def partition_score(S: torch.Tensor, groups: list[list[int]]) -> float:
    """``Σ_groups Σ_{i<j in group} (S_ij − mean of all S_ij, i ≠ j)``."""
    T = S.shape[0]
    off = ~torch.eye(T, dtype=torch.bool)
    mean = float(S[off].mean()) if T > 1 else 0.0
    return sum(float(S[i, j]) - mean for g in groups for i, j in itertools.combinations(g, 2))


def best_partition(S: torch.Tensor, n_groups: int) -> list[list[int]]:
    """The partition into ``n_groups`` groups with the largest :func:`partition_score` (exhaustive)."""
    T = S.shape[0]
    if isinstance(n_groups, bool) or not isinstance(n_groups, int) or not 1 <= n_groups <= T:
        raise ValueError(f"n_groups must be an int in [1, {T}] (the number of tasks), got {n_groups!r}")
    if T > EXHAUSTIVE_UP_TO:
        raise ValueError(
            f"trying every partition of {T} tasks is too slow (at most {EXHAUSTIVE_UP_TO}); "
            "leave n_groups=None for agglomerative grouping"
        )
    best = max(set_partitions(list(range(T)), n_groups), key=lambda groups: partition_score(S, groups))
    return sorted(sorted(g) for g in best)


def agglomerative(S: torch.Tensor, threshold: float = 0.0) -> list[list[int]]:
    """Average-linkage merging while the best pair of groups has mean affinity above ``threshold``."""
    groups = [[i] for i in range(S.shape[0])]
    while len(groups) > 1:
        pairs = itertools.combinations(range(len(groups)), 2)
        linkage = {(a, b): float(S[groups[a]][:, groups[b]].mean()) for a, b in pairs}
        (a, b), value = max(linkage.items(), key=lambda item: item[1])
        if value <= threshold:
            break
        groups[a] = sorted(groups[a] + groups[b])
        del groups[b]
    return sorted(groups)


def propose_groups(
    affinity: torch.Tensor, task_names: list[str], n_groups: int | None = None, threshold: float = 0.0
) -> list[list[str]]:
    """Groups of task names from an affinity matrix (symmetrised first); see the module docstring."""
    affinity = torch.as_tensor(affinity, dtype=torch.float64)
    T = len(task_names)
    if affinity.shape != (T, T):
        raise ValueError(f"affinity has shape {tuple(affinity.shape)}, expected [{T}, {T}] for tasks {task_names}")
    if not bool(torch.isfinite(affinity).all()):
        raise ValueError("affinity contains NaN or infinite entries (did the probe diverge? lower its lr)")
    S = symmetric(affinity)
    groups = agglomerative(S, threshold) if n_groups is None else best_partition(S, n_groups)
    return [[task_names[i] for i in g] for g in groups]


def auto_groups(
    data: MultiTaskData,
    n_groups: int | None = None,
    measure: str = "lookahead",
    threshold: float = 0.0,
    **probe_options,
) -> tuple[list[list[str]], Affinity]:
    """Run the probe (:func:`measure_affinity` with ``probe_options``) and propose groups from ``measure``."""
    if measure not in MEASURES:
        raise ValueError(f"measure {measure!r} is not one of {MEASURES}")
    affinity = measure_affinity(data, **probe_options)
    return propose_groups(affinity.matrix(measure), data.task_names, n_groups, threshold), affinity


def resolve_auto_groups(data: MultiTaskData, model_options: dict, seed: int = 0) -> dict:
    """``model_options`` of the ``grouped`` architecture with ``groups="auto"`` replaced by found groups.

    ``model_options["grouping"]`` (optional) holds :func:`auto_groups`' options, e.g.
    ``{"n_groups": 2, "measure": "gradient_cosine", "steps": 100}``; the probe uses the model's ``trunk``
    unless it names its own. The probe's record is passed on as ``affinity`` (it ends up in the run's
    metadata).
    """
    options = dict(model_options)
    grouping = dict(options.pop("grouping", None) or {})
    if options.get("groups") != "auto":
        if grouping:
            raise ValueError(f"grouping options {sorted(grouping)} apply only with groups='auto'")
        return options
    grouping.setdefault("seed", seed)
    grouping.setdefault("trunk", options.get("trunk", "mlp"))
    groups, affinity = auto_groups(data, **grouping)
    measure = grouping.get("measure", "lookahead")
    options["groups"] = groups
    options["affinity"] = {**affinity.as_dict(), "measure": measure, "groups": groups}
    return options
