"""Training: the Trainer, its configuration, background runs with a Stop handle, and checkpoints.

One training step on a batch ``(x, {t: y_t})``:

1. forward: ``outputs = model(x)`` (or ``rep = model.encode(x); outputs = model.decode(rep)``),
   losses ``L[T]``;
2. the weighting method gets ``L`` and what it ``requires`` (nothing, ``G``, ``Z`` or ``K = GGᵀ``) and
   returns effective weights ``w`` and possibly a direction ``d``;
3. shared parameters get ``d`` (or ``Gᵀw``), each head ``h_t ∇L_t`` (see :mod:`mtl_lab.weighting.base`),
   plus the model's regulariser and the optional L1 penalty; the optimiser steps.

The model's regulariser (``model.regularizer()``) is recorded with the losses, per step, in
``History.regularizer``; at the diagnostics cadence the model's ``inspect()`` goes to
``History.model_records``; after every optimiser step ``model.after_step(step)`` is called.

An architecture without a shared trunk (soft sharing) combined with a gradient method: the method
then acts on **every task's parameters**: ``G[t] = ∇_θ L_t`` over all of them, whose rows are
block-disjoint (``L_t`` touches only task ``t``'s column), and a method needing the representation's
gradients gets these gradients instead. The method can still rescale the tasks (MGDA, GradNorm), but
finds no conflict to resolve (the task gradients are orthogonal); the gradient diagnostics report
"not applicable".

Loss-only methods on a step without diagnostics take the cheap path: one backward pass of
``Σ_t w_t L_t``. Every ``diagnostics_every`` steps the per-task gradients are computed (whatever the
method) and the diagnostics of :mod:`mtl_lab.gradients` recorded. Per-step records stay on the device
and are copied to the History every ``record_every`` steps, so a CUDA run syncs only at that cadence.

``fit()`` blocks; ``start()`` runs the same loop in a background thread and returns a
:class:`RunHandle` with ``stop()``, ``join()``, a thread-safe ``history`` and an event stream. A stopped,
interrupted or failed run keeps its History and model; ``fit()`` again continues where it stopped.

Nothing silent, nothing lost (each in its own module): every option goes through
:mod:`mtl_lab.validate`; a NaN or infinite loss or gradient is caught before the optimiser step
(:mod:`mtl_lab.guards`); Ctrl-C ends a run between two steps (:mod:`mtl_lab.interrupts`); ``save()`` and
``load()`` write and check a checkpoint (:mod:`mtl_lab.checkpoint`) that holds every random state and the
position within the epoch (:mod:`mtl_lab.resume`), so a resumed run is bitwise the uninterrupted one on CPU.
"""

from __future__ import annotations

import collections
import math
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from mtl_lab import checkpoint, validate
from mtl_lab import masks as label_masks
from mtl_lab.data.base import MultiTaskData
from mtl_lab.extra_batches import ExtraBatches
from mtl_lab.gradients import (
    LinearGramian,
    assign_flat_grad,
    assign_head_grads,
    diagnostics_from_gradients,
    diagnostics_from_gramian,
    representation_gradients,
    task_gradients,
)
from mtl_lab.grouping import resolve_auto_groups
from mtl_lab.guards import NonFiniteGuard, NonFiniteLossError
from mtl_lab.history import History
from mtl_lab.interrupts import deferred_sigint
from mtl_lab.lookahead import Lookahead
from mtl_lab.models import build_model, check_option_kinds
from mtl_lab.models.base import MultiTaskModel
from mtl_lab.rep_grad import check_rep_grads, method_input, representation_direction, step_need
from mtl_lab.resume import global_rng_state, set_global_rng_state
from mtl_lab.weighting import StepContext, Weighting, create

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "step", "cosine")
DEVICES = ("auto", "cpu", "cuda", "mps")
GRADIENT_PATHS = ("auto", "jacobian", "gramian")
NONFINITE_CHECKS = ("auto", "host", "device")


@dataclass(frozen=True)
class TrainConfig:
    """Every training option, with checks that name the bad value and what is allowed.

    Attributes:
        epochs: passes over the training split.
        batch_size: rows per step.
        optimizer: ``adam``, ``adamw`` or ``sgd``; ``momentum`` applies to SGD.
        lr: learning rate (> 0); ``weight_decay`` (≥ 0) is the optimiser's L2 decay.
        l1: L1 penalty ``l1·Σ|θ|`` on every model parameter (≥ 0).
        schedule: ``none``, ``step`` (× ``gamma`` every ``step_size`` epochs) or ``cosine`` (to 0 over ``epochs``).
        device: ``auto`` (cuda, else mps, else cpu), ``cpu``, ``cuda`` (or ``cuda:N``) or ``mps``.
        seed: seeds the model's dropout, the batch order and the method's random numbers.
        diagnostics_every: compute gradient diagnostics every this many steps (0: never).
        record_every: copy per-step records to the History every this many steps (``None``: 10 on CPU, 25 else).
        gradient_path: ``auto`` (= ``jacobian`` for now), ``jacobian`` (materialise ``G``) or ``gramian``
            (``K`` from linear layers, without ``G``; see :meth:`Trainer.make_gramian_engine`).
        evaluate: evaluate the validation split after every epoch.
        train_metrics: also evaluate the training split's metrics after every epoch.
        augment: apply the data set's training augmentation, when it has one.
        nonfinite_check: how a NaN/inf loss or gradient is kept from the weights (:mod:`mtl_lab.guards`):
            ``host`` (read at once), ``device`` (a device-side flag gating a fused optimiser, read at the next
            flush) or ``auto`` (``host`` on CPU, ``device`` elsewhere).
        rep_grads: feed a gradient method the per-task gradients of the shared representation instead of
            the shared parameters (see :mod:`mtl_lab.rep_grad`).
    """

    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    l1: float = 0.0
    schedule: str = "none"
    step_size: int = 10
    gamma: float = 0.5
    device: str = "auto"
    seed: int = 0
    diagnostics_every: int = 10
    record_every: int | None = None
    gradient_path: str = "auto"
    evaluate: bool = True
    train_metrics: bool = True
    augment: bool = False
    nonfinite_check: str = "auto"
    rep_grads: bool = False

    def __post_init__(self) -> None:
        """Every value through :mod:`mtl_lab.validate` (the one validation layer)."""
        for name in ("epochs", "batch_size", "step_size"):
            validate.check_int(name, getattr(self, name), 1)
        validate.check_int("diagnostics_every", self.diagnostics_every, 0)
        if self.record_every is not None:
            validate.check_int("record_every", self.record_every, 1)
        validate.check_seed(self.seed)
        validate.check_number("lr", self.lr, 0, low_open=True)
        validate.check_number("gamma", self.gamma, 0, low_open=True)
        for name in ("weight_decay", "momentum", "l1"):
            validate.check_number(name, getattr(self, name), 0)
        for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("gradient_path", GRADIENT_PATHS),
                              ("nonfinite_check", NONFINITE_CHECKS)):
            validate.check_choice(name, getattr(self, name), allowed)
        for name in ("evaluate", "train_metrics", "augment"):
            validate.check_bool(name, getattr(self, name))
        validate.check_device(self.device)
        step_options = {"step_size": (self.step_size, TrainConfig.step_size), "gamma": (self.gamma, TrainConfig.gamma)}
        validate.check_unused_options(self.optimizer, self.momentum, self.schedule, step_options)
        validate.check_bool("rep_grads", self.rep_grads)
        if self.rep_grads and self.gradient_path == "gramian":
            raise ValueError("rep_grads=True and gradient_path='gramian' exclude each other: choose one")

    @staticmethod
    def option_names() -> list[str]:
        return [f.name for f in fields(TrainConfig)]


def resolve_device(name: str) -> torch.device:
    """``auto`` → the best available device; an unavailable one is a clear error."""
    return validate.check_device_available(name)


@dataclass(frozen=True)
class Event:
    """Something a live view may react to: ``kind`` is ``step``, ``epoch``, ``end`` or ``error``."""

    kind: str
    step: int
    epoch: int
    data: dict = field(default_factory=dict)


class EventStream:
    """A bounded, thread-safe queue of :class:`Event` (the oldest are dropped when it is full)."""

    def __init__(self, maxlen: int = 1000) -> None:
        self.queue: collections.deque[Event] = collections.deque(maxlen=maxlen)
        self.condition = threading.Condition()

    def put(self, event: Event) -> None:
        with self.condition:
            self.queue.append(event)
            self.condition.notify_all()

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting up to ``timeout`` seconds (``None`` if none came)."""
        with self.condition:
            if not self.queue:
                self.condition.wait(timeout)
            return self.queue.popleft() if self.queue else None

    def drain(self) -> list[Event]:
        """All pending events, oldest first."""
        with self.condition:
            events = list(self.queue)
            self.queue.clear()
            return events


class Trainer:
    """Trains a multi-task model with a weighting method and records a :class:`History`.

    Args:
        model: a :class:`~mtl_lab.models.base.MultiTaskModel` whose tasks match ``data``.
        data: the :class:`~mtl_lab.data.base.MultiTaskData`.
        weighting: a registry name or a :class:`~mtl_lab.weighting.base.Weighting` instance.
        config: a :class:`TrainConfig`; keyword ``options`` override its fields.
        callback: called with every :class:`Event` from the training thread (exceptions are recorded, not raised).
    """

    def __init__(
        self,
        model: MultiTaskModel,
        data: MultiTaskData,
        weighting: str | Weighting = "equal",
        config: TrainConfig | None = None,
        callback: Callable[[Event], None] | None = None,
        **options,
    ) -> None:
        unknown = [k for k in options if k not in TrainConfig.option_names()]
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; allowed: {TrainConfig.option_names()}")
        self.config = replace(config or TrainConfig(), **options)
        if not isinstance(model, MultiTaskModel):
            raise ValueError(f"model must be a MultiTaskModel, got {type(model).__name__}")
        if model.task_names != data.task_names:
            raise ValueError(f"the model's tasks {model.task_names} differ from the data's tasks {data.task_names}")
        if len(data.train) < 1:
            raise ValueError("the training split is empty")
        if self.config.augment and data.augment is None:  # never silently ignored
            raise ValueError(f"augment=True, but data set {data.name!r} has no training augmentation; load it with "
                             "augment=True where the data set offers one (digits, localization) or leave augment off")
        self.device = resolve_device(self.config.device)
        self.model = model.to(self.device)
        self.data = data.to(self.device)
        self.tasks = list(data.tasks)
        self.task_names = data.task_names
        self.weighting = create(weighting)
        self.weighting.reset(self.task_names)
        if self.config.rep_grads:
            check_rep_grads(self.weighting)
        self.shared = list(model.shared_parameters())
        self.heads = [list(model.task_parameters(n)) for n in self.task_names]
        self.check_parameter_groups()
        if not model.has_shared_trunk and self.weighting.requires_grads:
            self.shared = [p for params in self.heads for p in params]
            self.heads = [[] for _ in self.heads]
        self.guard = self.make_guard()
        self.optimizer = self.make_optimizer()
        self.scheduler = self.make_scheduler()
        self.gramian = self.make_gramian_engine()
        self.extra_batches = self.make_extra_batches()
        self.lookahead = Lookahead(self.data.val, self.config.batch_size, self.config.seed) if (
            self.weighting.requires == "lookahead") else None
        # data-parallel hook: a mtl_lab.distributed.DataParallel when this trainer is one rank of several
        self.data_parallel = None
        self.record_every = self.config.record_every or (10 if self.device.type == "cpu" else 25)
        self.callback = callback
        self.batch_generator = torch.Generator().manual_seed(self.config.seed)
        self.method_generator = torch.Generator().manual_seed(self.config.seed + 1)
        self.stop_event = threading.Event()
        self.interrupt_event = threading.Event()  # set by a deferred Ctrl-C (mtl_lab.interrupts)
        self.events = EventStream()
        self.lock = threading.Lock()  # held while a loop runs: one fit() at a time
        self.history = History(list(self.task_names), meta=self.describe())
        self.global_step = 0
        self.epoch = 0
        self.batch_iterator = None
        self.epoch_loss_sum = torch.zeros(len(self.tasks), device=self.device)
        self.epoch_batches = 0
        self.epoch_labelled = torch.zeros(len(self.tasks), device=self.device)  # batches with labels, per task
        self.batches_per_epoch = math.ceil(len(self.data.train) / self.config.batch_size)
        self.epoch_losses: tuple[tuple[float, ...], ...] = ()
        self.first_losses: tuple[float, ...] | None = None
        self.buffer: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
        self.train_seconds = 0.0
        self.loop_started = time.perf_counter()
        self.rng_state: dict | None = None  # the run's global random state between fit() calls (mtl_lab.resume)
        self.epoch_start_rng: torch.Tensor | None = None  # batch generator state when this epoch's order was drawn

    # ------------------------------------------------------------------ set-up

    def check_parameter_groups(self) -> None:
        """Every trainable parameter must be either shared or owned by exactly one task."""
        seen: dict[int, str] = {id(p): "shared" for p in self.shared}
        for name, params in zip(self.task_names, self.heads):
            for p in params:
                if id(p) in seen:
                    raise ValueError(f"a parameter of task {name!r} is also listed as {seen[id(p)]}")
                seen[id(p)] = f"task {name!r}"
        missing = [n for n, p in self.model.named_parameters() if p.requires_grad and id(p) not in seen]
        if missing:
            raise ValueError(f"parameters {missing} are neither shared nor owned by a task")

    def make_optimizer(self) -> torch.optim.Optimizer:
        """The configured optimiser over every trainable parameter.

        ``foreach=True`` everywhere: PyTorch picks it by default only on accelerators, while on the
        CPU it updates the parameters bitwise identically to the per-tensor loop (tested) and faster.
        With the device-side non-finite check (:mod:`mtl_lab.guards`) the optimiser is the fused one, which
        takes the guard's flag as ``found_inf`` and skips its update on the device.
        """
        c = self.config
        params = [p for p in self.model.parameters() if p.requires_grad]
        impl = {"fused": True} if self.guard.deferred else {"foreach": True}
        if c.optimizer == "adam":
            return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay, **impl)
        if c.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay, **impl)
        return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay, **impl)

    def make_guard(self) -> NonFiniteGuard:
        """The non-finite guard over every trainable parameter, each labelled with its owner."""
        owner = {id(p): "shared" for p in self.model.shared_parameters()}
        for name in self.task_names:
            owner.update({id(p): f"task {name!r}" for p in self.model.task_parameters(name)})
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.trainable = [p for _, p in named]
        labels = [f"{owner.get(id(p), 'model')} parameter {n!r}" for n, p in named]
        mode = self.config.nonfinite_check
        deferred = self.device.type != "cpu" if mode == "auto" else mode == "device"
        return NonFiniteGuard(self.device, deferred, labels)

    def make_scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | None:
        c = self.config
        if c.schedule == "step":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=c.step_size, gamma=c.gamma)
        if c.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=c.epochs)
        return None

    def make_gramian_engine(self) -> LinearGramian | None:
        """The Gramian path (opt-in): for methods that need only ``K``, on a trunk of linear layers.

        ``gradient_path="auto"`` takes the Jacobian path: on CPU the Gramian path measured slower in every
        configuration of ``benchmarks/bench_core.py`` (0.70–0.83 × the Jacobian path's steps/s), and it
        has not been measured on a GPU. ``gradient_path="gramian"`` turns it on.
        """
        if self.weighting.requires != "gramian" or self.config.gradient_path != "gramian":
            return None  # (rep_grads=True with gradient_path="gramian" is refused by TrainConfig)
        if not LinearGramian.applies_to(self.model, self.shared):
            raise ValueError("gradient_path='gramian' needs a trunk made of nn.Linear layers (e.g. trunk='mlp')")
        return LinearGramian(self.model, self.shared)

    def make_extra_batches(self) -> ExtraBatches | None:
        """The independent batch stream of a method with ``requires="cross_gramian"`` (SDMGrad, MoDo)."""
        if self.weighting.requires != "cross_gramian":
            return None
        return ExtraBatches(self.data.train, self.config.batch_size, self.config.seed)

    def describe(self) -> dict:
        """Run metadata for the History (JSON-friendly)."""
        return {
            "status": "new",
            "config": asdict(self.config),
            "method": self.weighting.config(),
            "model": self.model.describe(),
            "data": self.data.summary(),
            "device": str(self.device),
            "torch": str(torch.__version__),
            "threads": torch.get_num_threads(),
            "seed": self.config.seed,
            "gradient_path": "gramian" if self.gramian is not None else "jacobian",
            "diagnostics": self.diagnostics_note(),
            "method_acts_on": "shared parameters" if self.model.has_shared_trunk else "every task's parameters",
        }

    def diagnostics_note(self) -> str:
        """Why there will be no gradient diagnostics, or ``""`` when there will be."""
        if not self.model.has_shared_trunk:
            return f"not applicable: the {self.model.architecture} architecture has no shared trunk"
        if self.config.diagnostics_every == 0:
            return "gradient diagnostics are off (diagnostics_every=0)"
        return ""

    # ------------------------------------------------------------------ one step

    def context(self) -> StepContext:
        return StepContext(
            step=self.global_step,
            epoch=self.epoch,
            epoch_losses=self.epoch_losses,
            first_losses=self.first_losses,
            generator=self.method_generator,
            lr=self.optimizer.param_groups[0]["lr"],
        )

    def compute_losses(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], masks: dict | None = None
    ) -> list[torch.Tensor]:
        """Each task's scalar loss over its labelled rows (:mod:`mtl_lab.masks`), as a list (the gradient
        engine differentiates them one by one)."""
        losses = label_masks.losses(self.tasks, outputs, targets, masks)
        if self.data_parallel is not None:  # the whole batch's values; gradients of this rank's rows
            losses = self.data_parallel.losses(losses, self.task_names)
        return losses

    def whole_batch_losses(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], masks: dict | None = None
    ) -> list[torch.Tensor]:
        """The per-task losses of a batch every rank holds whole (extra batches, validation lookahead): never
        shared out among data-parallel ranks."""
        return label_masks.losses(self.tasks, outputs, targets, masks)

    def diagnostics_due(self) -> bool:
        every = self.config.diagnostics_every
        return every > 0 and self.global_step % every == 0

    def train_step(
        self, x: torch.Tensor, targets: dict[str, torch.Tensor], masks: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """One optimisation step on a batch (``masks``: labelled rows of tasks missing labels); returns the
        detached per-task losses."""
        if not self.model.training:  # train() walks every module: only when evaluation switched it off
            self.model.train()
        if self.data_parallel is not None:  # one rank of a data-parallel run: its own rows of the batch
            x, targets, masks = self.data_parallel.shard(x, targets, masks)
        need = step_need(self.weighting.requires, self.config.rep_grads, self.model.has_shared_trunk)
        diagnose = self.diagnostics_due() and self.model.has_shared_trunk
        use_gramian = self.gramian is not None
        if use_gramian:
            self.gramian.capture()
        rep = None
        if need == "rep_grads":
            rep = self.model.encode(x)
            outputs = self.model.decode(rep)
        else:
            outputs = self.model(x)
        losses = self.compute_losses(outputs, targets, masks)
        detached = torch.stack([loss.detach() for loss in losses])
        self.stop_if_non_finite(self.guard.check_losses(detached, self.task_names, self.global_step), detached)
        labelled = label_masks.present(self.tasks, masks, self.device)
        seen = label_masks.stand_in(detached, labelled)  # the losses the method sees
        if self.first_losses is None:
            self.first_losses = tuple(seen.tolist())
        ctx = self.context()
        self.optimizer.zero_grad(set_to_none=True)

        if need == "losses" and not diagnose:
            combination = self.weighting.combine(seen, None, ctx)
            (combination.weights * torch.stack(losses)).sum().backward()
        elif need in ("cross_gramian", "lookahead"):
            combination = self.weights_from_other_batches(losses, diagnose, ctx)
        else:
            combination = self.gradient_step(losses, rep, need, diagnose, use_gramian, ctx, seen)
        regularizer = self.add_regularizers()
        if self.data_parallel is not None:  # every rank takes the same step
            self.data_parallel.average_gradients(self.model.parameters())
        self.stop_if_non_finite(self.guard.check_gradients(self.trainable, self.global_step), detached)
        self.guard.gate(self.optimizer)
        self.optimizer.step()
        self.model.after_step(self.global_step)

        if self.weighting.needs_losses_after_step:
            with torch.no_grad():
                after = torch.stack(self.compute_losses(self.model(x), targets, masks))
            self.weighting.after_step(label_masks.stand_in(after, labelled), ctx)
        weights = label_masks.effective_weights(combination.weights.detach().to(self.device, torch.float32), labelled)
        if self.diagnostics_due():
            self.record_model()
        self.record_step(detached, weights, combination.info, regularizer, labelled)
        return detached

    def gradient_step(self, losses, rep, need: str, diagnose: bool, use_gramian: bool, ctx: StepContext, seen=None):
        """The per-task-gradient part of a step: build what the method needs, apply its answer.

        ``seen``: the losses the method is shown (:func:`mtl_lab.masks.stand_in`); default the losses.
        """
        detached = torch.stack([loss.detach() for loss in losses]) if seen is None else seen
        lr = ctx.lr
        if use_gramian:
            K, head_grads = self.gramian.gramian(losses, self.heads)
            combination = self.weighting.combine(detached, K, ctx)
            self.require_weights_only(combination)
            self.gramian.apply_weights(combination.weights)
            if diagnose:
                self.record_diagnostics(diagnostics_from_gramian(K, combination.weights, lr).as_dict())
        elif need == "rep_grads":
            Z, head_grads = representation_gradients(losses, rep, self.heads)
            whole_Z = Z if self.data_parallel is None else self.data_parallel.representation_gradients(Z)
            combination = self.weighting.combine(detached, method_input(whole_Z, self.weighting.requires), ctx)
            if diagnose:
                G, _ = task_gradients(losses, self.shared, self.heads)
                if self.data_parallel is not None:
                    G = self.data_parallel.gradients(G)
                self.record_diagnostics(diagnostics_from_gradients(G, combination.weights, None, lr).as_dict())
            rep.backward(representation_direction(combination, Z).view_as(rep))  # the trunk's last use of the graph
        else:
            # the last task's pass frees the graph: nothing after it differentiates the losses again
            G, head_grads = task_gradients(losses, self.shared, self.heads, retain_graph=False)
            if self.data_parallel is not None:  # the whole batch's G, the same on every rank
                G = self.data_parallel.gradients(G)
            extra = G @ G.T if need == "gramian" else (G if need == "grads" else None)
            combination = self.weighting.combine(detached, extra, ctx)
            direction = combination.direction
            if direction is None:
                direction = combination.weights.to(G.dtype) @ G
            assign_flat_grad(self.shared, direction)
            if diagnose:
                diag = diagnostics_from_gradients(G, combination.weights, combination.direction, lr)
                self.record_diagnostics(diag.as_dict())
        factors = combination.head_weights
        if factors is None:
            factors = combination.weights if need == "losses" else None
        assign_head_grads(self.heads, head_grads, [1.0] * len(self.tasks) if factors is None else list(factors))
        return combination

    def stop_if_non_finite(self, message: str | None, losses: torch.Tensor) -> None:
        """Host check found a bad step: record its losses (not its update) and stop before the optimiser."""
        if message is None:
            return
        nan = torch.full_like(losses, float("nan"))
        self.buffer.append((self.global_step, losses, nan, None))
        self.history.add_note({"step": self.global_step, "non_finite": message})
        raise NonFiniteLossError(message)

    def weights_from_other_batches(self, losses, diagnose: bool, ctx: StepContext):
        """A method whose weights come from other batches (extra training batches, a validation lookahead).

        The method gets ``A = G_ξ G_ξ'ᵀ`` (``requires="cross_gramian"``) or the lookahead's ``H[T, 1]``
        (``requires="lookahead"``); its weights then weigh this batch's losses, heads included.
        """
        if self.weighting.requires == "cross_gramian":
            extra = self.extra_batches.cross_gramian(self.model, self.whole_batch_losses, self.shared, self.heads)
        else:
            current = self.weighting.current_weights()
            extra = self.lookahead.hypergradient(self.model, self.whole_batch_losses, losses, current, ctx.lr)[:, None]
        detached = torch.stack([loss.detach() for loss in losses])
        combination = self.weighting.combine(detached, extra, ctx)
        self.require_weights_only(combination)
        if diagnose:
            G, _ = task_gradients(losses, self.shared, self.heads)
            self.record_diagnostics(diagnostics_from_gradients(G, combination.weights, None, ctx.lr).as_dict())
        (combination.weights.to(detached.dtype) * torch.stack(losses)).sum().backward()
        return combination

    def require_weights_only(self, combination) -> None:
        if combination.direction is not None:
            raise ValueError(
                f"method {self.weighting.name!r} requires {self.weighting.requires!r} and must return weights "
                "only (its direction is d = Gᵀw), but it returned a direction"
            )

    def add_regularizers(self) -> torch.Tensor | None:
        """Add the model's regulariser and the L1 penalty to the parameters' gradients.

        Returns the regulariser's value (detached, on the device), or ``None`` when the model has none.
        """
        reg = self.model.regularizer()
        if reg is None and self.config.l1 == 0:
            return None
        params = [p for p in self.model.parameters() if p.requires_grad]
        if reg is not None:
            for p, g in zip(params, torch.autograd.grad(reg, params, allow_unused=True)):
                if g is not None:
                    p.grad = g if p.grad is None else p.grad + g
        if self.config.l1 > 0:
            for p in params:
                if p.grad is not None:
                    p.grad = p.grad + self.config.l1 * torch.sign(p.detach())
        return None if reg is None else reg.detach()

    # ------------------------------------------------------------------ records

    def record_step(
        self,
        losses: torch.Tensor,
        weights: torch.Tensor,
        info: dict,
        regularizer: torch.Tensor | None = None,
        labelled: torch.Tensor | None = None,
    ) -> None:
        self.epoch_loss_sum += losses
        self.epoch_labelled += 1.0 if labelled is None else labelled
        self.epoch_batches += 1
        self.buffer.append((self.global_step, losses, weights, regularizer))
        if info and (info.get("converged", True) is False or "warning" in info):
            self.history.add_note({"step": self.global_step, "method": self.weighting.name, **plain(info)})
        self.global_step += 1
        if len(self.buffer) >= self.record_every:
            self.flush()

    def record_diagnostics(self, record: dict) -> None:
        self.history.add_diagnostics({"step": self.global_step, **record})

    def record_model(self) -> None:
        """What the model's ``inspect()`` reports (gates, relation matrices …), into ``History.model_records``."""
        record = self.model.inspect()
        if record:
            self.history.add_model_record({"step": self.global_step, **plain(record)})

    def flush(self) -> None:
        """Copy buffered per-step records to the History (one device sync); stop on a non-finite loss."""
        if not self.buffer:
            return
        steps = [s for s, _, _, _ in self.buffer]
        losses = torch.stack([l for _, l, _, _ in self.buffer]).tolist()
        weights = torch.stack([w for _, _, w, _ in self.buffer]).tolist()
        regs = [r for _, _, _, r in self.buffer]
        regularizer = None
        if any(r is not None for r in regs):
            nan = torch.tensor(float("nan"), device=self.device)
            regularizer = torch.stack([nan if r is None else r.float() for r in regs]).tolist()
        self.buffer = []
        self.history.add_steps(steps, losses, weights, regularizer)
        first_bad = self.guard.tripped()  # device-side check: read here, where the records sync anyway
        if first_bad is not None:
            self.raise_deferred_non_finite(first_bad)
        self.emit("step", {"loss": losses[-1], "weights": weights[-1]})

    def raise_deferred_non_finite(self, step: int) -> None:
        """The device-side flag was set at ``step``: no update was applied from that step on; say so."""
        message = self.guard.deferred_message(self.task_names)
        self.history.add_note({"step": step, "non_finite": message})
        raise NonFiniteLossError(message)

    def emit(self, kind: str, data: dict | None = None) -> None:
        event = Event(kind, self.global_step, self.epoch, data or {})
        self.events.put(event)
        if self.callback is not None:
            try:
                self.callback(event)
            except Exception as exc:  # a broken view must not kill the run
                self.history.add_note({"step": self.global_step, "callback_error": repr(exc)})

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def evaluate(self, split: str = "val", batch_size: int = 1024) -> tuple[dict[str, float], dict[str, float]]:
        """Per-task mean loss and metric on ``split`` (``train``, ``val`` or ``test``), over labelled rows only.

        Pixel tasks accumulate over the split batch by batch (:class:`mtl_lab.masks.SplitAccumulator`).
        """
        if split not in ("train", "val", "test"):
            raise ValueError(f"split {split!r} is not one of ('train', 'val', 'test')")
        data = getattr(self.data, split)
        if len(data) == 0:
            return {}, {}
        was_training = self.model.training
        self.model.eval()
        if any(t.is_pixel for t in self.tasks):  # feature maps of 1024 images would not fit
            batch_size = min(batch_size, self.config.batch_size)
        chunks: dict[str, list[torch.Tensor]] = {t.name: [] for t in self.tasks if not t.is_pixel}
        dense = {t.name: label_masks.SplitAccumulator(t) for t in self.tasks if t.is_pixel}  # sums, not outputs
        for x, y, masks in data.batches(batch_size, with_mask=True):
            for name, out in self.model(x).items():
                if name in dense:
                    dense[name].update(out, y[name], masks.get(name))
                else:
                    chunks[name].append(out)
        self.model.train(was_training)
        losses, metrics = {}, {}
        for task in self.tasks:
            if task.is_pixel:
                losses[task.name], metrics[task.name] = dense[task.name].loss(), dense[task.name].metric()
                continue
            out = torch.cat(chunks[task.name])
            mask = data.mask.get(task.name)
            losses[task.name] = label_masks.task_loss_value(task, out, data.y[task.name], mask)
            metrics[task.name] = label_masks.task_metric(task, out, data.y[task.name], mask)
        return losses, metrics

    def end_epoch(self) -> None:
        self.flush()
        mean = (self.epoch_loss_sum / self.epoch_labelled.clamp(min=1)).tolist()  # over batches with labels
        self.epoch_losses = self.epoch_losses + (tuple(mean),)
        record = {
            "epoch": self.epoch + 1,
            "step": self.global_step,
            "train_loss": dict(zip(self.task_names, mean)),
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        if self.config.train_metrics:
            record["train_metric"] = self.evaluate("train")[1]
        if self.config.evaluate and len(self.data.val):
            record["val_loss"], record["val_metric"] = self.evaluate("val")
        record["time"] = round(self.elapsed(), 3)
        self.history.add_epoch(record)
        if self.scheduler is not None:
            self.scheduler.step()
        self.epoch += 1
        self.epoch_loss_sum.zero_()
        self.epoch_labelled.zero_()
        self.epoch_batches = 0
        self.batch_iterator = None
        self.epoch_start_rng = None
        self.warn_non_finite_metrics(record, f"epoch {record['epoch']}")
        self.emit("epoch", record)

    def warn_non_finite_metrics(self, record: dict, where: str) -> None:
        """A NaN or infinite validation/test loss or metric is said in a note and in ``meta["warnings"]``."""
        bad = sorted({f"{key}[{task!r}] = {v}" for key in ("val_loss", "val_metric", "test_loss", "test_metrics")
                      for task, v in record.get(key, {}).items() if not math.isfinite(v)})
        if not bad:
            return
        message = f"{where}: non-finite evaluation results {bad}; check the validation/test data and the model"
        self.history.add_note({"step": self.global_step, "warning": message})
        with self.history.lock:
            self.history.meta.setdefault("warnings", []).append(message)

    def finish(self, status: str) -> None:
        self.train_seconds = self.elapsed()
        test_loss, test_metric = self.evaluate("test")
        self.history.update_meta(
            status=status,
            steps=self.global_step,
            epochs_done=self.epoch,
            train_seconds=round(self.train_seconds, 3),
            test_loss=test_loss,
            test_metrics=test_metric,
        )
        self.warn_non_finite_metrics({"test_loss": test_loss, "test_metrics": test_metric}, "test split")

    # ------------------------------------------------------------------ loops

    def fit(self, max_steps: int | None = None) -> History:
        """Train until ``config.epochs`` are done, ``max_steps`` more steps were taken, or Stop.

        Returns the History. ``meta["status"]`` is ``completed``, ``paused`` (``max_steps`` reached),
        ``stopped`` (``stop()`` was called), ``interrupted`` (KeyboardInterrupt) or ``error`` (re-raised).
        """
        if max_steps is not None:
            validate.check_int("max_steps", max_steps, 1)
        if not self.lock.acquire(blocking=False):
            raise RuntimeError("this trainer is already running; stop() it or wait for it first")
        try:
            return self.run_loop(max_steps)
        finally:
            self.lock.release()

    def run_loop(self, max_steps: int | None) -> History:
        """:meth:`train_until`, then end the run with a status, whatever happened (the History and model kept).

        ``KeyboardInterrupt`` (from Ctrl-C, or raised by a callback) → ``interrupted``; any other exception,
        ``SystemExit`` included → ``error`` with a note, then re-raised. Never left ``running``.
        """
        if self.rng_state is None:
            if self.global_step == 0:
                torch.manual_seed(self.config.seed)
        else:
            set_global_rng_state(self.rng_state, self.device)
        self.stop_event.clear()
        self.interrupt_event.clear()
        self.history.update_meta(status="running")
        self.loop_started = time.perf_counter()
        status, error = "interrupted", None
        try:
            with deferred_sigint(self.interrupt_event):
                status = self.train_until(max_steps)
                self.flush()
        except KeyboardInterrupt:
            status = "interrupted"
        except BaseException as exc:  # noqa: BLE001 — SystemExit too: the run must end with a status
            error = exc
        self.rng_state = global_rng_state(self.device)
        if error is not None:
            self.fail(error)
            raise error
        if status == "interrupted":
            self.flush_after_interrupt()
            warnings.warn("training interrupted: the History and the model keep what was done so far; "
                          "fit() continues exactly where it stopped", stacklevel=3)
        try:
            self.finish(status)
        except KeyboardInterrupt:  # during the test evaluation: the run itself is intact
            status = "interrupted"
            self.history.update_meta(status=status, steps=self.global_step, epochs_done=self.epoch)
            self.history.add_note({"step": self.global_step, "note": "interrupted during the test evaluation"})
        except Exception as exc:
            self.fail(exc)
            raise
        self.emit_end(status)
        return self.history

    def train_until(self, max_steps: int | None) -> str:
        """The loop over batches; returns ``completed``, ``paused``, ``stopped`` or ``interrupted``."""
        taken = 0
        while self.epoch < self.config.epochs:
            if self.batch_iterator is None:
                self.epoch_start_rng = self.batch_generator.get_state()
                self.batch_iterator = self.data.train.batches(
                    self.config.batch_size, shuffle=True, generator=self.batch_generator, with_mask=True
                )
            batch = next(self.batch_iterator, None)
            if batch is not None:
                x, y, masks = batch
                if self.config.augment and self.data.augment is not None:
                    x, y = self.data.augment(x, y, self.batch_generator)
                self.train_step_guarded(x, y, masks)
                taken += 1
            if batch is None or self.epoch_batches == self.batches_per_epoch:
                self.end_epoch()
            if self.epoch < self.config.epochs:
                if self.interrupt_event.is_set():
                    return "interrupted"
                if self.stop_event.is_set():
                    return "stopped"
                if max_steps is not None and taken >= max_steps:
                    return "paused"
        return "completed"

    def train_step_guarded(
        self, x: torch.Tensor, targets: dict[str, torch.Tensor], masks: dict[str, torch.Tensor] | None = None
    ) -> None:
        """:meth:`train_step`; when it fails after the device-side flag was set, the flag is the real news
        (a method that reads the losses on the host may raise on the NaN first)."""
        try:
            self.train_step(x, targets, masks)
        except Exception:
            first_bad = self.guard.tripped()
            if first_bad is None:
                raise
            try:
                self.flush()  # the steps before this one; raises the same news, which is raised below
            except NonFiniteLossError:
                pass
            if first_bad not in self.history.steps:  # the bad step itself: its losses, no weights
                losses = self.guard.first_bad_losses
                row = losses.tolist() if losses is not None else [math.nan] * len(self.task_names)
                self.history.add_steps([first_bad], [row], [[math.nan] * len(self.task_names)])
            self.raise_deferred_non_finite(first_bad)

    def flush_after_interrupt(self) -> None:
        """Move buffered steps to the History; a second interrupt from a view cannot lose them."""
        try:
            self.flush()
        except KeyboardInterrupt:
            pass

    def emit_end(self, status: str) -> None:
        """The ``end`` event; the run has ended already, so a callback's interrupt only leaves a note."""
        try:
            self.emit("end", {"status": status})
        except BaseException as exc:  # noqa: BLE001
            self.history.add_note({"step": self.global_step, "callback_error": repr(exc)})
            if not isinstance(exc, KeyboardInterrupt):
                raise

    def elapsed(self) -> float:
        """Seconds spent in training loops so far (this run's loop included)."""
        return self.train_seconds + time.perf_counter() - self.loop_started

    def fail(self, exc: BaseException) -> None:
        """Record an error: keep what was buffered, mark the History, tell the views."""
        try:
            self.flush()
        except BaseException:  # noqa: BLE001 — the records are in the History already; the error is the news
            self.buffer = []
        self.train_seconds = self.elapsed()
        message = f"{type(exc).__name__}: {exc}"
        self.history.add_note({"step": self.global_step, "error": message})
        self.history.update_meta(status="error", error=message, steps=self.global_step, epochs_done=self.epoch)
        try:
            self.emit("error", {"error": message})
        except BaseException as again:  # noqa: BLE001
            self.history.add_note({"step": self.global_step, "callback_error": repr(again)})

    def start(self, max_steps: int | None = None) -> RunHandle:
        """Run :meth:`fit` in a background thread; returns a handle to stop, join and watch it."""
        if self.lock.locked():
            raise RuntimeError("this trainer is already running; stop() it or wait for it first")
        handle = RunHandle(self)
        handle.thread = threading.Thread(target=handle.target, args=(max_steps,), name="mtl_lab-train", daemon=True)
        handle.thread.start()
        return handle

    def stop(self) -> None:
        """Ask a running loop to stop after the current step."""
        self.stop_event.set()

    # ------------------------------------------------------------------ checkpoints

    def save(self, path: str | Path) -> Path:
        """Everything needed to continue bitwise, in one file (written atomically; see :mod:`mtl_lab.checkpoint`).

        May be called between ``fit()`` calls or from a callback during a run.
        """
        return checkpoint.write(path, checkpoint.trainer_state(self))

    def load(self, path: str | Path) -> None:
        """Restore what :meth:`save` wrote, after checking it is a checkpoint of this kind of run.

        ``weights_only=True``: no code is unpickled. Nothing is changed when the file is not a checkpoint or
        belongs to another architecture, task set, optimiser, schedule, method or batch size. ``fit()``
        then continues at the very step where the checkpoint was taken, with every random state restored.
        """
        if self.lock.locked():
            raise RuntimeError("this trainer is running; stop() it before loading a checkpoint")
        checkpoint.load_into(self, path)


class RunHandle:
    """A background run: ``stop()``, ``join()``, ``running``, a thread-safe ``history``, ``events``."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def target(self, max_steps: int | None) -> None:
        try:
            self.trainer.fit(max_steps)
        except BaseException as exc:  # recorded in History and here; the thread must not crash the kernel
            self.error = exc

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    @property
    def history(self) -> History:
        """A consistent snapshot of the run's History."""
        return self.trainer.history.snapshot()

    @property
    def events(self) -> EventStream:
        return self.trainer.events

    def stop(self, wait: bool = True, timeout: float | None = 10.0) -> History:
        """Ask the run to stop after the current step; by default wait for it."""
        self.trainer.stop()
        if wait:
            self.join(timeout)
        return self.history

    def join(self, timeout: float | None = None, raise_error: bool = True) -> History:
        """Wait for the run; re-raise its error (if any) unless ``raise_error=False``."""
        if self.thread is not None:
            self.thread.join(timeout)
        if raise_error and self.error is not None and not self.running:
            raise self.error
        return self.history


def plain(value):
    """Tensors and tuples in a method's info → JSON-friendly Python values."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def build_trainer(
    data: MultiTaskData,
    architecture: str = "hard",
    method: str | Weighting = "equal",
    model_options: dict | None = None,
    method_options: dict | None = None,
    callback: Callable[[Event], None] | None = None,
    **train_options,
) -> Trainer:
    """Model (initialised from ``seed``), method and Trainer in one call.

    The model is built under ``torch.random.fork_rng`` so the caller's global random state is untouched.
    For the ``grouped`` architecture, ``model_options={"groups": "auto"}`` first runs the grouping probe
    of :func:`mtl_lab.grouping.resolve_auto_groups` on ``data``.
    """
    config = replace(TrainConfig(), **train_options) if set(train_options) <= set(TrainConfig.option_names()) else None
    seed = config.seed if config is not None else TrainConfig.seed  # unknown options: Trainer names them below
    check_architecture_options(architecture, model_options or {})
    model_options = resolve_auto_groups(data, model_options or {}, seed) if architecture == "grouped" else model_options
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(architecture, data, **(model_options or {}))
    weighting = create(method, **(method_options or {}))
    return Trainer(model, data, weighting, callback=callback, **train_options)


def check_architecture_options(architecture: str, options: dict) -> None:
    """Model options checked before anything is built (:func:`mtl_lab.models.check_option_kinds`)."""
    check_option_kinds(architecture, options)


def train(data: MultiTaskData, architecture: str = "hard", method: str | Weighting = "equal", **options) -> Trainer:
    """Build a trainer with :func:`build_trainer`, run it to the end, and return it."""
    trainer = build_trainer(data, architecture, method, **options)
    trainer.fit()
    return trainer
