"""Random Loss Weighting (RLW): fresh random weights at every step.

Paper: Baijiong Lin, Feiyang Ye, Yu Zhang, Ivor W. Tsang, "Reasonable Effectiveness of Random
Weighting: A Litmus Test for Multi-Task Learning", TMLR 2022 (arXiv:2111.10603).

Update rule, at every step::

    z ~ N(0, I_T)            (drawn from ctx.generator)
    w = softmax(z)           (w_t > 0, Σ_t w_t = 1)

and the shared parameters move along ``Σ_t w_t g_t``. The paper proposes RLW as a litmus test: a
method that cannot beat random weights has learnt nothing about the tasks.

Scale: the paper compares several distributions for the weights (uniform, normal, Dirichlet,
Bernoulli …); the standard normal ``N(0, I)`` under a softmax (unit variance, no temperature) is the
default of the authors' LibMTL and of TorchJD, and is used here. The weights sum to 1, not to ``T``.
So on average the step is ``T`` times smaller than with ``equal`` (weights 1); an adaptive optimiser
such as Adam mostly absorbs that factor, plain SGD does not.

Randomness: ``z`` is drawn as float32 with ``torch.randn`` from ``ctx.generator`` (on that
generator's device) and only then converted, so a seed gives the same weights whatever the dtype of
the losses. Convention next to TorchJD: ``torchjd.aggregation.Random`` computes the same
``softmax(randn(T))`` but draws from the global random state in the gradient matrix's dtype; with
``torch.manual_seed(s)`` and a float32 matrix it gives the weights this method gives for a CPU
generator seeded with ``s``. LibMTL's ``RLW`` is the same rule with the global state too.

Defaults: none (the rule has no hyper-parameter). The losses' values are not used.
"""

from __future__ import annotations

import torch

from mtl_lab.weighting.base import Combination, StepContext, Weighting


class RLW(Weighting):
    """``w = softmax(z)`` with ``z ~ N(0, I)`` drawn from the run's generator every step."""

    name = "rlw"
    description = "Random Loss Weighting: w = softmax(z), z ~ N(0, I) each step, Σw = 1 (Lin et al. 2022)."
    options = {}  # no hyper-parameters: the weights are drawn from the run's generator

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        generator = ctx.generator
        z = torch.randn(self.n_tasks, generator=generator, device=generator.device)
        weights = torch.softmax(z.double(), dim=0)
        return Combination(weights.to(device=losses.device, dtype=losses.dtype))
