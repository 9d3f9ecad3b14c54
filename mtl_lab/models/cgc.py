"""Customized Gate Control (CGC) and Progressive Layered Extraction (PLE).

Tang, Liu, Zhao and Gong, "Progressive Layered Extraction (PLE): A Novel Multi-Task Learning (MTL)
Model for Personalized Recommendations", RecSys 2020.

**CGC** splits MMoE's experts into *shared* experts ``S_1 … S_ms`` that every task may use and
*task-specific* experts ``E^k_1 … E^k_mk`` that only task ``k`` may use. Task ``k``'s gate chooses
among its own experts and the shared ones only::

    g^k(x) = softmax(W_k·x)                           # weights over [E^k_1 … E^k_mk, S_1 … S_ms]
    q^k(x) = Σ_i g^k(x)_i · [E^k(x) ; S(x)]_i
    y_k    = h^k(q^k(x))

so a task can keep private features away from the others (the "seesaw" of MMoE, where improving one
task hurts another, is what the paper sets out to fix).

**PLE** stacks ``L`` such extraction levels. At level ``j`` the task-``k`` branch reads ``q^k_{j-1}``
and the shared branch reads ``q^s_{j-1}`` (both are ``x`` at level 1); besides the task gates, every
level but the last has a *shared gate* over **all** experts of the level::

    q^s_j = Σ_i g^s_j(q^s_{j-1})_i · [E^1 ; … ; E^K ; S]_i

which feeds the next level's shared experts. The towers read the last level's ``q^k_L``. CGC is PLE
with one level, and that is how it is built here.

Which parameters belong to whom: the towers and the **last** level's task-``k`` experts and gate are
task ``k``'s; everything below the last level is shared, because a lower level's task expert also
feeds the shared gate and so reaches every task.

Defaults (our choice; the paper tunes the expert counts per data set): 2 shared experts and 1 expert
per task at every level, experts of one hidden layer with 64 units and towers of 32 units (the
mixture-of-experts defaults of :mod:`mtl_lab.models.experts`), and 2 levels for PLE. With
``trunk="cnn"`` the first level's experts are CNNs over the image (gates read the flattened image);
upper levels' experts are MLPs on the ``D``-wide vectors of the level below (``upper_hidden``,
default one layer of width ``D``).

Gate weights of the last forward pass are kept, detached, in ``last_gates``: the last level's task
gates under the task names, lower levels' gates as ``"<task> (level j)"`` and ``"shared (level j)"``;
``describe()["gate_experts"]`` names the experts each gate chooses among, in order.
"""

from __future__ import annotations

import torch
from torch import nn

from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.experts import (
    TOWER_HIDDEN,
    build_experts,
    check_count,
    flat_dim,
    gate_means,
    gate_weights,
    mix,
    run_experts,
    with_expert_defaults,
)
from mtl_lab.models.hard import make_head
from mtl_lab.tasks import Task


class ExtractionLevel(nn.Module):
    """One level: shared experts, ``task_experts`` experts per task, a gate per task, maybe a shared gate."""

    def __init__(
        self,
        task_names: list[str],
        trunk: str,
        input_shape: tuple[int, ...],
        options: dict,
        shared_experts: int,
        task_experts: int,
        with_shared_gate: bool,
    ) -> None:
        super().__init__()
        self.task_names = list(task_names)
        self.shared = build_experts(shared_experts, trunk, input_shape, options)
        self.specific = nn.ModuleDict({n: build_experts(task_experts, trunk, input_shape, options) for n in task_names})
        self.out_dim = self.shared[0].out_dim
        gate_dim = flat_dim(input_shape)
        self.gates = nn.ModuleDict({n: nn.Linear(gate_dim, task_experts + shared_experts) for n in task_names})
        n_all = len(task_names) * task_experts + shared_experts
        self.shared_gate = nn.Linear(gate_dim, n_all) if with_shared_gate else None

    def task_mixture(
        self, name: str, task_input: torch.Tensor, shared_outputs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``q^k``, its gate weights, and the task's own expert outputs ``[B, mk, D]``."""
        own = run_experts(self.specific[name], task_input)
        weights = gate_weights(self.gates[name], task_input)
        return mix(weights, torch.cat([own, shared_outputs], dim=1)), weights, own

    def forward(
        self, shared_input: torch.Tensor, task_inputs: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """A lower level: ``q^s``, ``{task: q^k}`` and ``{gate name: weights}``."""
        shared_outputs = run_experts(self.shared, shared_input)
        mixtures, gates, owns = {}, {}, []
        for name in self.task_names:
            mixtures[name], gates[name], own = self.task_mixture(name, task_inputs[name], shared_outputs)
            owns.append(own)
        gates["shared"] = gate_weights(self.shared_gate, shared_input)
        shared_mixture = mix(gates["shared"], torch.cat(owns + [shared_outputs], dim=1))
        return shared_mixture, mixtures, gates


class PLE(MultiTaskModel):
    """``levels`` extraction levels of shared and task-specific experts, then one tower per task."""

    architecture = "ple"

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        trunk: str = "mlp",
        levels: int = 2,
        shared_experts: int = 2,
        task_experts: int = 1,
        tower_hidden: tuple[int, ...] = TOWER_HIDDEN,
        upper_hidden: tuple[int, ...] | None = None,
        **expert_options,
    ) -> None:
        super().__init__(tasks)
        check_count(levels, "levels")
        check_count(shared_experts, "shared_experts")
        check_count(task_experts, "task_experts")
        self.input_shape = tuple(input_shape)
        self.n_shared, self.n_task = shared_experts, task_experts
        self.levels = nn.ModuleList()
        shape, options, kind = self.input_shape, with_expert_defaults(trunk, expert_options), trunk
        for j in range(levels):
            level = ExtractionLevel(self.task_names, kind, shape, options, shared_experts, task_experts, j < levels - 1)
            self.levels.append(level)
            width = level.out_dim
            shape, kind, options = (width,), "mlp", {"hidden": tuple(upper_hidden or (width,))}
        self.expert_dim = self.levels[-1].out_dim
        self.towers = nn.ModuleDict({t.name: make_head(self.expert_dim, t.out_dim, tuple(tower_hidden)) for t in tasks})
        self.last_gates: dict[str, torch.Tensor] = {}

    @property
    def last_level(self) -> ExtractionLevel:
        return self.levels[-1]

    def lower_levels(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run every level but the last: the last level's shared input and task inputs."""
        shared_input, task_inputs = x, {name: x for name in self.task_names}
        for j, level in enumerate(self.levels[:-1]):
            shared_input, task_inputs, gates = level(shared_input, task_inputs)
            for name, weights in gates.items():
                self.last_gates[f"{name} (level {j + 1})"] = weights.detach()
        return shared_input, task_inputs

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The last level's shared expert outputs, then what its task branches read.

        With one level (CGC) the task branches read the input itself (flattened; :meth:`decode`
        detaches it); with more, they read the task mixtures ``q^k`` of the level below.
        """
        shared_input, task_inputs = self.lower_levels(x)
        shared_outputs = run_experts(self.last_level.shared, shared_input)
        if len(self.levels) == 1:
            return torch.cat([shared_outputs.flatten(1), x.flatten(1)], dim=1)
        return torch.cat([shared_outputs.flatten(1)] + [task_inputs[n] for n in self.task_names], dim=1)

    def split_rep(self, rep: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Undo :meth:`encode`'s concatenation: shared outputs ``[B, ms, D]`` and each task branch's input."""
        cut = self.n_shared * self.expert_dim
        shared_outputs = rep[:, :cut].reshape(-1, self.n_shared, self.expert_dim)
        rest = rep[:, cut:]
        if len(self.levels) == 1:
            x = rest.detach().reshape(-1, *self.input_shape)
            return shared_outputs, {name: x for name in self.task_names}
        chunks = rest.split(self.levels[-2].out_dim, dim=1)
        return shared_outputs, dict(zip(self.task_names, chunks))

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        shared_outputs, task_inputs = self.split_rep(rep)
        result = {}
        for name in self.task_names:
            mixture, weights, _ = self.last_level.task_mixture(name, task_inputs[name], shared_outputs)
            self.last_gates[name] = weights.detach()
            result[name] = self.towers[name](mixture)
        return result

    def shared_parameters(self) -> list[nn.Parameter]:
        params = [p for level in self.levels[:-1] for p in level.parameters()]
        return params + list(self.last_level.shared.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        level = self.last_level
        return list(level.specific[name].parameters()) + list(level.gates[name].parameters()) + list(
            self.towers[name].parameters()
        )

    def inspect(self) -> dict:
        """``{"gates": {gate name: mean weight of each expert over the last batch}}``."""
        return {"gates": gate_means(self.last_gates)} if self.last_gates else {}

    def gate_experts(self) -> dict[str, list[str]]:
        """For every gate, the names of the experts it weighs, in order."""
        shared = [f"shared {i}" for i in range(self.n_shared)]
        own = {n: [f"{n} {i}" for i in range(self.n_task)] for n in self.task_names}
        names: dict[str, list[str]] = {}
        for j in range(len(self.levels) - 1):
            for n in self.task_names:
                names[f"{n} (level {j + 1})"] = own[n] + shared
            names[f"shared (level {j + 1})"] = [e for n in self.task_names for e in own[n]] + shared
        for n in self.task_names:
            names[n] = own[n] + shared
        return names

    def describe(self) -> dict:
        return {**super().describe(), "levels": len(self.levels), "gate_experts": self.gate_experts()}


class CGC(PLE):
    """One extraction level: shared experts, task-specific experts, one gate and tower per task."""

    architecture = "cgc"

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        trunk: str = "mlp",
        shared_experts: int = 2,
        task_experts: int = 1,
        tower_hidden: tuple[int, ...] = TOWER_HIDDEN,
        **expert_options,
    ) -> None:
        super().__init__(
            tasks,
            input_shape,
            trunk=trunk,
            levels=1,
            shared_experts=shared_experts,
            task_experts=task_experts,
            tower_hidden=tower_hidden,
            **expert_options,
        )
