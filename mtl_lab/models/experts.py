"""Building blocks of the mixture-of-experts architectures (MMoE, OMoE, CGC, PLE).

An **expert** is a small network ``f_i(x)`` that maps the input to a vector of width ``D``; here any
trunk of :mod:`mtl_lab.models.trunks` (an MLP, or a CNN for images) serves as an expert. A **gate**
is a linear layer followed by a softmax: ``g(x) = softmax(W_g·x + b_g)`` gives one weight per expert,
all positive and summing to 1, and the gated **mixture** is ``Σ_i g_i(x)·f_i(x)``.

Default sizes (our choice): MLP experts of one hidden layer with 64 units and task towers of one
hidden layer with 32 units. The synthetic study of the MMoE paper (Ma et al., KDD 2018) uses experts
of 16 units and towers of 8 (``PAPER_EXPERT_HIDDEN``, ``PAPER_TOWER_HIDDEN``; the reproduction in
``benchmarks/mmoe_synthetic.py`` uses them), but an 8-unit tower is a bottleneck for a 10-class or a
64-output task: on the digits data (10 epochs, Adam 1e-3, batch 64) an MMoE of those sizes reaches
about 0.79 validation accuracy on the digit class, one of the default sizes about 0.92.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mtl_lab.models.trunks import build_trunk

EXPERT_HIDDEN = (64,)
TOWER_HIDDEN = (32,)
PAPER_EXPERT_HIDDEN = (16,)  # MMoE paper, synthetic data: single-layer experts of 16 units
PAPER_TOWER_HIDDEN = (8,)  # MMoE paper, synthetic data: towers of 8 hidden units


def flat_dim(input_shape: tuple[int, ...]) -> int:
    """Number of scalars in one input (what a gate reads, flattened)."""
    return math.prod(input_shape)


def check_count(value: int, what: str, low: int = 1) -> int:
    """``value`` if it is an int ≥ ``low``, else a ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{what} must be an int ≥ {low}, got {value!r}")
    return value


def with_expert_defaults(trunk: str, options: dict) -> dict:
    """The trunk options of one expert: MLP experts default to one hidden layer of 64 units."""
    options = dict(options)
    if trunk == "mlp":
        options.setdefault("hidden", EXPERT_HIDDEN)
    return options


def build_experts(count: int, trunk: str, input_shape: tuple[int, ...], options: dict) -> nn.ModuleList:
    """``count`` independently initialised experts, each a trunk of kind ``trunk``."""
    opts = with_expert_defaults(trunk, options)
    return nn.ModuleList([build_trunk(trunk, input_shape, **opts) for _ in range(count)])


def run_experts(experts: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """The outputs of every expert on ``x``, stacked: ``[B, n_experts, D]``."""
    return torch.stack([expert(x) for expert in experts], dim=1)


def gate_weights(gate: nn.Linear, gate_input: torch.Tensor) -> torch.Tensor:
    """``softmax(W_g·x + b_g)`` over the experts, from the flattened ``gate_input``: ``[B, n_experts]``."""
    return F.softmax(gate(gate_input.flatten(1)), dim=-1)


def mix(weights: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """``Σ_i w_i·f_i`` per row: weights ``[B, E]`` and expert outputs ``[B, E, D]`` give ``[B, D]``."""
    return torch.einsum("be,bed->bd", weights, outputs)


def gate_means(gates: dict[str, torch.Tensor]) -> dict[str, list[float]]:
    """The mean gate weight of every expert over the batch, per gate (for ``inspect()``)."""
    return {name: w.mean(dim=0).tolist() for name, w in gates.items()}


def gated_outputs(
    rep: torch.Tensor, num_experts: int, expert_dim: int, weigh: Callable[[str, torch.Tensor], torch.Tensor],
    towers: nn.ModuleDict, last_gates: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """The decode of a per-task-gated mixture (MMoE, DSelect-k): ``rep = [expert outputs | gate input]``;
    task t's output is ``tower_t(Σ_i w_t,i(x) f_i(x))`` with ``w_t = weigh(t, x)``; the weights are kept in
    ``last_gates`` for :func:`gate_means`."""
    split = num_experts * expert_dim
    outputs = rep[:, :split].reshape(-1, num_experts, expert_dim)
    gate_input = rep[:, split:].detach()
    result = {}
    for name, tower in towers.items():
        weights = weigh(name, gate_input)
        last_gates[name] = weights.detach()
        result[name] = tower(mix(weights, outputs))
    return result
