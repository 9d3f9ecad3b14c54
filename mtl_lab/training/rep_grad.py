"""Representation gradients for every gradient method (the Trainer's ``rep_grads`` option).

A gradient method normally sees the per-task gradients of the shared *parameters*, ``G[T, P]``, which
costs one backward pass through the whole trunk per task. With ``rep_grads=True`` it sees instead the
per-task gradients of the shared *representation* ``z = encode(x)``::

    Z[T, B·D],   Z_t = ∂L_t/∂z          (one backward pass through the heads only, per task)

and whatever it builds there — weights ``w`` (the step ``Zᵀw``) or a direction ``d_Z`` in
representation space — is pushed through the trunk once: the shared parameters get
``(∂z/∂θ)ᵀ d_Z``. This is LibMTL's ``rep_grad`` switch, and the idea of Sener & Koltun's MGDA-UB
(NeurIPS 2018): ``‖Σ_t w_t ∇_θ L_t‖ ≤ ‖∂z/∂θ‖·‖Σ_t w_t Z_t‖``, so a method's answer on ``Z`` is an
answer to a bound on its problem on ``G``. The registry's ``mgda_ub`` is exactly ``mgda`` with this
option (tested); it keeps its name.

A method gets ``Z`` in the form it ``requires``: ``Z`` itself for ``"grads"`` (and ``"rep_grads"``),
``Z Zᵀ`` for ``"gramian"``. Not every method makes sense there:

* loss-only methods (``requires == "losses"``) have no gradients to swap: refused;
* methods whose state lives in gradient *coordinates* (:data:`COORDINATE_STATE`) are refused: the
  coordinates of ``Z`` are (sample, feature) pairs of a different batch at every step, so a running
  average over them means nothing;
* an architecture without a shared trunk has no representation: the method acts on the task
  parameters' gradients, as without the option (see :mod:`mtl_lab.training`).

The saving is the trunk's per-task backward passes; the price is that the method optimises its
criterion for ``Z``, not for the parameters (e.g. "no conflict" holds for the representation's
gradients, and only approximately for the parameters'). Gradient diagnostics, when due, are still
computed on the parameters.
"""

from __future__ import annotations

import torch

from mtl_lab.weighting.base import Combination, Weighting

# methods that keep per-coordinate state of the gradients they see, and why they cannot take Z
COORDINATE_STATE = {
    "excess_mtl": "its AdaGrad-style sums of squared gradients are per parameter",
    "moco": "its tracked gradients Y are moving averages per parameter",
}


def check_rep_grads(weighting: Weighting, has_shared_trunk: bool) -> None:
    """``ValueError`` when ``weighting`` cannot run on representation gradients (see the module docstring),
    or when the model has no shared representation (soft sharing): the option would not apply."""
    if not has_shared_trunk:
        raise ValueError(
            "rep_grads=True does not apply: this architecture has no shared representation (soft sharing), "
            "so there are no representation gradients; set rep_grads=False"
        )
    if weighting.requires == "losses":
        raise ValueError(
            f"rep_grads=True needs a gradient method; {weighting.name!r} uses only the losses "
            "(choose e.g. mgda, pcgrad, cagrad, upgrad, or set rep_grads=False)"
        )
    if weighting.requires in ("cross_gramian", "lookahead"):
        raise ValueError(
            f"rep_grads=True cannot be used with {weighting.name!r}: it needs gradients of other batches "
            f"(requires={weighting.requires!r}), not the representation of this batch"
        )
    inner = getattr(weighting, "inner", None)  # a wrapper (cr_mogm) is as good as the method it wraps
    for method in (weighting, inner):
        if isinstance(method, Weighting) and method.name in COORDINATE_STATE:
            raise ValueError(
                f"rep_grads=True cannot be used with {method.name!r}: {COORDINATE_STATE[method.name]}, "
                "and the representation's coordinates change meaning with every batch"
            )


def step_need(requires: str, rep_grads: bool, has_shared_trunk: bool) -> str:
    """What the Trainer computes for a step: ``"losses"``, ``"grads"``, ``"gramian"`` or ``"rep_grads"``."""
    if requires == "losses":
        return "losses"
    if not has_shared_trunk:  # no representation: the task parameters' gradients stand in
        return "grads" if requires == "rep_grads" else requires
    return "rep_grads" if rep_grads or requires == "rep_grads" else requires


def method_input(Z: torch.Tensor, requires: str) -> torch.Tensor:
    """``Z`` in the form the method asks for: the Gramian ``Z Zᵀ`` or the matrix itself."""
    return Z @ Z.T if requires == "gramian" else Z


def representation_direction(combination: Combination, Z: torch.Tensor) -> torch.Tensor:
    """The step in representation space: the method's direction, or ``Zᵀw``."""
    if combination.direction is not None:
        return combination.direction.to(Z.dtype)
    return combination.weights.to(Z.dtype) @ Z
