"""A run's records: this epoch's loss sums (:class:`EpochTotals`) and the per-step rows, kept on the device and
moved to the History every ``every`` steps in one device sync, each move an :class:`Event` for the live views
(:class:`Records`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from mtl_lab.history import History
from mtl_lab.training.events import Event, EventStream, plain
from mtl_lab.training.guards import NonFiniteGuard, NonFiniteLossError

Row = tuple[int, torch.Tensor, torch.Tensor, torch.Tensor | None]  # step, losses, weights, regulariser


class EpochTotals:
    """This epoch's per-task loss sums over the batches that had labels, and the mean losses of the epochs done
    (``StepContext.epoch_losses``, which DWA reads)."""

    def __init__(self, n_tasks: int, device: torch.device) -> None:
        self.loss_sum = torch.zeros(n_tasks, device=device)
        self.labelled = torch.zeros(n_tasks, device=device)  # batches with labels, per task
        self.batches = 0
        self.means: tuple[tuple[float, ...], ...] = ()

    def add(self, losses: torch.Tensor, labelled: torch.Tensor | None) -> None:
        self.loss_sum += losses
        self.labelled += 1.0 if labelled is None else labelled
        self.batches += 1

    def mean(self) -> list[float]:
        """This epoch's mean loss of each task, over the batches that had its labels (one device sync)."""
        return (self.loss_sum / self.labelled.clamp(min=1)).tolist()

    def close(self, mean: list[float]) -> None:
        """The epoch is done: keep its means, start the next one at zero."""
        self.means = self.means + (tuple(mean),)
        self.loss_sum.zero_()
        self.labelled.zero_()
        self.batches = 0


class Records:
    """Per-step rows on the device → the History every ``every`` steps; every move and epoch an :class:`Event`.

    Args:
        every: how many steps are buffered before a move (the Lab changes it during a run).
        callback: called with every :class:`Event` from the training thread (its exceptions are noted, not raised).
        guard: the non-finite guard whose device-side flag is read at each move, where the device syncs anyway.
        task_names: the tasks, in order.
    """

    def __init__(self, every: int, callback: Callable[[Event], None] | None, guard: NonFiniteGuard,
                 task_names: list[str]) -> None:
        self.every = every
        self.callback = callback
        self.guard = guard
        self.task_names = task_names
        self.buffer: list[Row] = []
        self.events = EventStream()

    def add(self, step: int, losses: torch.Tensor, weights: torch.Tensor, regularizer: torch.Tensor | None) -> bool:
        """Buffer one step's row; returns whether a move is due."""
        self.buffer.append((step, losses, weights, regularizer))
        return len(self.buffer) >= self.every

    def bad_step(self, history: History, step: int, losses: torch.Tensor, message: str) -> NonFiniteLossError:
        """A host check found a bad step: its losses are recorded (not its update); returns the error to raise."""
        self.buffer.append((step, losses, torch.full_like(losses, float("nan")), None))
        history.add_note({"step": step, "non_finite": message})
        return NonFiniteLossError(message)

    def flush(self, history: History, step: int, epoch: int) -> None:
        """Move the buffered rows to the History (one device sync); stop on a non-finite loss."""
        if not self.buffer:
            return
        steps = [s for s, _, _, _ in self.buffer]
        losses = torch.stack([l for _, l, _, _ in self.buffer]).tolist()
        weights = torch.stack([w for _, _, w, _ in self.buffer]).tolist()
        regs = [r for _, _, _, r in self.buffer]
        regularizer = None
        if any(r is not None for r in regs):
            nan = torch.tensor(float("nan"), device=self.buffer[0][1].device)
            regularizer = torch.stack([nan if r is None else r.float() for r in regs]).tolist()
        self.buffer = []
        history.add_steps(steps, losses, weights, regularizer)
        first_bad = self.guard.tripped()  # device-side check: read here, where the records sync anyway
        if first_bad is not None:
            self.raise_deferred_non_finite(history, first_bad)
        self.emit(history, "step", step, epoch, {"loss": losses[-1], "weights": weights[-1]})

    def flush_first_bad(self, history: History, step: int, epoch: int) -> None:
        """A step failed after the device-side flag was set: the steps before it, then the bad step itself
        (its losses, no weights), then the flag's news as :class:`NonFiniteLossError`."""
        first_bad = self.guard.tripped()
        try:
            self.flush(history, step, epoch)  # raises the same news, which is raised below
        except NonFiniteLossError:
            pass
        if first_bad not in history.steps:
            losses = self.guard.first_bad_losses
            row = losses.tolist() if losses is not None else [math.nan] * len(self.task_names)
            history.add_steps([first_bad], [row], [[math.nan] * len(self.task_names)])
        self.raise_deferred_non_finite(history, first_bad)

    def raise_deferred_non_finite(self, history: History, step: int) -> None:
        """The device-side flag was set at ``step``: no update was applied from that step on; say so."""
        message = self.guard.deferred_message(self.task_names)
        history.add_note({"step": step, "non_finite": message})
        raise NonFiniteLossError(message)

    def emit(self, history: History, kind: str, step: int, epoch: int, data: dict | None = None) -> None:
        """Put an :class:`Event` in the stream and give it to the callback (a broken view cannot kill the run)."""
        event = Event(kind, step, epoch, data or {})
        self.events.put(event)
        if self.callback is not None:
            try:
                self.callback(event)
            except Exception as exc:
                history.add_note({"step": step, "callback_error": repr(exc)})

    def note_method(self, history: History, step: int, method: str, info: dict) -> None:
        """A method's info becomes a note when it did not converge or warns."""
        if info and (info.get("converged", True) is False or "warning" in info):
            history.add_note({"step": step, "method": method, **plain(info)})
