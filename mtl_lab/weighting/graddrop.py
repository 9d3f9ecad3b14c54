"""GradDrop (Gradient Sign Dropout): per coordinate, keep only the gradients of one randomly chosen sign.

Paper: Zhao Chen, Jiquan Ngiam, Yanping Huang, Thang Luong, Henrik Kretzschmar, Yuning Chai and Dragomir
Anguelov, "Just Pick a Sign: Optimizing Deep Multitask Models with Gradient Sign Dropout", NeurIPS 2020.

Update rule (the paper's Algorithm 1), coordinate by coordinate::

    P = ½ (1 + Σ_i g_i / Σ_i |g_i|)          "positive sign purity", in [0, 1]
    U ~ Uniform(0, 1)                          one draw per coordinate
    M_i = [P > U]·[g_i > 0] + [P < U]·[g_i < 0]
    d = Σ_i (ℓ_i + (1 − ℓ_i) M_i) · g_i

Where the tasks agree on a sign, ``P`` is 0 or 1 and everything is kept. Where they disagree, a coin
biased by how much of the gradient mass is positive decides which sign survives; the other sign's
contributions are dropped for this step. ``ℓ_i`` (leak) lets task ``i`` pass through unmasked.

Choices and their origin:

* Applied to the gradients of the shared parameters (``requires="grads"``), like TorchJD's
  ``GradDrop``. The paper inserts it at a layer of *activations* (the shared representation), with a
  purity per activation; a direction in representation space would need the trainer to backpropagate
  it through the trunk, which the Weighting protocol does not define.
* ``leak = 0`` for every task (the paper's plain multi-task setting); a list gives one leak per task.
  ``f(P) = P`` (the paper allows any increasing ``f``).
* Randomness: one ``torch.rand(P)`` per step from ``ctx.generator`` (in the gradients' dtype, on the
  generator's device), so a seed reproduces a run.
* Where every task gradient is 0 the purity is set to ½ (nothing is kept or dropped there anyway).
* Computed without a loop over tasks, from two sums per coordinate: ``S = Σ_i g_i`` and the mass
  ``A = Σ_i |g_i|``. The positive part is ``S⁺ = (S + A)/2``, so ``P > U ⇔ S⁺ > U·A ⇔ S + (1 − 2U)A > 0``:
  with ``σ = sign(S + (1 − 2U)A) ∈ {−1, 0, 1}`` the kept sum is ``S⁺`` where ``σ = 1``, ``S⁻ = (S − A)/2``
  where ``σ = −1`` and 0 on an exact tie ``P = U`` (neither sign is kept), i.e. ``d = σ(σS + A)/2``.
  With leaks, ``S`` and ``A`` in that last formula become ``Σ_i (1 − ℓ_i) g_i`` and ``Σ_i (1 − ℓ_i)|g_i|``
  and ``Σ_i ℓ_i g_i`` is added. About ten passes over the coordinates whatever ``T`` is, and no
  ``torch.where`` (on the CPU it costs several times a product).
* ``d`` is generally *not* a combination of the task gradients: the effective weights are the least-
  squares fit ``w = argmin ‖Gᵀw − d‖``, and ``info["in_span"]`` / ``info["lstsq_residual"]``
  (``‖Gᵀw − d‖/‖d‖``) say how well they describe ``d``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mtl_lab.validate import Number, Numbers
from mtl_lab.weighting.base import Combination, StepContext, Weighting
from mtl_lab.weighting.solvers import least_squares_fit

IN_SPAN_TOLERANCE = 1e-6


class GradDrop(Weighting):
    """Randomly keep, per coordinate, only the positive or only the negative task gradients."""

    name = "graddrop"
    description = "GradDrop: per coordinate, keep one sign of the task gradients, chosen by their sign purity."
    requires = "grads"
    gives_direction = True
    options = {
        "leak": Numbers(Number(low=0, high=1)),  # one value, or one per task
    }

    def __init__(self, leak: float | Sequence[float] = 0.0) -> None:
        super().__init__(leak=leak)
        self.leak = leak if isinstance(leak, (int, float)) else [float(v) for v in leak]

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        if isinstance(self.leak, list) and len(self.leak) != self.n_tasks:
            raise ValueError(f"{self.name}: leak has {len(self.leak)} entries, the data has {self.n_tasks} tasks")

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        G = grads
        generator = ctx.generator
        U = torch.rand(G.shape[1], generator=generator, dtype=G.dtype, device=generator.device).to(G.device)
        magnitudes = G.abs()
        total, mass = G.sum(dim=0), magnitudes.sum(dim=0)  # S and A
        sign = torch.addcmul(total, mass, U.mul_(-2).add_(1)).sign_()  # σ = sign(S + (1 − 2U)A)
        if self.leak == 0:
            direction = torch.addcmul(mass, sign, total).mul_(sign).mul_(0.5)  # σ(σS + A)/2
        else:
            leak = torch.tensor(self.leak, dtype=G.dtype, device=G.device).expand(G.shape[0])
            kept_total, kept_mass = (1 - leak) @ G, (1 - leak) @ magnitudes
            direction = torch.addcmul(kept_mass, sign, kept_total).mul_(sign).mul_(0.5).add_(leak @ G)
        weights, residual = least_squares_fit(G, direction)
        info = {"in_span": residual <= IN_SPAN_TOLERANCE, "lstsq_residual": residual}
        return Combination(weights, direction, info=info)

    def config(self) -> dict:
        return {"name": self.name, "leak": self.leak}
