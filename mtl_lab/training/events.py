"""A run seen from outside: :class:`Event` and :class:`EventStream` (what live views read) and :class:`RunHandle`
(a background run: ``stop()``, ``join()``, a thread-safe ``history``)."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from mtl_lab.history import History

if TYPE_CHECKING:
    from mtl_lab.training.trainer import Trainer


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
