"""Learning to Branch: one column of layers per task; each layer learns which column it continues from.

Pengsheng Guo, Chen-Yu Lee and Daniel Ulbricht, "Learning to Branch for Multi-Task Learning", ICML 2020;
the form follows LibMTL's ``LTB`` architecture.

The network is a grid of nodes: block ``l`` of the trunk exists once per task (node ``(l, t)``). Node
``(l, t)`` reads the output of *one* node of the layer below, its parent, chosen by a learned categorical
distribution ``softmax(α^l_t)`` over the ``T`` candidates::

    x_{l, t} = block_{l, t}( Σ_s z^l_{ts} x_{l−1, s} )       z^l_t = one-hot sample of softmax(α^l_t)

Training samples ``z`` with the straight-through Gumbel-softmax (Jang et al. 2017): the forward pass uses
the hard one-hot sample, the gradient that of the soft sample ``softmax((α + g)/τ)`` (``g`` Gumbel noise),
so the branching logits ``α`` learn with the weights. The noise is drawn once per optimiser step (in
:meth:`after_step`), so every forward pass of one step — each task's gradient, extra batches — sees the
same branching. When two tasks pick the same parents all the way down,
they share those layers: the tree of the argmax parents is the learned branching. In evaluation mode
``z`` is the argmax (deterministic). Block 0 of every column reads the input; task ``t``'s head reads
node ``(L−1, t)``.

Temperature: ``τ_k = tau / √(1 + ⌊k / decay_steps⌋)`` after ``k`` optimiser steps — LibMTL's schedule
``τ = (epochs/20)/√(epoch + 1)`` with one "epoch" every ``decay_steps`` steps; ``tau = 5.0`` is its value
for 100 epochs. The paper's final stage (fix the argmax tree and retrain it) is not automated: the tree
is in ``inspect()["parents"]``.

Blocks are cut from the hard-sharing trunk as for cross-stitch (:func:`~mtl_lab.models.cross_stitch.trunk_blocks`).
Every column and every ``α`` is shared; the heads are the task parameters. :meth:`LearningToBranch.encode`
returns the last layer's ``T`` node outputs side by side, ``[B, T·D]``. Gumbel noise comes from the global
torch generator, as dropout's does (seeded by the Trainer).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.cross_stitch import column_heads, task_columns
from mtl_lab.models.hard import make_head
from mtl_lab.tasks import Task


class LearningToBranch(MultiTaskModel):
    """``T`` columns of the trunk's blocks; each node picks its parent column by a Gumbel-softmax sample."""

    architecture = "ltb"

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        trunk: str = "mlp",
        head_hidden: tuple[int, ...] = (),
        tau: float = 5.0,
        decay_steps: int = 100,
        **trunk_options,
    ) -> None:
        super().__init__(tasks)
        if isinstance(tau, bool) or not isinstance(tau, int | float) or not (math.isfinite(tau) and tau > 0):
            raise ValueError(f"tau (the initial Gumbel-softmax temperature) must be a finite number > 0, got {tau!r}")
        if isinstance(decay_steps, bool) or not isinstance(decay_steps, int) or decay_steps < 1:
            raise ValueError(f"decay_steps must be an int ≥ 1, got {decay_steps!r}")
        self.columns, self.width = task_columns(tasks, trunk, input_shape, **trunk_options)
        n_blocks = len(self.columns[self.task_names[0]])
        T = len(tasks)
        self.alpha = nn.ParameterList([nn.Parameter(torch.zeros(T, T)) for _ in range(n_blocks - 1)])
        self.heads = nn.ModuleDict({t.name: make_head(self.width, t.out_dim, tuple(head_hidden)) for t in tasks})
        self.tau0 = float(tau)
        self.decay_steps = decay_steps
        self.register_buffer("steps_taken", torch.zeros((), dtype=torch.long))  # checkpointed with the weights
        self.register_buffer("noise", torch.zeros(max(n_blocks - 1, 0), T, T))  # this step's Gumbel noise
        self.draw_noise()

    @property
    def tau(self) -> float:
        """The current Gumbel-softmax temperature."""
        return self.tau0 / math.sqrt(1 + int(self.steps_taken) // self.decay_steps)

    @torch.no_grad()
    def draw_noise(self) -> None:
        """Fresh Gumbel noise ``g = −log E``, ``E ~ Exp(1)``, for every layer's choices."""
        self.noise.copy_(-torch.empty_like(self.noise).exponential_().log())

    def choices(self, depth: int) -> torch.Tensor:
        """``z[T, T]`` of layer ``depth`` (from 1): row ``t`` one-hot on node ``t``'s parent; while training
        the straight-through sample ``hard − soft.detach() + soft``."""
        logits = self.alpha[depth - 1]
        if not self.training:
            return F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).to(logits.dtype)
        soft = torch.softmax((logits + self.noise[depth - 1].to(logits)) / self.tau, dim=-1)
        hard = F.one_hot(soft.argmax(dim=-1), soft.shape[-1]).to(soft.dtype)
        return hard - soft.detach() + soft

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The last layer's node outputs side by side, ``[B, T·D]``."""
        nodes = [self.columns[name][0](x) for name in self.task_names]
        for depth in range(1, len(self.alpha) + 1):
            z = self.choices(depth)
            stacked = torch.stack(nodes)  # [T, B, ...]
            inputs = torch.tensordot(z, stacked, dims=([1], [0]))  # row t: its parent's output
            nodes = [self.columns[name][depth](inputs[t]) for t, name in enumerate(self.task_names)]
        return torch.cat(nodes, dim=1)

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        return column_heads(self.heads, rep, self.width, self.task_names)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.columns.parameters()) + list(self.alpha.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        return list(self.heads[name].parameters())

    def after_step(self, step: int) -> None:
        self.steps_taken.fill_(step + 1)
        self.draw_noise()

    @torch.no_grad()
    def inspect(self) -> dict:
        """Branching probabilities ``softmax(α^l)`` per layer, each node's argmax parent, the temperature."""
        return {"branch_probabilities": [torch.softmax(a, dim=-1).tolist() for a in self.alpha],
                "parents": [a.argmax(dim=-1).tolist() for a in self.alpha], "tau": self.tau}
