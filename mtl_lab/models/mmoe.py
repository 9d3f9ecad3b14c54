"""Multi-gate Mixture-of-Experts (MMoE) and its one-gate ablation (OMoE).

Ma, Zhao, Yi, Chen, Hong and Chi, "Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018. ``n`` experts ``f_i`` are shared by all tasks; each task
``k`` has its own gate and tower::

    g^k(x) = softmax(W_gk·x)                 # one weight per expert, they sum to 1
    f^k(x) = Σ_i g^k(x)_i · f_i(x)           # the task's own mixture of the shared experts
    y_k    = h^k(f^k(x))                     # the task's tower

Tasks that need the same features can put their gate weight on the same experts; tasks that conflict
can use different ones, so the model learns *how much* to share from the data. The one-gate variant
(OMoE, the paper's "MoE" baseline) has a single gate ``g(x)`` for all tasks: every task reads the same
mixture, so it is a shared-bottom model whose bottom is a mixture.

Defaults: 8 experts, as in the paper's synthetic study, of one hidden layer with 64 units, and towers
of one hidden layer with 32 units (the paper's 16-unit experts and 8-unit towers are too narrow for
10-class tasks; see :mod:`mtl_lab.models.experts`). Any trunk can be an expert: ``trunk="cnn"`` makes every
expert a small CNN (the gates still read the flattened image). The paper's gates are linear in the
raw input; so are these.

The gate weights of the last forward pass are kept, detached, in ``last_gates`` (``{task: [B, n]}``;
OMoE's single gate is called ``"all"``); ``inspect()`` returns their batch means, which the Trainer
records over time so a view can show which expert each task uses.

The representation that :meth:`MMoE.encode` returns is the experts' outputs side by side, followed by
the flattened input that the gates read; :meth:`MMoE.decode` detaches that input part, so the
gradients with respect to the representation only see the shared experts.
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
    gated_outputs,
    mix,
    run_experts,
)
from mtl_lab.models.hard import make_head
from mtl_lab.tasks import Task


class MMoE(MultiTaskModel):
    """Shared experts, one softmax gate and one tower per task."""

    architecture = "mmoe"

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        trunk: str = "mlp",
        num_experts: int = 8,
        tower_hidden: tuple[int, ...] = TOWER_HIDDEN,
        **expert_options,
    ) -> None:
        super().__init__(tasks)
        self.num_experts = check_count(num_experts, "num_experts")
        self.experts = build_experts(num_experts, trunk, tuple(input_shape), expert_options)
        self.expert_dim = self.experts[0].out_dim
        self.input_dim = flat_dim(input_shape)
        self.gates = nn.ModuleDict({t.name: nn.Linear(self.input_dim, num_experts) for t in tasks})
        self.towers = nn.ModuleDict({t.name: make_head(self.expert_dim, t.out_dim, tuple(tower_hidden)) for t in tasks})
        self.last_gates: dict[str, torch.Tensor] = {}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``[f_1(x) … f_n(x) | x]`` flattened: the experts' outputs, then the gates' input."""
        outputs = run_experts(self.experts, x)
        return torch.cat([outputs.flatten(1), x.flatten(1)], dim=1)

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        weigh = lambda name, x: gate_weights(self.gates[name], x)  # noqa: E731  (a softmax gate per task)
        return gated_outputs(rep, self.num_experts, self.expert_dim, weigh, self.towers, self.last_gates)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.experts.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        return list(self.gates[name].parameters()) + list(self.towers[name].parameters())

    def inspect(self) -> dict:
        """``{"gates": {task: mean weight of each expert over the last batch}}``."""
        return {"gates": gate_means(self.last_gates)} if self.last_gates else {}

    def describe(self) -> dict:
        experts = [f"expert {i}" for i in range(self.num_experts)]
        return {**super().describe(), "gate_experts": {name: experts for name in self.task_names}}


class OMoE(MultiTaskModel):
    """Shared experts and one softmax gate for all tasks (the MMoE paper's one-gate "MoE" baseline)."""

    architecture = "omoe"

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        trunk: str = "mlp",
        num_experts: int = 8,
        tower_hidden: tuple[int, ...] = TOWER_HIDDEN,
        **expert_options,
    ) -> None:
        super().__init__(tasks)
        self.num_experts = check_count(num_experts, "num_experts")
        self.experts = build_experts(num_experts, trunk, tuple(input_shape), expert_options)
        self.expert_dim = self.experts[0].out_dim
        self.gate = nn.Linear(flat_dim(input_shape), num_experts)
        self.towers = nn.ModuleDict({t.name: make_head(self.expert_dim, t.out_dim, tuple(tower_hidden)) for t in tasks})
        self.last_gates: dict[str, torch.Tensor] = {}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The one mixture ``Σ_i g(x)_i f_i(x)`` that every task reads."""
        weights = gate_weights(self.gate, x)
        self.last_gates["all"] = weights.detach()
        return mix(weights, run_experts(self.experts, x))

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: tower(rep) for name, tower in self.towers.items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.experts.parameters()) + list(self.gate.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        return list(self.towers[name].parameters())

    def inspect(self) -> dict:
        """``{"gates": {"all": mean weight of each expert over the last batch}}``."""
        return {"gates": gate_means(self.last_gates)} if self.last_gates else {}

    def describe(self) -> dict:
        return {**super().describe(), "gate_experts": {"all": [f"expert {i}" for i in range(self.num_experts)]}}
