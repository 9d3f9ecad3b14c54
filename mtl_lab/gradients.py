"""Per-task gradients of the shared parameters, and the diagnostics a learner wants to see.

For tasks ``t = 1..T`` with losses ``L_t`` and shared parameters ``θ`` (``P`` scalars) the gradient
matrix (the Jacobian of the loss vector) is ``G[t] = ∇_θ L_t``, shape ``[T, P]``. Three ways to get
what a method needs:

* :func:`task_gradients` — ``T`` backward passes (``autograd.grad`` of each ``L_t``); returns ``G``
  and, in the same passes, each head's gradient of its own loss. Cost ≈ forward + ``T`` backward passes,
  i.e. ``(1 + 2T)/3`` times an ordinary training step: the FLOP bound for materialising ``G``.
* :func:`representation_gradients` — gradients of each ``L_t`` with respect to the shared
  representation ``r`` instead (``Z[T, B·D]``, MGDA-UB); only the small heads are differentiated ``T``
  times and the trunk once, so a step costs about as much as equal weighting.
* :class:`LinearGramian` — the Gramian ``K = G Gᵀ`` of a trunk made of ``nn.Linear`` layers without
  ever forming ``G``. For a linear layer with inputs ``A[B, i]`` and back-propagated output gradients
  ``Δ_t[B, o]`` of task ``t``, ``∇_W L_t = Δ_tᵀ A`` and ``∇_b L_t = Δ_tᵀ 1``, hence
  ``⟨∇L_s, ∇L_t⟩ = Σ_{b,c} (Δ_s Δ_tᵀ)_{bc} (A Aᵀ + 1)_{bc}``. Backward passes then only need the
  gradients at the layer outputs (no weight-gradient products), and the final update
  ``∇_W Σ_t w_t L_t = (Σ_t w_t Δ_t)ᵀ A`` costs one product per layer. Cheaper than ``G`` when the
  batch is small against the layer widths; ``benchmarks/bench_core.py`` measures where.

Diagnostics (DESIGN.md): ``‖g_t‖``; ``cos(g_i, g_j)``; effective weights ``w`` (for methods that give
``d`` directly, ``w`` by least squares ``min ‖Gᵀw − d‖``); contribution shares
``share_t = w_t g_t·d / ‖d‖²`` (they sum to 1 when ``d = Gᵀw``); and the first-order change of each
loss along a plain step ``θ ← θ − lr·d``: ``ΔL_t ≈ −lr·g_t·d`` (negative: the step helps task ``t``).
Everything except ``G`` itself can be computed from the Gramian when ``d = Gᵀw``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


def flat_size(params: list[torch.Tensor]) -> int:
    """Total number of scalars in ``params``."""
    return sum(p.numel() for p in params)


def task_gradients(
    losses: Sequence[torch.Tensor],
    shared: list[torch.Tensor],
    heads: list[list[torch.Tensor]],
    retain_graph: bool = True,
) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
    """``G[T, P]`` of the shared parameters and each head's gradient of its own loss.

    ``losses`` is the list of the tasks' scalar losses (a list, not a stacked tensor: differentiating
    an entry of a stack would also run every other head's backward with zeros). ``heads[t]`` are the
    parameters only task ``t`` uses. One ``autograd.grad`` call per task (a parameter the loss does not
    reach gets zeros), its shared gradients written straight into row ``t`` of a preallocated ``G`` by one
    ``torch.cat`` (no list of flattened copies).
    """
    T = len(losses)
    G = torch.empty(T, flat_size(shared), dtype=losses[0].dtype, device=losses[0].device)
    head_grads: list[list[torch.Tensor]] = []
    n_shared = len(shared)
    for t in range(T):
        keep = retain_graph or t < T - 1
        grads = torch.autograd.grad(losses[t], shared + heads[t], retain_graph=keep, materialize_grads=True)
        torch.cat([g.reshape(-1) for g in grads[:n_shared]], out=G[t])
        head_grads.append(list(grads[n_shared:]))
    return G, head_grads


def representation_gradients(
    losses: Sequence[torch.Tensor],
    rep: torch.Tensor,
    heads: list[list[torch.Tensor]],
) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
    """``Z[T, B·D]``: each loss's gradient at the shared representation, plus head gradients."""
    T = len(losses)
    Z = torch.empty(T, rep.numel(), dtype=rep.dtype, device=rep.device)
    head_grads: list[list[torch.Tensor]] = []
    for t in range(T):
        grads = torch.autograd.grad(losses[t], [rep] + heads[t], retain_graph=True, allow_unused=True)
        Z[t].copy_(grads[0].reshape(-1)) if grads[0] is not None else Z[t].zero_()
        head_grads.append([torch.zeros_like(p) if g is None else g for p, g in zip(heads[t], grads[1:])])
    return Z, head_grads


def clear_grads(params: list[torch.Tensor]) -> None:
    """Set every ``p.grad`` to ``None`` before a step's backward passes.

    What ``Optimizer.zero_grad(set_to_none=True)`` does, without its profiler range and dispatch wrappers:
    0.4 against 9 µs for ten tensors alone, about 3 % of a small model's step inside the training loop
    (``benchmarks/README.md``).
    """
    for p in params:
        p.grad = None


def assign_flat_grad(params: list[torch.Tensor], flat: torch.Tensor) -> None:
    """Set ``p.grad`` of every parameter from one flat vector (views, no copies)."""
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p)
        offset += n


def assign_head_grads(heads: list[list[torch.Tensor]], head_grads: list[list[torch.Tensor]], factors: list) -> None:
    """Set each head parameter's gradient to ``factor_t · ∇L_t`` (factors may be tensors or floats)."""
    for params, grads, f in zip(heads, head_grads, factors):
        for p, g in zip(params, grads):
            p.grad = g if isinstance(f, float) and f == 1.0 else g * f


class LinearGramian:
    """The Gramian ``K = G Gᵀ`` of shared parameters that all belong to ``nn.Linear`` layers.

    Use: create once for a model and its shared parameters; call :meth:`capture` before the forward
    pass, then :meth:`gramian` for ``K`` and the head gradients, and :meth:`apply_weights` to write
    ``∇ Σ_t w_t L_t`` into the shared layers' ``.grad`` fields.
    """

    def __init__(self, model: nn.Module, shared: list[torch.Tensor]) -> None:
        shared_ids = {id(p) for p in shared}
        self.layers = [m for m in model.modules() if isinstance(m, nn.Linear) and id(m.weight) in shared_ids]
        covered = {id(p) for m in self.layers for p in m.parameters()}
        if not self.layers or shared_ids != covered:
            raise ValueError("LinearGramian needs shared parameters that are exactly those of nn.Linear layers")
        self.records: list[tuple[nn.Linear, torch.Tensor, torch.Tensor]] = []  # (layer, input, output)
        self.deltas: list[torch.Tensor] = []  # per record: [T, B, o] output gradients of each task
        self.enabled = False
        self.handles = [m.register_forward_hook(self.record) for m in self.layers]

    @staticmethod
    def applies_to(model: nn.Module, shared: list[torch.Tensor]) -> bool:
        """Whether every shared parameter belongs to an ``nn.Linear`` layer."""
        shared_ids = {id(p) for p in shared}
        layers = [m for m in model.modules() if isinstance(m, nn.Linear) and id(m.weight) in shared_ids]
        return bool(layers) and shared_ids == {id(p) for m in layers for p in m.parameters()}

    def record(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if self.enabled:
            self.records.append((module, args[0].reshape(-1, module.in_features), output))

    def capture(self) -> None:
        """Record the shared layers' inputs and outputs during the next forward pass."""
        self.enabled = True
        self.records, self.deltas = [], []

    def gramian(
        self,
        losses: Sequence[torch.Tensor],
        heads: list[list[torch.Tensor]],
    ) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
        """``K[T, T]`` and each head's gradient of its own loss, from one output-gradient pass per task."""
        self.enabled = False
        if len(self.records) != len(self.layers):
            raise RuntimeError(
                f"LinearGramian saw {len(self.records)} shared-layer calls, expected {len(self.layers)}: "
                "call capture() before one forward pass that uses each shared layer once"
            )
        outputs = [r[2] for r in self.records]
        n = len(outputs)
        T = len(losses)
        per_task: list[tuple[torch.Tensor, ...]] = []
        head_grads: list[list[torch.Tensor]] = []
        for t in range(T):
            grads = torch.autograd.grad(losses[t], outputs + heads[t], retain_graph=True, allow_unused=True)
            per_task.append(tuple(torch.zeros_like(z) if g is None else g for z, g in zip(outputs, grads[:n])))
            head_grads.append([torch.zeros_like(p) if g is None else g for p, g in zip(heads[t], grads[n:])])
        K = torch.zeros(T, T, dtype=losses[0].dtype, device=losses[0].device)
        self.deltas = []
        for index, (_, a, _) in enumerate(self.records):
            B = a.shape[0]
            D = torch.stack([per_task[t][index].reshape(B, -1) for t in range(T)])  # [T, B, o]
            M = torch.addmm(torch.ones(B, B, dtype=a.dtype, device=a.device), a, a.T)  # A Aᵀ + 1
            K += D.reshape(T, -1) @ torch.matmul(M, D).reshape(T, -1).T
            self.deltas.append(D)
        return K, head_grads

    def apply_weights(self, weights: torch.Tensor) -> None:
        """Write ``∇ Σ_t w_t L_t`` into the ``.grad`` of every shared layer (after :meth:`gramian`)."""
        for (layer, a, _), D in zip(self.records, self.deltas):
            delta = torch.tensordot(weights.to(D.dtype), D, dims=1)  # [B, o]
            layer.weight.grad = delta.T @ a
            if layer.bias is not None:
                layer.bias.grad = delta.sum(dim=0)
        self.records, self.deltas = [], []

    def remove(self) -> None:
        """Remove the forward hooks."""
        for h in self.handles:
            h.remove()
        self.handles = []


def gramian_cost_ratio(batch: int, widths: list[tuple[int, int]], n_tasks: int) -> float:
    """Estimated multiply-adds of the Gramian path over the Jacobian path for linear layers.

    ``widths`` lists ``(in, out)`` per layer. Jacobian path: ``(1 + 2T)·B·i·o`` per layer. Gramian
    path: ``(2 + T)·B·i·o + B²·(i + T·o) + T²·B·o``. Below 1 the Gramian path should be faster.
    """
    T, B = n_tasks, batch
    jac = sum((1 + 2 * T) * B * i * o for i, o in widths)
    gram = sum((2 + T) * B * i * o + B * B * (i + T * o) + T * T * B * o for i, o in widths)
    return gram / jac


@dataclass(frozen=True)
class Diagnostics:
    """Gradient diagnostics of one step (plain lists, ready for History)."""

    norms: list[float]
    cosines: list[list[float]]
    weights: list[float]
    shares: list[float]
    loss_change: list[float]
    direction_norm: float
    residual: float  # ‖Gᵀw − d‖ / ‖d‖: 0 when d lies in the span of the task gradients

    def as_dict(self) -> dict:
        return {
            "norms": self.norms,
            "cosines": self.cosines,
            "weights": self.weights,
            "shares": self.shares,
            "loss_change": self.loss_change,
            "direction_norm": self.direction_norm,
            "residual": self.residual,
        }


def least_squares_weights(G: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """``argmin_w ‖Gᵀw − d‖`` (minimum-norm solution when the task gradients are dependent)."""
    return torch.linalg.lstsq(G.T.double(), d.double().unsqueeze(1), driver="gelsd").solution.squeeze(1).to(G.dtype)


def diagnostics_from_gramian(K: torch.Tensor, weights: torch.Tensor, lr: float) -> Diagnostics:
    """Diagnostics when the update is ``d = Gᵀw``, from the Gramian ``K = G Gᵀ`` alone."""
    K = K.double()
    w = weights.double()
    Kw = K @ w  # g_t · d
    dd = torch.dot(w, Kw)  # ‖d‖²
    norms = K.diagonal().clamp(min=0).sqrt()
    return _pack(K, norms, w, Kw, dd, lr, residual=0.0)


def diagnostics_from_gradients(
    G: torch.Tensor, weights: torch.Tensor, direction: torch.Tensor | None, lr: float
) -> Diagnostics:
    """Diagnostics from the gradient matrix; ``direction=None`` means ``d = Gᵀw``."""
    if direction is None:
        return diagnostics_from_gramian(G @ G.T, weights, lr)
    Gd = G.double()
    d = direction.double()
    w = least_squares_weights(Gd, d)
    K = Gd @ Gd.T
    Gdot = Gd @ d  # g_t · d
    dd = torch.dot(d, d)
    residual = float((Gd.T @ w - d).norm() / dd.sqrt()) if dd > 0 else 0.0
    return _pack(K, K.diagonal().clamp(min=0).sqrt(), w, Gdot, dd, lr, residual)


def _pack(
    K: torch.Tensor,
    norms: torch.Tensor,
    w: torch.Tensor,
    gdot: torch.Tensor,
    dd: torch.Tensor,
    lr: float,
    residual: float,
) -> Diagnostics:
    """Compute cosines and shares and move everything to Python lists with one device sync."""
    T = norms.shape[0]
    outer = torch.outer(norms, norms)
    cos = torch.where(outer > 0, K / outer.clamp(min=1e-300), torch.zeros_like(K)).clamp(-1.0, 1.0)
    shares = w * gdot / dd if dd > 0 else torch.zeros_like(w)
    v = torch.cat([norms, w, shares, -lr * gdot, dd.sqrt().reshape(1), cos.reshape(-1)]).tolist()
    cos_flat = v[4 * T + 1 :]
    return Diagnostics(
        norms=v[:T],
        weights=v[T : 2 * T],
        shares=v[2 * T : 3 * T],
        loss_change=v[3 * T : 4 * T],
        direction_norm=v[4 * T],
        cosines=[cos_flat[i * T : (i + 1) * T] for i in range(T)],
        residual=float(residual),
    )
