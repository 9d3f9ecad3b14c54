"""The Trainer: set-up, the loop, one step, records, evaluation and its own state (``state_dict``).

One step reads top to bottom (:meth:`Trainer.train_step`): shard (:mod:`~mtl_lab.training.parallel`) →
forward (one pass over shared rows, or one per task on its own inputs: the input mode chosen from the data's
form when the trainer is built, :mod:`~mtl_lab.training.inputs`) → losses over the labelled rows
(:mod:`~mtl_lab.training.masks`) → guard (:mod:`~mtl_lab.training.guards`) → the gradient path chosen when the
trainer was built (:mod:`~mtl_lab.training.paths`: the method gets ``L`` and what it ``requires`` — nothing,
``G``, ``Z`` or ``K = GGᵀ`` — and its weights or direction become ``.grad``, each head ``h_t ∇L_t``) → regularisers
(:mod:`~mtl_lab.training.regularizers`) → the data-parallel average → guard → optimiser → record. The model's
regulariser goes to ``History.regularizer``, its ``inspect()`` to ``History.model_records`` at the diagnostics
cadence, and ``model.after_step(step)`` is called after every optimiser step. Without a shared trunk (soft
sharing) a gradient method acts on every task's parameters (block-disjoint rows of ``G``: nothing to
resolve; the diagnostics say "not applicable"). Per-step records stay on the device and reach the History
every ``record_every`` steps, so a CUDA run syncs only at that cadence (:mod:`~mtl_lab.training.records`).

``fit()`` blocks; ``start()`` runs the same loop in a thread (:class:`~mtl_lab.training.events.RunHandle`). A run
begins, advances and ends in one place each (``begin_run``, ``advance``, ``end_run``: ``fit()`` is the three; a
race, :mod:`~mtl_lab.training.race`, begins each racer once and advances it a step per turn). A
stopped, interrupted or failed run keeps its History and model, and ends with a status
(:mod:`~mtl_lab.training.ending`); ``fit()`` again continues where it stopped. Ctrl-C ends a run between two steps
(:mod:`~mtl_lab.training.interrupts`); :meth:`Trainer.state_dict` holds
every random state and the position within the epoch (:mod:`~mtl_lab.training.resume`), so a resumed run is
bitwise the uninterrupted one on CPU; ``save()``/``load()`` go through :mod:`~mtl_lab.training.checkpoint`.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from mtl_lab import validate
from mtl_lab.data.base import MultiTaskData
from mtl_lab.data.multi_input import MultiInputData
from mtl_lab.gradients import clear_grads
from mtl_lab.history import History
from mtl_lab.models.base import MultiTaskModel
from mtl_lab.training import checkpoint
from mtl_lab.training import masks as label_masks
from mtl_lab.training.config import TrainConfig, resolve_device
from mtl_lab.training.ending import RunClock, RunEnd
from mtl_lab.training.evaluation import SPLITS, note_non_finite_results
from mtl_lab.training.events import Event, RunHandle, plain
from mtl_lab.training.extra_batches import ExtraBatches
from mtl_lab.training.inputs import input_mode
from mtl_lab.training.interrupts import Interrupts, deferred_sigint
from mtl_lab.training.lookahead import Lookahead
from mtl_lab.training.parallel import Parallel, SingleProcess
from mtl_lab.training.paths import Diagnostics, Parts, Step, choose_path
from mtl_lab.training.records import EpochTotals, Records
from mtl_lab.training.regularizers import add_regularizers
from mtl_lab.training.rep_grad import check_rep_grads
from mtl_lab.training.resume import RunPosition, global_rng_state, record_continuation, set_global_rng_state
from mtl_lab.training.setup import (
    check_inputs,
    describe_run,
    make_gramian_engine,
    make_guard,
    make_optimizer,
    make_scheduler,
    parameter_groups,
)
from mtl_lab.weighting import StepContext, Weighting, create

# the training options a checkpoint's settings hold besides its identity (see Trainer.settings)
RUN_SETTINGS = ("lr", "weight_decay", "momentum", "step_size", "gamma", "epochs", "l1", "rep_grads", "gradient_path",
                "augment")


class Trainer:
    """Trains a multi-task model with a weighting method and records a :class:`History`.

    Args:
        model: a :class:`~mtl_lab.models.base.MultiTaskModel` whose tasks match ``data``.
        data: the :class:`~mtl_lab.data.base.MultiTaskData`, or :class:`~mtl_lab.data.multi_input.MultiInputData`
            (each task its own inputs: multi-input mode, :mod:`mtl_lab.training.inputs`).
        weighting: a registry name or a :class:`~mtl_lab.weighting.base.Weighting` instance.
        config: a :class:`TrainConfig`; keyword ``options`` override its fields.
        callback: called with every :class:`Event` from the training thread (exceptions are recorded, not raised).
        parallel: the data-parallel strategy (:mod:`mtl_lab.training.parallel`); default one process.
    """

    def __init__(
        self,
        model: MultiTaskModel,
        data: MultiTaskData | MultiInputData,
        weighting: str | Weighting = "equal",
        config: TrainConfig | None = None,
        callback: Callable[[Event], None] | None = None,
        parallel: Parallel | None = None,
        **options,
    ) -> None:
        unknown = [k for k in options if k not in TrainConfig.option_names()]
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; allowed: {TrainConfig.option_names()}")
        self.config = c = replace(config or TrainConfig(), **options)
        check_inputs(model, data, c)
        self.device = resolve_device(c.device)
        self.model = model.to(self.device)
        self.data = data.to(self.device)
        self.tasks = list(data.tasks)
        self.task_names = data.task_names
        self.weighting = create(weighting)
        self.weighting.reset(self.task_names)
        self.inputs = input_mode(data)  # shared rows, or each task its own (training.inputs)
        self.inputs.check(self.weighting.name, self.weighting.requires, c.rep_grads, c.gradient_path)
        if c.rep_grads:
            check_rep_grads(self.weighting, model.has_shared_trunk)
        self.shared, self.heads = parameter_groups(model, self.task_names, self.weighting)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.guard = make_guard(model, self.task_names, self.device, c.nonfinite_check)
        self.optimizer = make_optimizer(self.trainable, c)
        self.scheduler = make_scheduler(self.optimizer, c)
        self.gramian = make_gramian_engine(model, self.shared, self.weighting, c.gradient_path)
        self.extra_batches = ExtraBatches(self.data.train, c.batch_size, c.seed, self.inputs) if (
            self.weighting.requires == "cross_gramian") else None
        self.lookahead = Lookahead(self.data.val, c.batch_size, c.seed, self.inputs) if (
            self.weighting.requires == "lookahead") else None
        parts = Parts(self.model, self.shared, self.heads, self.inputs)
        self.paths = choose_path(self.weighting, parts, c.rep_grads,
                                 self.gramian, self.extra_batches, self.lookahead, self.whole_batch_losses)
        self.diagnostics = Diagnostics(self.record_diagnostics)
        self.records = Records(c.record_every or (10 if self.device.type == "cpu" else 25), callback, self.guard,
                               self.task_names)  # per-step rows → History, events (training.records)
        augment = self.data.augment if c.augment else None
        self.source = self.inputs.source(self.data, c.batch_size, c.seed, augment)  # the training batches
        self.method_generator = torch.Generator().manual_seed(c.seed + 1)
        self.parallel: Parallel = SingleProcess()
        self.stop_event = threading.Event()
        self.interrupts = Interrupts()  # what Ctrl-C asked of the run (mtl_lab.training.interrupts)
        self.lock = threading.Lock()  # held from begin_run() to end_run(): one run at a time
        self.run_thread: int | None = None  # the thread that began the run (begin_run … end_run), else None
        self.history = History(list(self.task_names), meta=describe_run(c, self.weighting, self.model, self.data,
                                                                          self.device, self.gramian))
        self.global_step = 0
        self.epoch = 0
        self.totals = EpochTotals(len(self.tasks), self.device)  # this epoch's loss sums, the epochs' means
        self.batches_per_epoch = self.source.steps_per_epoch
        self.first_losses: tuple[float, ...] | None = None
        self.clock = RunClock()
        self.rng_state: dict | None = None  # the run's global random state between its loops (training.resume)
        self.rng_installed = False  # True while a loop runs on it (own_random_state)
        if parallel is not None:
            self.set_parallel(parallel)

    def set_parallel(self, strategy: Parallel) -> None:
        """Train as ``strategy`` says: one rank of a data-parallel run (:mod:`mtl_lab.training.parallel`)."""
        if self.gramian is not None and not strategy.allows_gramian_engine:
            raise ValueError("data-parallel training does not support gradient_path='gramian' "
                             "(the Gramian of a sum is not the sum of Gramians); use 'jacobian' or 'auto'")
        strategy.synchronise(self)
        self.parallel = strategy

    # ------------------------------------------------------------------ one step

    def train_step(
        self, x: torch.Tensor | dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """One optimisation step on a batch (``masks``: labelled rows of tasks missing labels); returns the
        detached per-task losses. Multi-input data: ``x`` maps each task to its own batch's inputs."""
        if not self.model.training:  # train() walks every module: only when evaluation switched it off
            self.model.train()
        x, targets, masks = self.inputs.shard(self.parallel, x, targets, masks)  # this rank's rows (all in 1 process)
        due = self.diagnostics_due()
        diagnose = due and self.model.has_shared_trunk
        path = self.paths.diagnosed if diagnose else self.paths.step
        outputs, rep = path.forward(x)
        losses = self.compute_losses(outputs, targets, masks)
        detached = torch.stack([loss.detach() for loss in losses])
        self.stop_if_non_finite(self.guard.check_losses(detached, self.task_names, self.global_step), detached)
        labelled = label_masks.present(self.tasks, masks, self.device)
        seen = label_masks.stand_in(detached, labelled)  # the losses the method sees
        if self.first_losses is None:
            self.first_losses = tuple(seen.tolist())
        ctx = self.context()
        clear_grads(self.trainable)  # every path sets or accumulates .grad from None
        combination = path.backward(Step(losses, seen, rep, ctx, self.parallel, self.diagnostics if diagnose else None))
        regularizer = add_regularizers(self.model, self.trainable, self.config.l1)
        self.parallel.average_gradients(self.model.parameters())  # every rank takes the same step
        self.stop_if_non_finite(self.guard.check_gradients(self.trainable, self.global_step), detached)
        self.guard.gate(self.optimizer)
        self.optimizer.step()
        self.model.after_step(self.global_step)
        if self.weighting.needs_losses_after_step:
            with torch.no_grad():
                after = torch.stack(self.compute_losses(self.inputs.outputs(self.model, x), targets, masks))
            self.weighting.after_step(label_masks.stand_in(after, labelled), ctx)
        weights = label_masks.effective_weights(combination.weights.detach().to(self.device, torch.float32), labelled)
        if due:
            self.record_model()
        self.record_step(detached, weights, combination.info, regularizer, labelled)
        return detached

    def context(self) -> StepContext:
        return StepContext(step=self.global_step, epoch=self.epoch, epoch_losses=self.totals.means,
                           first_losses=self.first_losses, generator=self.method_generator,
                           lr=self.optimizer.param_groups[0]["lr"])

    def compute_losses(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], masks: dict | None = None
    ) -> list[torch.Tensor]:
        """Each task's scalar loss over its labelled rows (:mod:`mtl_lab.training.masks`), as a list (the
        gradient engine differentiates them one by one); the whole batch's values under data parallelism."""
        return self.parallel.losses(label_masks.losses(self.tasks, outputs, targets, masks), self.task_names)

    def whole_batch_losses(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], masks: dict | None = None
    ) -> list[torch.Tensor]:
        """The per-task losses (labelled rows only) of a batch every rank holds whole (extra batches, the
        validation look-ahead): never shared out among data-parallel ranks."""
        return label_masks.losses(self.tasks, outputs, targets, masks)

    def diagnostics_due(self) -> bool:
        every = self.config.diagnostics_every
        return every > 0 and self.global_step % every == 0

    def stop_if_non_finite(self, message: str | None, losses: torch.Tensor) -> None:
        """Host check found a bad step: record its losses (not its update) and stop before the optimiser."""
        if message is not None:
            raise self.records.bad_step(self.history, self.global_step, losses, message)

    # ------------------------------------------------------------------ records

    def record_step(
        self,
        losses: torch.Tensor,
        weights: torch.Tensor,
        info: dict,
        regularizer: torch.Tensor | None = None,
        labelled: torch.Tensor | None = None,
    ) -> None:
        self.totals.add(losses, labelled)
        due = self.records.add(self.global_step, losses, weights, regularizer)
        self.records.note_method(self.history, self.global_step, self.weighting.name, info)
        self.global_step += 1
        if due:
            self.flush()

    def record_diagnostics(self, record: dict) -> None:
        self.history.add_diagnostics({"step": self.global_step, **record})

    def record_model(self) -> None:
        """What the model's ``inspect()`` reports (gates, relation matrices …), into ``History.model_records``."""
        record = self.model.inspect()
        if record:
            self.history.add_model_record({"step": self.global_step, **plain(record)})

    def flush(self) -> None:
        """Move the buffered per-step records to the History (:meth:`Records.flush`)."""
        self.records.flush(self.history, self.global_step, self.epoch)

    def emit(self, kind: str, data: dict | None = None) -> None:
        self.records.emit(self.history, kind, self.global_step, self.epoch, data)

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, split: str = "val", batch_size: int = 1024) -> tuple[dict[str, float], dict[str, float]]:
        """Per-task mean loss and metric on ``split`` (``train``, ``val`` or ``test``), over labelled rows only."""
        if split not in SPLITS:
            raise ValueError(f"split {split!r} is not one of {SPLITS}")
        return self.inputs.evaluate(self.model, self.data, self.tasks, split, batch_size, self.config.batch_size)

    def end_epoch(self) -> None:
        """The epoch's record: evaluations first (they change nothing: a second Ctrl-C there leaves the run at
        a step boundary), then the state moves on to the next epoch in one marked block."""
        with self.interrupts.changing(self.global_step):
            self.flush()
        mean = self.totals.mean()  # over the batches with labels
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
        with self.interrupts.changing(self.global_step):
            self.totals.close(mean)
            record["time"] = round(self.clock.elapsed(), 3)
            self.history.add_epoch(record)
            if self.scheduler is not None:
                self.scheduler.step()
            self.epoch += 1
            self.source.end_epoch()
        note_non_finite_results(self.history, record, f"epoch {record['epoch']}", self.global_step)
        self.emit("epoch", record)

    # ------------------------------------------------------------------ loops

    def fit(self, max_steps: int | None = None) -> History:
        """Train until ``config.epochs`` are done, ``max_steps`` more steps were taken, or Stop.

        Returns the History. ``meta["status"]`` is ``completed``, ``paused`` (``max_steps`` reached),
        ``stopped`` (``stop()`` was called), ``interrupted`` (KeyboardInterrupt) or ``error`` (re-raised).
        One run, in three parts: :meth:`begin_run`, :meth:`advance`, :meth:`end_run` (a caller that takes
        turns with other runs, :mod:`mtl_lab.training.race`, calls them itself: one begin, an advance per
        turn, one end).
        """
        if max_steps is not None:
            validate.check_int("max_steps", max_steps, 1)  # before the run begins (advance checks it too)
        self.begin_run()
        try:
            status = self.advance(max_steps)
        except KeyboardInterrupt:
            status = "interrupted"
        except BaseException as exc:  # noqa: BLE001 — SystemExit too: the run must end with a status
            self.end_run("error", exc)
            raise
        return self.end_run(status)

    def begin_run(self) -> None:
        """Begin (or continue) a run: one at a time per trainer (the lock is held until :meth:`end_run`), no
        Stop or Ctrl-C request left from before, the History ``running``."""
        if not self.lock.acquire(blocking=False):
            raise RuntimeError("this trainer is already running; stop() it or wait for it first")
        self.run_thread = threading.get_ident()
        self.stop_event.clear()
        self.interrupts.clear()
        self.history.update_meta(status="running")

    def advance(self, max_steps: int | None = None) -> str:
        """Within a begun run, :meth:`train_until` ``max_steps`` more steps (or the end, or Stop, or Ctrl-C),
        then move the buffered records to the History; returns ``train_until``'s status.

        For the loop the run's own global random state is installed and kept after it
        (:mod:`mtl_lab.training.resume`: runs taking turns in one thread each draw their own numbers), the
        clock runs (:class:`~mtl_lab.training.ending.RunClock`) and Ctrl-C waits for a step boundary
        (:mod:`mtl_lab.training.interrupts`). Exceptions (``KeyboardInterrupt`` from a second Ctrl-C included)
        propagate: the caller ends the run with them.
        """
        if max_steps is not None:
            validate.check_int("max_steps", max_steps, 1)
        self.check_run_begun_here("advance() continues a run")
        with self.own_random_state(), self.clock.running(), deferred_sigint(self.interrupts):
            status = self.train_until(max_steps)
            with self.interrupts.changing(self.global_step):
                self.flush()
        return status

    def end_run(self, status: str, error: BaseException | None = None) -> History:
        """End the run :meth:`begin_run` began, with ``status`` (``error`` with the exception that ended it),
        whatever happened: the History and model kept, the test split evaluated, the ``end`` or ``error``
        event (:mod:`mtl_lab.training.ending`); the lock released. Returns the History.

        ``interrupted`` keeps the buffered steps and says whether a second Ctrl-C cut a step. A failing test
        evaluation ends the run as ``error`` and is raised.
        """
        self.check_run_begun_here("end_run() ends a run")
        try:
            end = RunEnd(self.history, self.records, self.clock, self.global_step, self.epoch)  # training.ending
            if error is not None:
                end.fail(error)
                return self.history
            if status == "interrupted":
                end.interrupted(self.interrupts.cut_step)
            try:
                status = end.finish(status, lambda: self.evaluate("test"))
            except Exception as exc:
                end.fail(exc)
                raise
            end.emit_end(status)
            return self.history
        finally:
            self.run_thread = None
            self.lock.release()

    def check_run_begun_here(self, what: str) -> None:
        """:meth:`advance` and :meth:`end_run` act on a run that this thread began (a run begun by a background
        ``start()`` or a race belongs to its own thread): else a ``RuntimeError`` saying which."""
        if self.run_thread is None:
            raise RuntimeError(f"{what}: call begin_run() first")
        if self.run_thread != threading.get_ident():
            raise RuntimeError(f"{what} begun in this thread, but this trainer's run was begun in another one (a "
                               "background run or a race); stop() it or wait for it first")

    @contextmanager
    def own_random_state(self) -> Iterator[None]:
        """Within the block, the global generator(s) hold this run's state (seeded with ``config.seed`` at the
        run's first step); after it, the state is kept in :attr:`rng_state` (:mod:`mtl_lab.training.resume`)."""
        if self.rng_state is None:
            if self.global_step == 0:
                torch.manual_seed(self.config.seed)
        else:
            set_global_rng_state(self.rng_state, self.device)
        self.rng_installed = True
        try:
            yield
        finally:
            self.rng_state = global_rng_state(self.device)
            self.rng_installed = False

    def train_until(self, max_steps: int | None) -> str:
        """The loop over batches; returns ``completed``, ``paused``, ``stopped`` or ``interrupted``."""
        taken = 0
        while self.epoch < self.config.epochs:
            with self.interrupts.changing(self.global_step):  # a second Ctrl-C in here cuts this step
                batch = self.source.next()  # None: the epoch has no batch left (training.inputs)
                if batch is not None:
                    x, y, masks = batch
                    self.train_step_guarded(x, y, masks)
                    taken += 1
            if batch is None or self.totals.batches == self.batches_per_epoch:
                self.end_epoch()
            if self.epoch < self.config.epochs:
                if self.interrupts.requested.is_set():
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
            if self.guard.tripped() is None:
                raise
            self.records.flush_first_bad(self.history, self.global_step, self.epoch)

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

    # ------------------------------------------------------------------ state and checkpoints

    def identity(self) -> dict:
        """What a checkpoint of this trainer must agree on with the trainer that loads it."""
        c = self.config
        return checkpoint.identity(self.model.architecture, self.task_names, c.optimizer, c.schedule,
                                   self.weighting.name, c.batch_size)

    def settings(self) -> dict:
        """What else changes the run, compared one by one when a checkpoint is loaded (see ``checkpoint``)."""
        return {**{n: getattr(self.config, n) for n in RUN_SETTINGS}, "method_options": self.weighting.config(),
                "model": str(self.model), "data": self.data.summary()}

    def position(self) -> RunPosition:
        """Every random state and the position within the epoch (see :mod:`mtl_lab.training.resume`)."""
        rng = global_rng_state(self.device) if self.rng_installed else self.rng_state  # from a callback: live
        source = self.source.position()  # the order's generator(s): training.inputs
        return RunPosition(rng, source["batch_rng"], self.method_generator.get_state(), source["epoch_start_rng"],
                           self.totals.batches, source["streams"])

    def state_dict(self) -> dict:
        """Everything needed to continue bitwise, as a dict of state dicts (buffered steps flushed first;
        tensors shared with the live objects)."""
        self.flush()
        return {
            "identity": self.identity(),
            "settings": self.settings(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "weighting": self.weighting.state_dict(),
            "history": self.history.to_dict(),
            "counters": {"global_step": self.global_step, "epoch": self.epoch, "epoch_batches": self.totals.batches},
            "epoch_loss_sum": self.totals.loss_sum.detach().cpu().clone(),
            "epoch_labelled": self.totals.labelled.detach().cpu().clone(),
            "extra_batches": self.extra_batches.state_dict() if self.extra_batches is not None else None,
            "lookahead_batches": self.lookahead.batches.state_dict() if self.lookahead is not None else None,
            "epoch_losses": [list(e) for e in self.totals.means],
            "first_losses": list(self.first_losses) if self.first_losses is not None else None,
            "position": self.position().to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Put a :meth:`state_dict` into this trainer's live objects (``load()`` checks it first)."""
        impl = [(g.get("foreach"), g.get("fused")) for g in self.optimizer.param_groups]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group, (foreach, fused) in zip(self.optimizer.param_groups, impl):  # keep this trainer's implementation
            group["foreach"], group["fused"] = foreach, fused
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.weighting.load_state_dict(state["weighting"])
        self.history = History.from_dict(state["history"])
        counters = state["counters"]
        self.global_step, self.epoch = counters["global_step"], counters["epoch"]
        self.totals.batches = counters["epoch_batches"]
        self.totals.loss_sum = state["epoch_loss_sum"].to(self.device).clone()
        self.totals.labelled = state["epoch_labelled"].to(self.device).clone()
        if self.extra_batches is not None:
            self.extra_batches.load_state_dict(state["extra_batches"])
        if self.lookahead is not None:
            self.lookahead.batches.load_state_dict(state["lookahead_batches"])
        self.totals.means = tuple(tuple(e) for e in state["epoch_losses"])
        self.first_losses = tuple(state["first_losses"]) if state["first_losses"] is not None else None
        position = RunPosition.from_dict(state["position"]).on_cpu()
        self.rng_state = position.global_rng
        self.method_generator.set_state(position.method_rng)
        self.source.resume(position)
        self.records.buffer = []

    def save(self, path: str | Path) -> Path:
        """:meth:`state_dict` in one file, written atomically (:mod:`mtl_lab.training.checkpoint`).

        May be called between ``fit()`` calls or from a callback during a run.
        """
        return checkpoint.write(path, self.state_dict())

    def load(self, path: str | Path, continue_with: list[str] | tuple[str, ...] = ()) -> None:
        """Restore what :meth:`save` wrote, once checked to be a checkpoint of this very run (see ``checkpoint``):
        another identity or other settings are refused, each difference named, but for a continuation asked for
        by name — ``continue_with=["epochs"]`` (on to this trainer's epochs) or ``["lr"]`` (this trainer's lr),
        recorded in the History. ``fit()`` then continues at the very step where the checkpoint was taken."""
        if self.lock.locked():
            raise RuntimeError("this trainer is running; stop() it before loading a checkpoint")
        allowed = checkpoint.check_continue_with(continue_with)
        state = checkpoint.read(path, self.device)
        checkpoint.check_compatible(state, self.identity(), self.model.state_dict(), path)
        changes = checkpoint.check_settings(state.get("settings"), self.settings(), path, allowed,
                                            self.config.schedule)
        backup = copy.deepcopy(self.state_dict())
        try:
            self.load_state_dict(state)
        except Exception as exc:
            self.load_state_dict(backup)
            message = f"checkpoint {str(path)!r} could not be loaded ({exc}); the trainer is unchanged"
            raise ValueError(message) from None
        old_file = state.get("settings") is None
        record_continuation(self.history, self.optimizer, changes, self.global_step, old_file)
