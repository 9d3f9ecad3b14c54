"""A Pareto hypernetwork: a small network that turns the preference into the weights of the model.

Paper: Aviv Navon, Aviv Shamsian, Gal Chechik and Ethan Fetaya, "Learning the Pareto Front with
Hypernetworks", ICLR 2021 (PHN). Where COSMOS (:mod:`mtl_lab.models.preference_conditioned`) feeds the
preference ``r`` to the network as an input, PHN generates the network from it::

    θ(r) = h_φ(r)                 the hypernetwork: r → Linear → ReLU → Linear → ReLU → one Linear per tensor
    y_t  = f_{θ(r)}(x)            the target network: an MLP trunk and one linear head per task, with weights θ(r)

Only ``φ`` is trained, with a fresh ``r ~ Dirichlet(α)`` each step (the sampler of
:mod:`mtl_lab.models.preference`) on a scalarisation of the losses at that ``r``: PHN-LS is the linear one,
``Σ_t r_t L_t`` — :class:`~mtl_lab.weighting.cosmos_sampled.SampledCOSMOS` with ``penalty = 0``. (The paper's
PHN-EPO uses EPO's direction instead.)

Every trained parameter belongs to the hypernetwork, so all of them are shared (``task_parameters`` is empty:
the heads are generated too). :meth:`generated` computes ``θ(r)``; ``encode`` and ``decode`` each call it
(the hypernetwork is small; nothing is kept between the two calls).

Defaults and their origin: ``ray_hidden = 32`` (the width of the hypernetwork's hidden layers, a small
version of the paper's 100 for its Multi-MNIST LeNet); the target network's widths are the caller's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mtl_lab import validate
from mtl_lab.models.preference import PreferenceModel, PreferenceSampler
from mtl_lab.models.trunks import check_widths
from mtl_lab.tasks import Task


def target_shapes(input_dim: int, hidden: tuple[int, ...], tasks: list[Task]) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor of the target network, in the order it is used."""
    shapes: dict[str, tuple[int, ...]] = {}
    widths = [input_dim, *hidden]
    for k, (i, o) in enumerate(zip(widths, widths[1:])):
        shapes[f"trunk{k}.weight"], shapes[f"trunk{k}.bias"] = (o, i), (o,)
    for t in tasks:
        shapes[f"{t.name}.weight"], shapes[f"{t.name}.bias"] = (t.out_dim, hidden[-1]), (t.out_dim,)
    return shapes


class ParetoHyperNetwork(PreferenceModel):
    """``h_φ(r)`` generates an MLP trunk (widths ``hidden``) and a linear head per task.

    Args:
        tasks: the task specs (at least 2).
        input_shape: the shape of one input (flattened).
        sampler: the :class:`PreferenceSampler` shared with the loss.
        hidden: the target network's trunk widths.
        ray_hidden: the hypernetwork's hidden width.
    """

    architecture = "pareto_hypernetwork"

    def __init__(self, tasks: list[Task], input_shape: tuple[int, ...], sampler: PreferenceSampler,
                 hidden: tuple[int, ...] | list[int] = (64, 64), ray_hidden: int = 32) -> None:
        super().__init__(tasks, sampler, "a Pareto hypernetwork")
        self.hidden = check_widths(hidden, "hidden")
        validate.check_int("ray_hidden", ray_hidden, 1)
        T = len(tasks)
        self.shapes = target_shapes(math.prod(input_shape), self.hidden, list(tasks))
        self.ray = nn.Sequential(nn.Linear(T, ray_hidden), nn.ReLU(), nn.Linear(ray_hidden, ray_hidden), nn.ReLU())
        self.makers = nn.ModuleDict({name.replace(".", "_"): nn.Linear(ray_hidden, math.prod(shape))
                                     for name, shape in self.shapes.items()})

    def generated(self) -> dict[str, torch.Tensor]:
        """``θ(r)``: every tensor of the target network, generated from this pass's preference."""
        z = self.ray(self.preference())
        return {name: self.makers[name.replace(".", "_")](z).view(shape) for name, shape in self.shapes.items()}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.generated()
        h = x.flatten(1)
        for k in range(len(self.hidden)):
            h = torch.relu(nn.functional.linear(h, theta[f"trunk{k}.weight"], theta[f"trunk{k}.bias"]))
        return h

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        theta = self.generated()
        return {t: nn.functional.linear(rep, theta[f"{t}.weight"], theta[f"{t}.bias"]) for t in self.task_names}

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        return []
