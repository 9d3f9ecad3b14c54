"""DB-MTL (Dual-Balancing Multi-Task Learning): balance the loss scales with a logarithm and the
gradient magnitudes with a common norm.

Paper: Baijiong Lin, Weisen Jiang, Feiyang Ye, Yu Zhang, Pengguang Chen, Ying-Cong Chen, Shu Liu,
Ivor W. Tsang, James T. Kwok, "Dual-Balancing for Multi-Task Learning", arXiv:2308.12029, 2023
(later in the journal Neural Networks).

Needs the per-task gradients ``g_t = ∇L_t`` of the shared parameters (``requires = "grads"``).
At step ``k = 1, 2, …``::

    ∇ log(L_t + ε) = g_t / (L_t + ε)                             (loss-scale balancing)
    ĝ_t  ← β_k ĝ_t + (1 − β_k) g_t / (L_t + ε),   β_k = β / k^σ,  ĝ_t = 0 at the start
    d    = Σ_t  max_k ‖ĝ_k‖ · ĝ_t / ‖ĝ_t‖                        (gradient-magnitude balancing)

Every task contributes a vector of the same length, the largest EMA-gradient norm, pointing along its
own EMA gradient of the log-loss. The method returns that **direction** ``d`` for the shared
parameters. The task heads are trained on the log-losses too, as in the paper (and LibMTL): head
``t`` gets ``∇ log(L_t + ε) = ∇L_t / (L_t + ε)``, i.e. ``head_weights = 1 / (L + ε)``, with no EMA.

Effective weights: the factor multiplying each *current* ``g_t`` in ``d``,
``w_t = max_k ‖ĝ_k‖ / ‖ĝ_t‖ · (1 − β_k) / (L_t + ε)``. On the first step (``ĝ = 0`` before it)
``d = Gᵀw`` exactly; later ``d`` also carries the remembered part ``β_k ĝ``, which ``w`` leaves out.

State (cleared by :meth:`reset`): the EMA gradients :attr:`grad_ema` ``[T, P]`` (on the gradients'
device; made on the first step, when ``P`` is known) and the step counter :attr:`step_count`.

Guards: losses must be finite and ``≥ 0`` (the logarithm), else ``ValueError``; a loss at 0 is
``ε`` inside the logarithm, as in the authors' code. A task whose EMA gradient is exactly zero
contributes nothing (instead of 0/0). The rescaling divides by the exact norm (the authors' code adds
``1e-8`` to it, which stops a tiny gradient from being scaled up fully), and the norms are accumulated in
float64 where float32 would lose them, so that a loss of 1e30 (log-gradient ~1e-30) does not
underflow in float32 (:func:`row_norms`). ``T = 1``: ``d = ĝ_1``.

Defaults: ``β = 0.9``, ``σ = 0`` (so ``β_k = 0.9``: a plain EMA), the defaults of LibMTL, the library
of the paper's first author that implements DB-MTL; ``ε = 1e-8``, the constant in its logarithm.
"""

from __future__ import annotations

import torch

from mtl_lab.validate import Number
from mtl_lab.weighting.base import Combination, StepContext, Weighting, checked_losses


def row_norms(rows: torch.Tensor) -> torch.Tensor:
    """``‖row‖`` of each row as float64 on the CPU, exact to rounding however small or large the entries.

    A norm in the rows' own dtype is one cheap pass, but squares below the dtype's smallest normal
    number are lost and squares above its largest overflow. At most ``P`` squares of at most ``tiny``
    can be lost, so a norm ``≥ √(P·tiny/eps)`` is accurate to rounding; rows below that, or whose
    norm is not finite, are summed again in float64 (as slow as five passes, and only for them).
    """
    norms = torch.linalg.vector_norm(rows, dim=1).to("cpu", torch.float64)
    info = torch.finfo(rows.dtype)
    safe = torch.isfinite(norms) & (norms >= (rows.shape[1] * info.tiny / info.eps) ** 0.5)
    if not bool(safe.all()):
        redo = (~safe).nonzero().flatten()
        norms[redo] = torch.linalg.vector_norm(rows[redo.to(rows.device)], dim=1, dtype=torch.float64).cpu()
    return norms


class DBMTL(Weighting):
    """EMA gradients of ``log L_t``, each rescaled to the largest norm, then summed."""

    name = "db_mtl"
    description = "DB-MTL: gradients of log L_t, smoothed, rescaled to the largest norm and summed (Lin et al. 2023)."
    requires = "grads"
    gives_direction = True
    uses_losses = True
    options = {
        "beta": Number(low=0, high=1, high_open=True),  # EMA factor of the log-loss gradients
        "beta_sigma": Number(low=0),  # decay exponent of the EMA factor
        "eps": Number(low=0, low_open=True),
    }

    def __init__(self, beta: float = 0.9, beta_sigma: float = 0.0, eps: float = 1e-8) -> None:
        super().__init__(beta=beta, beta_sigma=beta_sigma, eps=eps)
        self.beta = float(beta)
        self.beta_sigma = float(beta_sigma)
        self.eps = float(eps)
        self.grad_ema: torch.Tensor | None = None
        self.step_count = 0

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.grad_ema = None
        self.step_count = 0

    def update_ema(self, grads: torch.Tensor, inverse: torch.Tensor, beta_k: float) -> torch.Tensor:
        """``ĝ ← β_k ĝ + (1 − β_k) ∇log L`` with ``∇log L_t = g_t·inverse_t``, in place after the first step.

        ``ĝ`` starts at zero and follows the gradients' device and dtype.
        """
        coefficients = ((1 - beta_k) * inverse).to(grads)[:, None]
        if self.grad_ema is None:
            self.grad_ema = grads.detach() * coefficients  # β_k · 0 + (1 − β_k) ∇log L
        elif self.grad_ema.shape != grads.shape:
            raise ValueError(
                f"db_mtl: grads has shape {tuple(grads.shape)}, earlier steps had {tuple(self.grad_ema.shape)}"
            )
        else:
            self.grad_ema = self.grad_ema.to(grads)
            self.grad_ema.mul_(beta_k).addcmul_(grads.detach(), coefficients)
        return self.grad_ema

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        values = checked_losses(self.name, losses, self.task_names)
        self.step_count += 1
        beta_k = self.beta / self.step_count**self.beta_sigma
        inverse = 1.0 / (values + self.eps)
        ema = self.update_ema(grads, inverse, beta_k)
        norms_cpu = row_norms(ema)
        if not bool(torch.isfinite(norms_cpu).all()):
            raise ValueError(f"db_mtl needs finite task gradients, got EMA norms {norms_cpu.tolist()}")
        largest = norms_cpu.max()
        # max_k ‖ĝ_k‖ / ‖ĝ_t‖ for each task (zero rows stay zero), then d = Σ_t scale_t ĝ_t in one product
        scales = torch.where(norms_cpu > 0, largest / torch.where(norms_cpu > 0, norms_cpu, 1.0), 0.0)
        direction = scales.to(ema) @ ema
        weights = (scales * (1 - beta_k) * inverse).to(device=losses.device, dtype=losses.dtype)
        if not bool(torch.isfinite(weights).all()):
            raise ValueError(f"db_mtl: the effective weights overflow {losses.dtype}; use float64 losses")
        head_weights = inverse.to(device=losses.device, dtype=losses.dtype)
        info = {"beta_k": beta_k, "scales": scales.tolist()}
        return Combination(weights, direction=direction, head_weights=head_weights, info=info)

    def config(self) -> dict:
        return {"name": self.name, "beta": self.beta, "beta_sigma": self.beta_sigma, "eps": self.eps}

    def state_dict(self) -> dict:
        ema = None if self.grad_ema is None else self.grad_ema.detach().clone()
        return {"grad_ema": ema, "step_count": self.step_count}

    def load_state_dict(self, state: dict) -> None:
        ema = state.get("grad_ema")
        if ema is not None and ema.shape[0] != self.n_tasks:
            raise ValueError(f"db_mtl: state has EMA gradients for {ema.shape[0]} tasks, the run has {self.n_tasks}")
        self.grad_ema = None if ema is None else ema.detach().clone()
        self.step_count = int(state.get("step_count", 0))
