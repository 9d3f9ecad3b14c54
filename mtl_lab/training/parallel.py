"""Data-parallel training with torch.distributed, exact for every weighting method.

Plain data parallelism (PyTorch's DDP) all-reduces the gradient of one scalar loss. A multi-task method
needs more: the per-task losses (loss weighting), the per-task gradients ``G[T, P]`` (gradient methods)
or the representation's gradients ``Z`` (MGDA-UB) **of the whole batch**, so that every rank combines
the same inputs into the same weights and direction. The Trainer calls its
parallel strategy at five points of every step — :class:`SingleProcess` (every method the identity) unless
:class:`DataParallel` was given to it (``trainer.set_parallel(strategy)``, or :meth:`DataParallel.attach`),
which does exactly that:

* **batches** — every rank draws the same batch (same seed, generator state broadcast from rank 0) and
  keeps its own contiguous slice of ``n_r`` of its ``B`` rows (:meth:`DataParallel.shard`);
* **losses** — a task's batch loss is a mean over rows, so ``L_t = Σ_r (n_r/B) L_{t,r}``: one
  all-reduce of ``T`` numbers gives every rank the whole batch's losses. Each loss keeps, for autograd,
  this rank's share ``N (n_r/B) L_{t,r}``, whose gradients averaged over the ``N`` ranks are the
  whole batch's (:class:`WholeBatchLoss`);
* **gradients** — ``G`` (and ``K = GGᵀ``, computed from it) is averaged over the ranks before the method
  sees it (one all-reduce of ``T·P`` numbers); ``Z`` is gathered row-block by row-block, in batch order;
* **the step** — before the optimiser steps, every parameter's gradient is averaged over the ranks (one
  all-reduce of ``P_all`` numbers), so all ranks take the same step from the same parameters;
* **randomness** — methods draw from the trainer's method generator, seeded alike and broadcast from
  rank 0, and they draw the same numbers because they see the same inputs.

So ``N`` processes on ``B/N`` rows each compute what one process computes on ``B`` rows, up to the order of
floating-point sums (tested for every registered method in ``tests/test_distributed.py``). Not covered:
dropout (each rank draws masks for its own rows) and the opt-in Gramian path (``gradient_path="gramian"``,
refused: the Gramian of a sum is not the sum of the ranks' Gramians).

Launch with ``torchrun --nproc_per_node N -m mtl_lab.cli run …`` or ``mtl-lab run --nproc N …``
(:func:`launch`); :func:`from_environment` sets up the process group from torchrun's variables.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from typing import TypeAlias

import torch
import torch.distributed as dist


class SingleProcess:
    """The strategy of a run in one process: every step sees the whole batch, so every method is the identity."""

    rank = 0
    world = 1
    allows_gramian_engine = True  # gradient_path="gramian" (the Gramian of a sum is not the sum of Gramians)

    def synchronise(self, trainer) -> None:
        """Nothing to agree on with other processes."""

    def shard(self, x: torch.Tensor, targets: dict[str, torch.Tensor], masks: dict[str, torch.Tensor] | None = None):
        return x, targets, masks

    def shard_tasks(self, x: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                    masks: dict[str, torch.Tensor] | None = None):
        return x, targets, masks

    def losses(self, losses: list[torch.Tensor], task_names: list[str] | None = None) -> list[torch.Tensor]:
        return losses

    def gradients(self, G: torch.Tensor) -> torch.Tensor:
        return G

    def representation_gradients(self, Z: torch.Tensor) -> torch.Tensor:
        return Z

    def average_gradients(self, parameters: Iterable[torch.Tensor]) -> None:
        """One process: its gradients are the whole batch's already."""


class WholeBatchLoss(torch.autograd.Function):
    """Forward: the whole batch's loss (the same bits on every rank). Backward: into this rank's share."""

    @staticmethod
    def forward(ctx, share: torch.Tensor, whole: torch.Tensor) -> torch.Tensor:
        return whole.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


class DataParallel:
    """One rank's part of a data-parallel run: the strategy a trainer takes with ``trainer.set_parallel``.

    Needs an initialised default process group (``torch.distributed.init_process_group``).
    """

    allows_gramian_engine = False  # see SingleProcess

    def __init__(self) -> None:
        if not dist.is_available() or not dist.is_initialized():
            raise ValueError("DataParallel needs torch.distributed initialised (init_process_group) first")
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.rows = (0, 0)  # this rank's rows [start, stop) of the current batch
        self.batch_rows = 0
        self.fractions: dict[str, float] = {}  # each task's share of the batch's labelled rows on this rank
        self.bytes = 0  # payload sent into collectives by this rank so far

    # ------------------------------------------------------------------ set-up

    def attach(self, trainer) -> None:
        """Make ``trainer`` one rank of this run (``trainer.set_parallel(self)``); its History's meta records
        ``world_size`` (and, with dropout, :func:`dropout_note`)."""
        trainer.set_parallel(self)
        trainer.history.update_meta(world_size=self.world)
        note = dropout_note(dropout_rate(trainer.model), self.world)
        if note is not None:
            trainer.history.update_meta(data_parallel_note=note)

    def synchronise(self, trainer) -> None:
        """Give ``trainer`` rank 0's parameters, buffers and generator states (when it takes this strategy)."""
        with torch.no_grad():
            for tensor in [*trainer.model.parameters(), *trainer.model.buffers()]:
                dist.broadcast(tensor.data, src=0)
        for generator in (*trainer.source.generators(), trainer.method_generator):
            state = generator.get_state().to(trainer.device)  # NCCL moves device tensors only
            dist.broadcast(state, src=0)
            generator.set_state(state.cpu())

    def device(self, name: str) -> str:
        """The device this rank trains on: ``cuda:LOCAL_RANK`` when ``name`` asks for CUDA, else ``name``."""
        if name in ("auto", "cuda") and uses_cuda(name):
            return f"cuda:{int(os.environ.get('LOCAL_RANK', self.rank)) % torch.cuda.device_count()}"
        return name

    # ------------------------------------------------------------------ the strategy's methods (see SingleProcess)

    def shard(self, x: torch.Tensor, targets: dict[str, torch.Tensor], masks: dict[str, torch.Tensor] | None = None):
        """This rank's contiguous rows of the batch (the first ``B mod N`` ranks take one row more), and each
        task's share of the batch's labelled rows (:mod:`mtl_lab.training.masks`: a task's loss is a mean over
        those)."""
        B = int(x.shape[0])
        if B < self.world:
            raise ValueError(f"a batch of {B} rows cannot be split among {self.world} ranks: choose batch_size "
                             f"and a training-split size whose last batch has ≥ {self.world} rows")
        base, extra = divmod(B, self.world)
        start = self.rank * base + min(self.rank, extra)
        stop = start + base + (1 if self.rank < extra else 0)
        self.rows, self.batch_rows = (start, stop), B
        masks = masks or {}
        self.fractions = {}
        for name, mask in masks.items():
            total = int(mask.sum())
            self.fractions[name] = int(mask[start:stop].sum()) / total if total else 0.0
        shards = {name: mask[start:stop] for name, mask in masks.items()}
        return x[start:stop], {name: y[start:stop] for name, y in targets.items()}, shards

    def shard_tasks(self, x: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                    masks: dict[str, torch.Tensor] | None = None):
        """Multi-input mode (:mod:`mtl_lab.training.inputs`): each task's own batch shared out as :meth:`shard`
        does, and each task's share its fraction of its own batch's (labelled) rows."""
        masks = masks or {}
        xs, ys, shards, fractions = {}, {}, {}, {}
        for task, rows in x.items():
            xs[task], y, mask = self.shard(rows, {task: targets[task]}, {task: masks[task]} if task in masks else {})
            ys.update(y)
            shards.update(mask)
            fractions[task] = self.fractions.get(task, (self.rows[1] - self.rows[0]) / self.batch_rows)
        self.fractions = fractions
        return xs, ys, shards

    def losses(self, losses: list[torch.Tensor], task_names: list[str] | None = None) -> list[torch.Tensor]:
        """The whole batch's per-task losses; their gradients are this rank's share (see the module text).

        A task's share is this rank's fraction of the batch's rows — of its labelled rows when some rows
        miss the task's label — so the sum over ranks is the whole batch's mean exactly."""
        rows = (self.rows[1] - self.rows[0]) / self.batch_rows
        names = task_names or [None] * len(losses)
        fractions = [self.fractions.get(name, rows) for name in names]
        shares = [loss * (self.world * f) for loss, f in zip(losses, fractions)]
        whole = torch.stack([loss.detach() * f for loss, f in zip(losses, fractions)])
        self.all_reduce(whole)
        return [WholeBatchLoss.apply(share, value) for share, value in zip(shares, whole)]

    def gradients(self, G: torch.Tensor) -> torch.Tensor:
        """The whole batch's per-task gradients: the mean over the ranks of each rank's share."""
        G = G.contiguous().clone()
        self.all_reduce(G)
        return G / self.world

    def representation_gradients(self, Z: torch.Tensor) -> torch.Tensor:
        """The whole batch's ``Z[T, B·D]``: every rank's row block, in batch order, over ``N``."""
        T, width = Z.shape
        per_row = width // max(self.rows[1] - self.rows[0], 1)
        base, extra = divmod(self.batch_rows, self.world)
        sizes = [(base + (1 if r < extra else 0)) * per_row for r in range(self.world)]
        padded = torch.zeros(T, max(sizes), dtype=Z.dtype, device=Z.device)
        padded[:, :width] = Z
        blocks = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(blocks, padded)
        self.bytes += padded.numel() * padded.element_size()
        return torch.cat([b[:, :n] for b, n in zip(blocks, sizes)], dim=1) / self.world

    def average_gradients(self, parameters: Iterable[torch.Tensor]) -> None:
        """Average every parameter's ``.grad`` over the ranks, in one all-reduce."""
        params = [p for p in parameters if p.grad is not None]
        if not params:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        self.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad = flat[offset : offset + n].view_as(p.grad).clone()
            offset += n

    def all_reduce(self, tensor: torch.Tensor) -> None:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        self.bytes += tensor.numel() * tensor.element_size()


Parallel: TypeAlias = "SingleProcess | DataParallel"


# ---------------------------------------------------------------------------------------------- launching


def uses_cuda(device: str) -> bool:
    return torch.cuda.is_available() and (device == "auto" or device.startswith("cuda"))


def from_environment(device: str = "auto") -> DataParallel | None:
    """A :class:`DataParallel` when this process was started by torchrun with ``WORLD_SIZE > 1``, else ``None``.

    Initialises the default process group: ``nccl`` when the run trains on CUDA (each rank on
    ``cuda:LOCAL_RANK``), ``gloo`` otherwise.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    if not dist.is_initialized():
        if uses_cuda(device):
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
        dist.init_process_group("nccl" if uses_cuda(device) else "gloo")
    return DataParallel()


def finish() -> None:
    """Leave the process group (after the last data-parallel training)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def without_nproc(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def check_nproc(nproc) -> int:
    """``--nproc``: an int ≥ 1 (not a bool)."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"--nproc must be an int ≥ 1, got {nproc!r}")
    return nproc


def check_ranks(nproc: int, rows: int, batch_size: int) -> None:
    """Every rank needs ≥ 1 row of every batch: ``nproc`` at most the rows of the smallest batch (the last
    one of an epoch holds ``rows mod batch_size`` rows when that is not 0)."""
    smallest = min(batch_size, rows)
    if rows % batch_size:
        smallest = min(smallest, rows % batch_size)
    if nproc > smallest:
        last = f"; the last batch of an epoch ({rows} training rows, batch_size {batch_size}) has {smallest}" \
            if smallest < min(batch_size, rows) else ""
        raise ValueError(f"--nproc {nproc} ranks cannot share a batch of {smallest} rows{last}: each rank needs "
                         f"≥ 1 row; use --nproc ≤ {smallest} or another --batch-size")


def dropout_rate(model: torch.nn.Module) -> float:
    """The largest dropout probability among ``model``'s dropout layers (0 without any)."""
    rates = [float(m.p) for m in model.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)]
    return max(rates, default=0.0)


def dropout_note(dropout, world: int) -> str | None:
    """The one caveat of data parallelism here: with dropout > 0 on ``world`` > 1 ranks, each rank draws
    masks for its own rows, so the run is not the one-process run (``None`` when it does not apply)."""
    if world <= 1 or not dropout:
        return None
    return (f"dropout {dropout:g} with {world} data-parallel ranks: each rank draws the dropout masks of its own "
            "rows, so the run is not exactly the one-process run (every other part of a step is; see "
            "mtl_lab.training.parallel)")


def launch(nproc: int, argv: list[str]) -> int:
    """``mtl-lab run --nproc N …``: run the same command under ``torchrun --standalone --nproc_per_node N``.

    The command line calls it only after checking every value once, in the parent
    (``mtl_lab.cli.launch_checked``), so a bad value is one line, not one per rank and a launcher traceback.
    """
    check_nproc(nproc)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "mtl_lab.cli", *without_nproc(argv)]
    return subprocess.call(command)
