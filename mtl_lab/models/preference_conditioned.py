"""A preference-conditioned network: one model for every trade-off (Pareto-set learning, COSMOS style).

Paper: Michael Ruchte and Josif Grabocka, "Scalable Pareto Front Approximation for Deep Multi-Objective
Learning" (COSMOS), ICDM 2021. The model takes the preference ``r`` (a point of the simplex, one entry
per task) as an extra input, ``f_θ(x, r)``; trained with a fresh ``r ~ Dirichlet(α)`` each step on the
loss ``Σ_t r_t L_t − λ cos(r, L)`` (:mod:`mtl_lab.weighting.cosmos_sampled`), it learns the whole
front at once: after training, moving ``r`` moves the model along its trade-off with forward passes only.

How ``r`` enters (``condition``):

* ``"input"`` — concatenated to the (flattened) input only, ``h₁ = ReLU(W₁[x; r])``: what COSMOS does
  for tabular data. With 64 input features and 2 preference entries the preference is a small part of
  the first layer's input, and what it changes can be washed out by the layers after it.
* ``"every_layer"`` (default) — concatenated to the input of *every* trunk layer,
  ``h_{k+1} = ReLU(W_k[h_k; r])``: each layer can shift its units with ``r``, so the representation
  the heads read moves with the preference. In notebook 13 (two tasks, a one-unit bottleneck) the
  ``"every_layer"`` model's front reached 1.3 along task 0's error, the ``"input"`` model's 0.85.

The task heads are linear maps of the representation (as in hard sharing); the trunk is the shared
part (``shared_parameters``). In training mode the model reads the sampler's current preference (one per
step, the same one the loss uses); in evaluation mode it reads :attr:`evaluation_preference`, set with
:meth:`set_preference` (default: the centre of the simplex) — so the validation metrics a run records
after each epoch are those of one fixed preference, not of a random one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mtl_lab import validate
from mtl_lab.models.hard import make_head
from mtl_lab.models.preference import PreferenceModel, PreferenceSampler
from mtl_lab.models.trunks import check_widths
from mtl_lab.tasks import Task

CONDITIONS = ("input", "every_layer")


class PreferenceLayer(nn.Module):
    """``ReLU(W [h; r] + b)``: a layer that reads the preference beside its input."""

    def __init__(self, in_dim: int, out_dim: int, n_tasks: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim + n_tasks, out_dim)

    def forward(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(torch.cat([h, r.expand(h.shape[0], -1)], dim=1)))


class PlainLayer(nn.Module):
    """``ReLU(W h + b)``: a layer that does not read the preference (its ``r`` argument is unused)."""

    def __init__(self, in_dim: int, out_dim: int, n_tasks: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(h))


def layer_kinds(condition: str, depth: int) -> list[type[nn.Module]]:
    """Which layers read ``r``: the first only (``input``) or all of them (``every_layer``)."""
    validate.check_choice("condition", condition, CONDITIONS)
    return [PreferenceLayer if (k == 0 or condition == "every_layer") else PlainLayer for k in range(depth)]


class PreferenceConditioned(PreferenceModel):
    """An MLP trunk that reads the preference (see ``condition``) and one linear head per task.

    Args:
        tasks: the task specs (at least 2: a preference needs a trade-off).
        input_shape: the shape of one input (flattened).
        sampler: the :class:`PreferenceSampler` shared with the loss; its ``n_tasks`` must match.
        hidden: the trunk's widths.
        condition: ``"every_layer"`` or ``"input"`` (module docstring).
    """

    architecture = "preference_conditioned"

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        sampler: PreferenceSampler,
        hidden: tuple[int, ...] | list[int] = (64, 64),
        condition: str = "every_layer",
    ) -> None:
        super().__init__(tasks, sampler, "a preference-conditioned model")
        widths = check_widths(hidden, "hidden")
        self.condition = condition
        T = len(tasks)
        kinds = layer_kinds(condition, len(widths))
        inputs = [math.prod(input_shape), *widths[:-1]]
        self.layers = nn.ModuleList([kind(i, o, T) for kind, i, o in zip(kinds, inputs, widths)])
        self.heads = nn.ModuleDict({t.name: make_head(widths[-1], t.out_dim) for t in tasks})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        r = self.preference().unsqueeze(0)  # [1, T], beside every row
        h = x.flatten(1)
        for layer in self.layers:
            h = layer(h, r)
        return h

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: head(rep) for name, head in self.heads.items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.layers.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        return list(self.heads[name].parameters())
