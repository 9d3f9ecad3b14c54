"""ExcessMTL: weigh the tasks by their estimated *excess* risk — how far each is from its own best.

Paper: Yifei He, Shiji Zhou, Guojun Zhang, Hyokun Yun, Yi Xu, Belinda Zeng, Trishul Chilimbi and Han
Zhao, "Robust Multi-Task Learning with Excess Risks", ICML 2024 (PMLR 235).

Idea. Weighting by the raw loss (as distributionally robust MTL does) favours tasks with a high but
irreducible loss (label noise). ExcessMTL weighs by the excess risk ``L_t − L_t*`` instead, estimated
to second order with a diagonal (AdaGrad-style) Hessian built from the squared gradients seen so far::

    H_t   = √(Σ_{steps} g_t² + 1e-7)                         (element-wise; state, [T, P])
    e_t   = Σ_i g_{t,i}² / H_{t,i}   ≈ g_tᵀ H_t⁻¹ g_t          (Equations 6–7)
    e_t  ← e_t / (e_t^(0) + 1e-7)                             (relative to the first step's e_t^(0))
    w    ← w ⊙ exp(η e) / Σ (w ⊙ exp(η e))                    (exponentiated gradient, Equation 9)

and the shared parameters move along ``Gᵀw``. On the first step (no baseline yet) the raw ``e`` is
used, as in the official code, LibMTL and TorchJD; the update is computed as a softmax of
``log w + η e`` so that a huge excess saturates instead of overflowing.

Needs the gradient matrix itself (``requires="grads"``: the squares are element-wise) and keeps a
``[T, P]`` sum of squares — as much memory as the gradients of the shared parameters, once per task.

Defaults and their origin: the weights start at ``1/T`` (the paper and TorchJD; the official code and
LibMTL start at 1 — a factor T on the first steps). ``robust_step_size = 1.0`` is TorchJD's default;
LibMTL's is 1e-2. The paper's warm-up (statistics collected for some epochs before the weights move)
is TorchJD's ``n_warmup_steps``, 0 here as in the official code.
"""

from __future__ import annotations

import torch

from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting

HESSIAN_FLOOR = 1e-7  # added under the square root and to the baseline, as in the official code


class ExcessMTL(Weighting):
    """Exponentiated-gradient weights driven by each task's estimated excess risk."""

    name = "excess_mtl"
    description = "ExcessMTL: weights rise with each task's estimated excess risk (He et al. 2024)."
    requires = "grads"
    options = {
        "robust_step_size": Number(low=0, low_open=True),  # step of the multiplicative weight update
    }

    def __init__(self, robust_step_size: float = 1.0) -> None:
        super().__init__(robust_step_size=robust_step_size)
        self.robust_step_size = float(robust_step_size)
        self.weights: torch.Tensor | None = None
        self.squared_sum: torch.Tensor | None = None
        self.baseline: torch.Tensor | None = None

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.weights = None
        self.squared_sum = None
        self.baseline = None

    def follow(self, grads: torch.Tensor) -> None:
        """Move the state to the gradients' device and dtype (after a checkpoint was loaded on the CPU)."""
        for key in ("weights", "squared_sum", "baseline"):
            value = getattr(self, key)
            if value is not None and (value.device != grads.device or value.dtype != grads.dtype):
                setattr(self, key, value.to(grads))

    def excess(self, grads: torch.Tensor) -> torch.Tensor:
        """Add this step's squared gradients to the state and return ``e_t ≈ g_tᵀ H_t⁻¹ g_t``."""
        squares = grads.detach() ** 2
        if self.squared_sum is None or self.squared_sum.shape != squares.shape:
            self.squared_sum = torch.zeros_like(squares)
        self.squared_sum += squares
        return (squares / torch.sqrt(self.squared_sum + HESSIAN_FLOOR)).sum(dim=1)

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        self.follow(grads)
        e = self.excess(grads)
        if self.weights is None:
            self.weights = torch.full((self.n_tasks,), 1.0 / self.n_tasks, dtype=grads.dtype, device=grads.device)
        if self.baseline is None:
            self.baseline = e
        else:
            e = e / (self.baseline + HESSIAN_FLOOR)
        self.weights = torch.softmax(torch.log(self.weights) + self.robust_step_size * e, dim=0)
        return Combination(self.weights.clone())

    def config(self) -> dict:
        return {"name": self.name, "robust_step_size": self.robust_step_size}

    def state_dict(self) -> dict:
        def copy(t: torch.Tensor | None):
            return None if t is None else t.detach().cpu().clone()

        return {"weights": copy(self.weights), "squared_sum": copy(self.squared_sum), "baseline": copy(self.baseline)}

    def load_state_dict(self, state: dict) -> None:
        def load(value):
            return None if value is None else torch.as_tensor(value).clone()

        self.weights = load(state.get("weights"))
        self.squared_sum = load(state.get("squared_sum"))
        self.baseline = load(state.get("baseline"))
