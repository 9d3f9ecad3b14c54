"""CR-MOGM: smooth any method's weights with an exponential moving average across steps.

Paper: Shiji Zhou, Wenpeng Zhang, Jiyan Jiang, Wenliang Zhong, Jinjie Gu and Wenwu Zhu, "On the
Convergence of Stochastic Multi-Objective Gradient Manipulation and Beyond", NeurIPS 2022.

Why. Stochastic gradient-manipulation methods (MGDA, PCGrad, CAGrad …) compute their weights from one
mini-batch; the weights are then a biased, noisy function of the batch and the paper shows that the
methods need not converge. Its fix ("correlation-reduced" MOGM) is to average the weights over steps::

    λ_k = α λ_{k−1} + (1 − α) λ̂_k          λ̂_k: the inner method's weights at step k

with ``λ_0 = λ̂_1`` (the first step is the inner method's own), and the shared parameters move along
``Gᵀλ_k``. It is a **wrapper**: ``create("cr_mogm", inner="mgda", alpha=0.9)`` or, with options for the
inner method, ``create("cr_mogm", inner=create("cagrad", c=0.2))``. The wrapper asks for what the inner
method ``requires`` and forwards ``after_step``, ``parameters`` and the state.

The inner method must give weights (``d = Gᵀλ̂``) from the step's own gradients: a method that builds
its own direction (GradDrop, MoCo …) has nothing to average, and one that learns from a validation
look-ahead (Auto-λ) needs the trainer to set the weights it averages; both are refused when the wrapper
is built (see :class:`InnerMethod`). Task heads follow the rule of the
inner method's kind (see :mod:`mtl_lab.weighting.base`).

Defaults and their origin: ``alpha = 0.9`` (TorchJD's ``CRMOGMWeighting``; the paper's Corollary 1
lets ``α_k`` rise towards 1 as the learning rate decays — set ``alpha`` between runs for that);
``inner = "mgda"``, the method the paper analyses first.
"""

from __future__ import annotations

import torch

from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting


class InnerMethod:
    """A registered method's name, or a ready instance, that gives weights from the step's gradients.

    Refused: ``cr_mogm`` itself, methods that build their own direction (``gives_direction``) and methods
    that learn from a look-ahead (``requires == "lookahead"``).
    """

    def accepts(self, value) -> bool:
        from mtl_lab.weighting import METHODS  # the registry imports this module

        if isinstance(value, Weighting):
            cls = type(value)
        elif isinstance(value, str) and value in METHODS:
            cls = METHODS[value]
        else:
            return False
        return cls is not CRMOGM and not cls.gives_direction and cls.requires != "lookahead"

    def allowed(self) -> str:
        from mtl_lab.weighting import METHODS

        refused = [n for n in METHODS if not self.accepts(n)]
        return (f"a registered method's name (or an instance) that gives weights from the step's gradients: "
                f"any but {', '.join(refused)} (itself, methods that build their own direction, look-ahead)")


class CRMOGM(Weighting):
    """λ_k = α λ_{k−1} + (1 − α) λ̂_k over the weights λ̂ of an inner method."""

    name = "cr_mogm"
    description = "CR-MOGM: an exponential moving average over another method's weights (Zhou et al. 2022)."
    requires = "gramian"  # that of the default inner method (MGDA); each instance takes its inner method's
    options = {
        "inner": InnerMethod(),  # the method whose weights are averaged
        "alpha": Number(low=0, high=1),  # the average's decay
    }

    def __init__(self, inner: str | Weighting = "mgda", alpha: float = 0.9) -> None:
        super().__init__(inner=inner, alpha=alpha)
        from mtl_lab.weighting import create  # the registry imports this module

        self.inner = create(inner)
        self.alpha = float(alpha)
        self.requires = self.inner.requires
        self.uses_losses = self.inner.uses_losses
        self.needs_losses_after_step = self.inner.needs_losses_after_step
        self.smoothed: torch.Tensor | None = None

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.inner.reset(task_names)
        self.smoothed = None

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        comb = self.inner.combine(losses, grads, ctx)
        if comb.direction is not None:
            raise ValueError(
                f"{self.name}: the inner method {self.inner.name!r} returns a direction, not weights; "
                "choose a method whose step is d = Gᵀw (e.g. mgda, pcgrad, cagrad, upgrad)"
            )
        current = comb.weights.detach()
        if self.smoothed is None or self.smoothed.shape != current.shape:
            self.smoothed = current.clone()
        else:
            self.smoothed = self.alpha * self.smoothed.to(current) + (1 - self.alpha) * current
        info = {**comb.info, "inner_weights": current.tolist()}
        return Combination(self.smoothed.clone(), head_weights=comb.head_weights, info=info)

    def after_step(self, losses_after: torch.Tensor, ctx: StepContext) -> None:
        self.inner.after_step(losses_after, ctx)

    def parameters(self) -> list[torch.Tensor]:
        return self.inner.parameters()

    def config(self) -> dict:
        return {"name": self.name, "inner": self.inner.config(), "alpha": self.alpha}

    def state_dict(self) -> dict:
        smoothed = None if self.smoothed is None else self.smoothed.detach().cpu().clone()
        return {"smoothed": smoothed, "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        smoothed = state.get("smoothed")
        self.smoothed = None if smoothed is None else torch.as_tensor(smoothed).clone()
        self.inner.load_state_dict(state.get("inner", {}))
