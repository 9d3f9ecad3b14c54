"""Soft parameter sharing: one network per task, coupled by a penalty on their differences.

Duong, Cohn, Bird and Cook, "Low Resource Dependency Parsing: Cross-lingual Parameter Sharing in a
Neural Network Parser", ACL 2015 — two parsers, one per language, trained together with an ℓ2
penalty that keeps their weights close. With ``T`` tasks each task ``t`` has its own column (a trunk
with parameters ``θ_t``) and its own head; nothing is shared, and the training objective is::

    Σ_t w_t L_t(h_t(f_{θ_t}(x)), y_t)  +  λ · Σ_{i<j} ‖θ_i − θ_j‖²

The coupling penalty is :meth:`SoftSharing.regularizer`: the Trainer adds it to the objective (after
the weighting method has combined the task losses) and records its value at every step, so a plot
shows it as its own curve. Its gradient for column ``i`` is ``2λ·Σ_j (θ_i − θ_j)``: every column is
pulled towards the others. ``λ = 0`` gives ``T`` independent networks; as ``λ → ∞`` the columns are
forced equal and the model becomes hard sharing.

Only the trunks are coupled (the heads have different shapes). By default every column starts from
the same random initialisation (``same_init=True``), so the penalty starts at 0 and its curve shows
how far the tasks pull the columns apart; ``same_init=False`` draws each column independently.
Defaults: the columns are the hard-sharing trunk (the trunk's own defaults), ``λ = 0.01`` (our
choice: on the digits data, after 10 epochs of Adam at 1e-3, the mean ``‖θ_i − θ_j‖²`` is about 0.5,
against about 80 with ``λ = 0`` and 0.006 with ``λ = 1`` — close, but not frozen together).

There is no shared trunk (``has_shared_trunk = False``): ``shared_parameters()`` is empty, each
task owns its column and head, the gradient diagnostics report "not applicable", and
``encode``/``decode`` are not available. ``inspect()`` returns the matrix of squared distances
``‖θ_i − θ_j‖²`` so a view can show which columns drift apart.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parameters_to_vector

from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.hard import make_head
from mtl_lab.models.trunks import build_trunk
from mtl_lab.tasks import Task


class SoftSharing(MultiTaskModel):
    """One trunk and head per task; the trunks are tied by ``coupling · Σ_{i<j} ‖θ_i − θ_j‖²``."""

    architecture = "soft_sharing"
    has_shared_trunk = False

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        trunk: str = "mlp",
        head_hidden: tuple[int, ...] = (),
        coupling: float = 1e-2,
        same_init: bool = True,
        **trunk_options,
    ) -> None:
        super().__init__(tasks)
        if isinstance(coupling, bool) or not isinstance(coupling, int | float) or not math.isfinite(coupling):
            raise ValueError(f"coupling (λ) must be a finite number ≥ 0, got {coupling!r}")
        if coupling < 0:
            raise ValueError(f"coupling (λ) must be ≥ 0, got {coupling!r}")
        self.coupling = float(coupling)
        self.columns = nn.ModuleDict({t.name: build_trunk(trunk, input_shape, **trunk_options) for t in tasks})
        if same_init:
            first = self.columns[self.task_names[0]].state_dict()
            for name in self.task_names[1:]:
                self.columns[name].load_state_dict(first)
        width = self.columns[self.task_names[0]].out_dim
        self.heads = nn.ModuleDict({t.name: make_head(width, t.out_dim, tuple(head_hidden)) for t in tasks})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: self.heads[name](self.columns[name](x)) for name in self.task_names}

    def shared_parameters(self) -> list[nn.Parameter]:
        return []

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        return list(self.columns[name].parameters()) + list(self.heads[name].parameters())

    def column_vectors(self) -> torch.Tensor:
        """Every column's trunk parameters as one row: ``Θ[T, P]``."""
        return torch.stack([parameters_to_vector(self.columns[n].parameters()) for n in self.task_names])

    def distances(self) -> torch.Tensor:
        """``D[i, j] = ‖θ_i − θ_j‖²`` for every pair of columns, ``[T, T]``."""
        theta = self.column_vectors()
        return (theta.unsqueeze(0) - theta.unsqueeze(1)).pow(2).sum(dim=-1)

    def regularizer(self) -> torch.Tensor | None:
        """``λ · Σ_{i<j} ‖θ_i − θ_j‖²`` (``None`` when ``λ = 0``: no term in the objective)."""
        if self.coupling == 0:
            return None
        theta = self.column_vectors()
        total = theta.new_zeros(())
        for i in range(len(self.task_names)):
            for j in range(i + 1, len(self.task_names)):
                total = total + (theta[i] - theta[j]).pow(2).sum()
        return self.coupling * total

    @torch.no_grad()
    def inspect(self) -> dict:
        """``{"distances": ‖θ_i − θ_j‖² for every pair of columns}``."""
        return {"distances": self.distances().tolist()}
