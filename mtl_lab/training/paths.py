"""Gradient paths: how one training step turns the per-task losses into the parameters' gradients.

The Trainer picks its path once, when it is built (:func:`choose_path`), from what the weighting method
``requires`` (see :mod:`mtl_lab.weighting.base`) and the training options:

============================  ====================================  =========================================
path                          the method is given                   the shared trunk's gradient
============================  ====================================  =========================================
:class:`LossWeighting`        the losses ``L[T]``                    one backward pass of ``Σ_t w_t L_t``
:class:`TaskGradients`        ``G[T, P]`` or ``K = GGᵀ``             ``d`` (or ``Gᵀw``), written into ``.grad``
:class:`GramianEngine`        ``K`` from the linear layers           ``∇ Σ_t w_t L_t`` layer by layer, no ``G``
:class:`RepresentationGrads`  ``Z[T, B·D]`` (or ``ZZᵀ``)            one backward pass of ``d_Z`` through ``z``
:class:`CrossGramian`         ``A = G_ξ G_ξ'ᵀ`` of two extra batches  one backward pass of ``Σ_t w_t L_t``
:class:`ValidationLookahead`  the look-ahead hypergradient ``H``    one backward pass of ``Σ_t w_t L_t``
============================  ====================================  =========================================

Each path has ``forward(x) -> (outputs, rep)`` and ``backward(step) -> Combination``; every one of them
hands the method's answer to :func:`apply_update`, **the one place where weights and directions become
``.grad``** (shared trunk and task heads). On a diagnostics step a loss-weighting method takes the
:class:`TaskGradients` path (the per-task gradients are computed anyway, so its step is ``Gᵀw``), and the
path shows what it computed to the optional :class:`Diagnostics` observer (:meth:`Step.observe`), which
records the gradient diagnostics of :mod:`mtl_lab.gradients` — computing ``G`` itself when the path did not.

Every path sees the data-parallel strategy (:mod:`mtl_lab.training.parallel`) through the step: the
whole batch's ``G`` or ``Z`` before the method combines them, so every rank takes the same step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mtl_lab.gradients import (
    LinearGramian,
    assign_flat_grad,
    assign_head_grads,
    diagnostics_from_gradients,
    diagnostics_from_gramian,
    representation_gradients,
    task_gradients,
)
from mtl_lab.models.base import MultiTaskModel
from mtl_lab.training.extra_batches import ExtraBatches
from mtl_lab.training.inputs import InputMode
from mtl_lab.training.lookahead import Lookahead
from mtl_lab.training.parallel import Parallel
from mtl_lab.training.rep_grad import method_input, representation_direction, step_need
from mtl_lab.weighting import Combination, StepContext, Weighting

LossesOf = Callable[..., list[torch.Tensor]]  # (outputs, targets, masks) -> per-task losses of a whole batch


@dataclass(frozen=True)
class Parts:
    """The model and its parameter groups: ``shared`` (what a gradient method acts on) and each task's head;
    ``inputs`` says how a batch's outputs are computed (one forward pass, or one per task in multi-input mode:
    :mod:`mtl_lab.training.inputs`)."""

    model: MultiTaskModel
    shared: list[torch.Tensor]
    heads: list[list[torch.Tensor]]
    inputs: InputMode


@dataclass
class Step:
    """What a path needs from one step: the losses (with their graph), the losses the method sees, the
    representation (when the path asked for it), the method's step context, the data-parallel strategy and
    the diagnostics observer (``None`` when no diagnostics are due)."""

    losses: list[torch.Tensor]
    seen: torch.Tensor
    rep: torch.Tensor | None
    ctx: StepContext
    parallel: Parallel
    observer: Diagnostics | None = None

    def observe(self, parts: Parts, weights: torch.Tensor, G: torch.Tensor | None = None,
                K: torch.Tensor | None = None, direction: torch.Tensor | None = None) -> None:
        """Show the observer (if any) what the path computed: ``G``, ``K``, or nothing (it computes ``G``)."""
        if self.observer is not None:
            self.observer.observe(self, parts, weights, G, K, direction)


# ---------------------------------------------------------------------------------------------- the update


@dataclass(frozen=True)
class ThroughLosses:
    """The trunk and the heads get ``∇ Σ_t w_t L_t`` from one backward pass."""

    losses: list[torch.Tensor]


@dataclass(frozen=True)
class SharedDirection:
    """The shared parameters get the flat direction ``d[P]``."""

    direction: torch.Tensor


@dataclass(frozen=True)
class ThroughRepresentation:
    """The trunk gets ``(∂z/∂θ)ᵀ d_Z`` from one backward pass of ``d_Z`` through the representation ``z``."""

    rep: torch.Tensor
    direction: torch.Tensor


@dataclass(frozen=True)
class ThroughGramianEngine:
    """The linear trunk gets ``∇ Σ_t w_t L_t`` layer by layer from the inputs and deltas the engine kept."""

    engine: LinearGramian


Trunk = ThroughLosses | SharedDirection | ThroughRepresentation | ThroughGramianEngine


def apply_update(parts: Parts, combination: Combination, trunk: Trunk,
                 head_grads: list[list[torch.Tensor]] | None = None, weigh_heads: bool = False) -> None:
    """The one place where a method's answer becomes ``.grad``.

    The shared trunk's gradient comes from ``trunk`` (see the four kinds above). Each head ``t`` gets
    ``h_t ∇L_t`` from its own gradient ``head_grads[t]``, with ``h`` the method's ``head_weights`` when it
    sets them, else ``w`` for a loss-weighting method (``weigh_heads``), else 1 (see
    :mod:`mtl_lab.weighting.base`). With :class:`ThroughLosses` the same backward pass gives the heads
    ``w_t ∇L_t``.
    """
    weights = combination.weights
    if isinstance(trunk, ThroughLosses):
        (weights.to(trunk.losses[0].dtype) * torch.stack(trunk.losses)).sum().backward()
        return
    if isinstance(trunk, SharedDirection):
        assign_flat_grad(parts.shared, trunk.direction)
    elif isinstance(trunk, ThroughRepresentation):
        trunk.rep.backward(trunk.direction.view_as(trunk.rep))  # the trunk's last use of the graph
    else:
        trunk.engine.apply_weights(weights)
    factors = combination.head_weights
    if factors is None and weigh_heads:
        factors = weights
    assign_head_grads(parts.heads, head_grads, [1.0] * len(parts.heads) if factors is None else list(factors))


def weights_only(weighting: Weighting, combination: Combination) -> Combination:
    """A path whose trunk update is ``Σ_t w_t ∇L_t`` accepts weights only; a direction is refused by name."""
    if combination.direction is not None:
        raise ValueError(
            f"method {weighting.name!r} requires {weighting.requires!r} and must return weights "
            "only (its direction is d = Gᵀw), but it returned a direction"
        )
    return combination


# ---------------------------------------------------------------------------------------------- the paths


class GradientPath:
    """A path: ``forward(x)`` (outputs and, where needed, the representation) and ``backward(step)``."""

    name = ""

    def __init__(self, weighting: Weighting, parts: Parts) -> None:
        self.weighting = weighting
        self.parts = parts

    def forward(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        return self.parts.inputs.outputs(self.parts.model, x), None

    def backward(self, step: Step) -> Combination:
        raise NotImplementedError


class LossWeighting(GradientPath):
    """Loss weighting: ``w = method(L)``, then one backward pass of ``Σ_t w_t L_t`` (no per-task gradients)."""

    name = "losses"

    def backward(self, step: Step) -> Combination:
        combination = self.weighting.combine(step.seen, None, step.ctx)
        apply_update(self.parts, combination, ThroughLosses(step.losses))
        return combination


class TaskGradients(GradientPath):
    """The per-task gradients ``G[T, P]`` (``T`` backward passes), the whole batch's under data parallelism;
    the method gets ``G``, ``K = GGᵀ`` or only the losses (``need``), and the trunk ``d`` or ``Gᵀw``."""

    name = "grads"

    def __init__(self, weighting: Weighting, parts: Parts, need: str) -> None:
        super().__init__(weighting, parts)
        self.need = need

    def backward(self, step: Step) -> Combination:
        # the last task's pass frees the graph: nothing after it differentiates the losses again
        G, head_grads = task_gradients(step.losses, self.parts.shared, self.parts.heads, retain_graph=False)
        G = step.parallel.gradients(G)  # the whole batch's G, the same on every rank
        combination = self.weighting.combine(step.seen, method_gradients(G, self.need), step.ctx)
        direction = combination.direction
        if direction is None:
            direction = combination.weights.to(G.dtype) @ G
        step.observe(self.parts, combination.weights, G=G, direction=combination.direction)
        apply_update(self.parts, combination, SharedDirection(direction), head_grads, self.need == "losses")
        return combination


def method_gradients(G: torch.Tensor, need: str) -> torch.Tensor | None:
    """What a method that needs ``need`` is given of ``G``: ``GGᵀ``, ``G`` itself, or nothing (loss weighting)."""
    if need == "gramian":
        return G @ G.T
    return G if need == "grads" else None


class GramianEngine(GradientPath):
    """``K = GGᵀ`` from the inputs and output gradients of a trunk of linear layers, without ``G``
    (:class:`mtl_lab.gradients.LinearGramian`; opt-in with ``gradient_path="gramian"``)."""

    name = "gramian"

    def __init__(self, weighting: Weighting, parts: Parts, engine: LinearGramian) -> None:
        super().__init__(weighting, parts)
        self.engine = engine

    def forward(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        self.engine.capture()
        return self.parts.model(x), None

    def backward(self, step: Step) -> Combination:
        K, head_grads = self.engine.gramian(step.losses, self.parts.heads)
        combination = weights_only(self.weighting, self.weighting.combine(step.seen, K, step.ctx))
        step.observe(self.parts, combination.weights, K=K)
        apply_update(self.parts, combination, ThroughGramianEngine(self.engine), head_grads)
        return combination


class RepresentationGrads(GradientPath):
    """The per-task gradients of the shared representation ``Z`` (see :mod:`mtl_lab.training.rep_grad`)."""

    name = "rep_grads"

    def forward(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        rep = self.parts.model.encode(x)
        return self.parts.model.decode(rep), rep

    def backward(self, step: Step) -> Combination:
        Z, head_grads = representation_gradients(step.losses, step.rep, self.parts.heads)
        whole = step.parallel.representation_gradients(Z)
        combination = self.weighting.combine(step.seen, method_input(whole, self.weighting.requires), step.ctx)
        step.observe(self.parts, combination.weights)
        trunk = ThroughRepresentation(step.rep, representation_direction(combination, Z))
        apply_update(self.parts, combination, trunk, head_grads)
        return combination


class CrossGramian(GradientPath):
    """Weights from ``A = G_ξ G_ξ'ᵀ`` of two independent extra batches (SDMGrad, MoDo;
    :mod:`mtl_lab.training.extra_batches`), applied to this batch's losses."""

    name = "cross_gramian"

    def __init__(self, weighting: Weighting, parts: Parts, batches: ExtraBatches, losses_of: LossesOf) -> None:
        super().__init__(weighting, parts)
        self.batches = batches
        self.losses_of = losses_of

    def backward(self, step: Step) -> Combination:
        A = self.batches.cross_gramian(self.parts.model, self.losses_of, self.parts.shared, self.parts.heads)
        combination = weights_only(self.weighting, self.weighting.combine(step.seen, A, step.ctx))
        step.observe(self.parts, combination.weights)
        apply_update(self.parts, combination, ThroughLosses(step.losses))
        return combination


class ValidationLookahead(GradientPath):
    """Weights learned from a validation look-ahead (Auto-λ; :mod:`mtl_lab.training.lookahead`), applied to
    this batch's losses."""

    name = "lookahead"

    def __init__(self, weighting: Weighting, parts: Parts, lookahead: Lookahead, losses_of: LossesOf) -> None:
        super().__init__(weighting, parts)
        self.lookahead = lookahead
        self.losses_of = losses_of

    def backward(self, step: Step) -> Combination:
        current = self.weighting.current_weights()
        H = self.lookahead.hypergradient(self.parts.model, self.losses_of, step.losses, current, step.ctx.lr,
                                         step.parallel.gradients)  # the whole batch's G on every rank
        combination = weights_only(self.weighting, self.weighting.combine(step.seen, H[:, None], step.ctx))
        step.observe(self.parts, combination.weights)
        apply_update(self.parts, combination, ThroughLosses(step.losses))
        return combination


# ---------------------------------------------------------------------------------------------- choosing


@dataclass(frozen=True)
class PathChoice:
    """The path of an ordinary step, and the one of a diagnostics step (the same, but for loss weighting)."""

    step: GradientPath
    diagnosed: GradientPath


def choose_path(weighting: Weighting, parts: Parts, rep_grads: bool, engine: LinearGramian | None,
                extra: ExtraBatches | None, lookahead: Lookahead | None, losses_of: LossesOf) -> PathChoice:
    """The trainer's paths, from what the method requires and the options (see the module docstring)."""
    need = step_need(weighting.requires, rep_grads, parts.model.has_shared_trunk)
    if need == "losses":
        return PathChoice(LossWeighting(weighting, parts), TaskGradients(weighting, parts, "losses"))
    if engine is not None:
        path: GradientPath = GramianEngine(weighting, parts, engine)
    elif need == "rep_grads":
        path = RepresentationGrads(weighting, parts)
    elif need == "cross_gramian":
        path = CrossGramian(weighting, parts, extra, losses_of)
    elif need == "lookahead":
        path = ValidationLookahead(weighting, parts, lookahead, losses_of)
    else:
        path = TaskGradients(weighting, parts, need)
    return PathChoice(path, path)


# ---------------------------------------------------------------------------------------------- the observer


class Diagnostics:
    """The gradient diagnostics of a step (:mod:`mtl_lab.gradients`), recorded through ``record``.

    From the path's ``K`` (the Gramian engine), else from its ``G``, else from ``G`` computed here on the
    shared parameters (the whole batch's under data parallelism) while the losses' graph is still alive.
    """

    def __init__(self, record: Callable[[dict], None]) -> None:
        self.record = record

    def observe(self, step: Step, parts: Parts, weights: torch.Tensor, G: torch.Tensor | None,
                K: torch.Tensor | None, direction: torch.Tensor | None) -> None:
        if K is not None:
            self.record(diagnostics_from_gramian(K, weights, step.ctx.lr).as_dict())
            return
        if G is None:
            G = step.parallel.gradients(task_gradients(step.losses, parts.shared, parts.heads)[0])
        self.record(diagnostics_from_gradients(G, weights, direction, step.ctx.lr).as_dict())
