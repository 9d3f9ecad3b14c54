"""Learned task relations: linear heads on a shared trunk, regularised by a task covariance matrix Ω.

Zhang and Yeung, "A Convex Formulation for Learning Task Relationships in Multi-Task Learning",
UAI 2010 (multi-task relationship learning, MTRL). Stack the task predictors' weight vectors as the
columns of ``W = [w_1, …, w_m]`` (``d × m``). MTRL puts a matrix-normal prior on ``W`` whose column
covariance ``Ω`` (``m × m``) *is* the task relation — positive ``Ω_ij``: tasks ``i`` and ``j`` want
similar weights, negative: opposite ones, zero: unrelated — and learns ``Ω`` together with ``W``::

    min_{W, Ω}  Σ_t L_t(W)  +  λ · tr(W Ω⁻¹ Wᵀ)        subject to  Ω ⪰ 0,  tr(Ω) = 1

The problem is jointly convex, and for a fixed ``W`` the best ``Ω`` has a closed form::

    Ω = (WᵀW)^{1/2} / tr((WᵀW)^{1/2})

so training alternates, as in the paper: gradient steps on the network (the penalty is this model's
:meth:`regularizer`, Ω held fixed), and every ``update_every`` steps the closed-form Ω update (in
:meth:`after_step`). For stability ``WᵀW + ε·I`` is used in the update. At the optimal Ω the
penalty equals ``λ·(Σ_i σ_i(W))²``, the squared trace norm of ``W``: related tasks are pushed towards
a low-rank set of heads.

Here the predictors are linear heads ``y_t = V_t·r + c_t`` on a shared trunk ``r = f(x)``; biases are
not penalised. A head with ``D_t`` outputs has a ``D_t × H`` weight matrix, so what a "column" of
``W`` is needs a choice (``level``):

* ``"task"`` — one column per task: the flattened ``V_t`` (``d = D·H``). Only possible when every task
  has the same number of outputs ``D``; Ω is ``T × T``.
* ``"unit"`` — one column per output unit (a row of some ``V_t``, ``d = H``): Ω is ``(Σ_t D_t)²`` and
  relates, e.g., each digit class to the parity output. A task with one output is one unit.
* ``"auto"`` (default) — ``"task"`` when all tasks have the same number of outputs, else ``"unit"``.

On the digits data (10 epochs, the defaults) the learned Ω relates the parity output positively to
the odd digit classes and negatively to the even ones — the relation the data was built with.

Defaults (our choices): the hard-sharing trunk; ``λ = 1e-4`` (the penalty grows with the number of
columns, and this keeps it a fraction of the task losses on the digits data); Ω updated every 25 steps;
``ε = 1e-4``; Ω starts at ``I/m`` (no relation, the paper's initialisation).

``omega`` and ``omega_inv`` are buffers (saved with the model). ``inspect()`` returns
``task_relation`` — the ``T × T`` correlation matrix of Ω (at the unit level: for each pair of tasks
the unit correlation of largest magnitude, signed) — and, when it has at most 32 columns, Ω itself.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.trunks import build_trunk
from mtl_lab.tasks import Task

LEVELS = ("auto", "task", "unit")
RECORD_OMEGA_UP_TO = 32


def check_positive(value, what: str, integer: bool = False) -> None:
    kinds = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a {'positive int' if integer else 'finite number > 0'}, got {value!r}")


def resolve_level(level: str, tasks: list[Task]) -> str:
    """``"task"`` or ``"unit"``, with a clear error when ``"task"`` is impossible."""
    if level not in LEVELS:
        raise ValueError(f"level {level!r} is not one of {LEVELS}")
    dims = {t.name: t.out_dim for t in tasks}
    same = len(set(dims.values())) == 1
    if level == "task" and not same:
        raise ValueError(
            f"level='task' needs every task to have the same number of outputs, got {dims}; use level='unit'"
        )
    if level == "auto":
        return "task" if same else "unit"
    return level


class TaskRelation(MultiTaskModel):
    """A shared trunk, linear heads, and the MTRL penalty ``λ·tr(W Ω⁻¹ Wᵀ)`` with a learned Ω."""

    architecture = "relation"

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        trunk: str = "mlp",
        strength: float = 1e-4,
        update_every: int = 25,
        eps: float = 1e-4,
        level: str = "auto",
        **trunk_options,
    ) -> None:
        super().__init__(tasks)
        check_positive(strength, "strength (λ)")
        check_positive(update_every, "update_every", integer=True)
        check_positive(eps, "eps")
        self.strength, self.update_every, self.eps = float(strength), update_every, float(eps)
        self.level = resolve_level(level, tasks)
        self.trunk = build_trunk(trunk, input_shape, **trunk_options)
        self.heads = nn.ModuleDict({t.name: nn.Linear(self.trunk.out_dim, t.out_dim) for t in tasks})
        if self.level == "task":
            self.columns = list(self.task_names)
        else:
            self.columns = [t.name if t.out_dim == 1 else f"{t.name}[{i}]" for t in tasks for i in range(t.out_dim)]
        self.column_task = [t.name for t in tasks for _ in range(1 if self.level == "task" else t.out_dim)]
        m = len(self.columns)
        self.register_buffer("omega", torch.eye(m) / m)
        self.register_buffer("omega_inv", torch.eye(m) * m)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: head(rep) for name, head in self.heads.items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        return list(self.heads[name].parameters())

    def weight_columns(self) -> torch.Tensor:
        """``W`` (``d × m``): one column per task (flattened head) or per output unit (a head row)."""
        if self.level == "task":
            return torch.stack([self.heads[n].weight.reshape(-1) for n in self.task_names], dim=1)
        return torch.cat([self.heads[n].weight for n in self.task_names], dim=0).T

    def regularizer(self) -> torch.Tensor:
        """``λ · tr(W Ω⁻¹ Wᵀ)`` with Ω held fixed."""
        W = self.weight_columns()
        return self.strength * ((W @ self.omega_inv) * W).sum()

    @torch.no_grad()
    def update_omega(self) -> None:
        """The closed-form step ``Ω = (WᵀW + εI)^{1/2} / tr(…)`` (and its inverse), in float64."""
        W = self.weight_columns().double()
        m = W.shape[1]
        gram = W.T @ W + self.eps * torch.eye(m, dtype=W.dtype, device=W.device)
        values, vectors = torch.linalg.eigh(gram)
        roots = values.clamp(min=self.eps).sqrt()
        trace = roots.sum()
        omega = (vectors * roots) @ vectors.T / trace
        omega_inv = (vectors / roots) @ vectors.T * trace
        self.omega.copy_(omega.to(self.omega.dtype))
        self.omega_inv.copy_(omega_inv.to(self.omega_inv.dtype))

    def after_step(self, step: int) -> None:
        if (step + 1) % self.update_every == 0:
            self.update_omega()

    def correlation(self) -> torch.Tensor:
        """Ω scaled to unit diagonal: ``Ω_ij / sqrt(Ω_ii Ω_jj)``."""
        d = self.omega.diagonal().clamp(min=1e-12).sqrt()
        return self.omega / torch.outer(d, d)

    def task_relation(self) -> torch.Tensor:
        """``T × T``: Ω's correlations between tasks (per task pair, the strongest unit correlation)."""
        corr = self.correlation()
        index = {n: [k for k, owner in enumerate(self.column_task) if owner == n] for n in self.task_names}
        T = len(self.task_names)
        relation = torch.eye(T, dtype=corr.dtype, device=corr.device)
        for i, a in enumerate(self.task_names):
            for j, b in enumerate(self.task_names):
                if i != j:
                    block = corr[index[a]][:, index[b]].reshape(-1)
                    relation[i, j] = block[block.abs().argmax()]
        return relation

    @torch.no_grad()
    def inspect(self) -> dict:
        """``{"task_relation": T×T, "omega": Ω (only with ≤ 32 columns)}``."""
        record = {"task_relation": self.task_relation().tolist()}
        if len(self.columns) <= RECORD_OMEGA_UP_TO:
            record["omega"] = self.omega.tolist()
        return record

    def describe(self) -> dict:
        return {**super().describe(), "level": self.level, "columns": list(self.columns)}
