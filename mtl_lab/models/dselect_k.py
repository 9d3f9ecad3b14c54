"""DSelect-k: a mixture of experts whose gates select (at most) k experts per task, differentiably.

Hazimeh, Zhao, Chowdhery, Sathiamoorthy, Chen, Mazumder, Hong and Chi, "DSelect-k: Differentiable
Selection in the Mixture of Experts with Applications to Multi-Task Learning", NeurIPS 2021.

The architecture is MMoE's (:mod:`mtl_lab.models.mmoe`): ``n`` shared experts ``f_i``, and per task a gate
and a tower. Only the gate differs. A softmax gate never reaches exact zeros; DSelect-k's gate is
built so that it can, while staying differentiable. With ``n = 2^m`` experts, each expert ``i`` has an
``m``-bit binary code ``b(i)``, and a **single expert selector** with logits ``z ∈ ℝ^m`` gives::

    S(t) = 0                               for t ≤ −γ/2
           −2t³/γ³ + 3t/(2γ) + 1/2         for −γ/2 < t < γ/2          (the smooth step)
           1                               for t ≥ γ/2
    r(z)_i = Π_j ( S(z_j) if b(i)_j = 1 else 1 − S(z_j) )               (a distribution over the experts)

Once every ``z_j`` is outside ``(−γ/2, γ/2)`` the ``S(z_j)`` are 0 or 1, and ``r(z)`` puts all its mass on
exactly one expert: the one whose code they spell. A task's gate combines ``k`` such selectors with a
softmax over ``k`` weights ``w``::

    g(x) = Σ_{l=1..k} softmax(w(x))_l · r(z_l(x))        f^task(x) = Σ_i g(x)_i f_i(x)

so it uses at most ``k`` experts once its selectors have settled. Both ``z_l(x)`` and ``w(x)`` are linear
in the flattened input (the paper's per-example gate, as MMoE's gates here). ``g`` is a distribution:
its rows sum to 1 (the products ``r`` sum to ``Π_j (S + 1 − S) = 1``), which is why ``num_experts`` must
be a power of two here (the paper's setting).

Defaults: 8 experts, ``k = 2`` (LibMTL's ``num_nonzeros``), ``γ = 1`` (LibMTL's ``kgamma``), experts and
towers of :mod:`mtl_lab.models.experts`. The paper's entropy regulariser, which pushes each ``r(z_l)``
towards a single expert sooner, is left out (LibMTL has none either): the selectors converge under the
task losses alone, more slowly. The gate weights of the last forward pass are kept in ``last_gates``
and ``inspect()`` reports their batch means, so the Trainer records them like MMoE's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.experts import (
    TOWER_HIDDEN,
    build_experts,
    check_count,
    flat_dim,
    gate_means,
    gated_outputs,
    run_experts,
)
from mtl_lab.models.hard import make_head
from mtl_lab.tasks import Task


def smooth_step(t: torch.Tensor, gamma: float) -> torch.Tensor:
    """The cubic smooth step ``S``: 0 below ``−γ/2``, 1 above ``γ/2``, ``C¹`` in between."""
    inside = -2 / gamma**3 * t**3 + 3 / (2 * gamma) * t + 0.5
    return torch.where(t <= -gamma / 2, torch.zeros_like(t), torch.where(t >= gamma / 2, torch.ones_like(t), inside))


def binary_codes(num_experts: int) -> torch.Tensor:
    """``[n, m]``: row ``i`` is the binary code of ``i`` (least significant bit first)."""
    m = int(math.log2(num_experts))
    return torch.tensor([[(i >> j) & 1 for j in range(m)] for i in range(num_experts)], dtype=torch.float32)


def selector_distribution(z: torch.Tensor, codes: torch.Tensor, gamma: float) -> torch.Tensor:
    """``r(z)`` for logits ``z [..., m]``: ``[..., n]``, each row a distribution over the experts."""
    s = smooth_step(z, gamma).unsqueeze(-2)  # [..., 1, m]
    return torch.prod(codes * s + (1 - codes) * (1 - s), dim=-1)


class DSelectGate(nn.Module):
    """One task's gate: ``k`` selectors ``z_l(x)`` and their mixing weights ``w(x)``, both linear in ``x``."""

    def __init__(self, input_dim: int, num_experts: int, k: int, gamma: float) -> None:
        super().__init__()
        self.k, self.gamma = k, gamma
        self.m = int(math.log2(num_experts))
        self.selectors = nn.Linear(input_dim, k * self.m)
        self.mixing = nn.Linear(input_dim, k)
        self.register_buffer("codes", binary_codes(num_experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        z = self.selectors(flat).view(-1, self.k, self.m)
        r = selector_distribution(z, self.codes.to(z.dtype), self.gamma)  # [B, k, n]
        alpha = torch.softmax(self.mixing(flat), dim=-1)  # [B, k]
        return torch.einsum("bk,bkn->bn", alpha, r)


class DSelectK(MultiTaskModel):
    """Shared experts; per task a DSelect-k gate (at most k experts once settled) and a tower."""

    architecture = "dselect_k"

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        trunk: str = "mlp",
        num_experts: int = 8,
        k: int = 2,
        gamma: float = 1.0,
        tower_hidden: tuple[int, ...] = TOWER_HIDDEN,
        **expert_options,
    ) -> None:
        super().__init__(tasks)
        self.num_experts = check_count(num_experts, "num_experts", low=2)
        if num_experts & (num_experts - 1):
            raise ValueError(f"num_experts must be a power of two (2, 4, 8, 16 …) for DSelect-k, got {num_experts}")
        self.k = check_count(k, "k")
        if isinstance(gamma, bool) or not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma > 0):
            raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
        self.gamma = float(gamma)
        self.experts = build_experts(num_experts, trunk, tuple(input_shape), expert_options)
        self.expert_dim = self.experts[0].out_dim
        self.input_dim = flat_dim(input_shape)
        self.gates = nn.ModuleDict({t.name: DSelectGate(self.input_dim, num_experts, k, self.gamma) for t in tasks})
        self.towers = nn.ModuleDict({t.name: make_head(self.expert_dim, t.out_dim, tuple(tower_hidden)) for t in tasks})
        self.last_gates: dict[str, torch.Tensor] = {}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``[f_1(x) … f_n(x) | x]`` flattened: the experts' outputs, then the gates' input (as MMoE)."""
        outputs = run_experts(self.experts, x)
        return torch.cat([outputs.flatten(1), x.flatten(1)], dim=1)

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        return gated_outputs(rep, self.num_experts, self.expert_dim, lambda name, x: self.gates[name](x), self.towers,
                             self.last_gates)

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
