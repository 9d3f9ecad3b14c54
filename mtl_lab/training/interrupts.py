"""Ctrl-C during ``fit()`` ends the run between two steps; a second Ctrl-C inside a step says so.

A ``KeyboardInterrupt`` raised in the middle of a step (after the optimiser moved the parameters, before
the step was recorded, say) would leave a run that cannot continue exactly. While a run trains in the
main thread, :func:`deferred_sigint` replaces Python's SIGINT handler with one that reads an
:class:`Interrupts`: the first Ctrl-C (or Jupyter's "interrupt the kernel") only sets ``requested``, and the
training loop ends with status ``interrupted`` after the current step. A second Ctrl-C raises
``KeyboardInterrupt`` at once, as usual, for a loop that does not come back. Where it lands decides what is
left: between steps (or while the model is evaluated, which changes nothing) the run still continues
exactly; inside a block marked by :meth:`Interrupts.changing` (a step from drawing its batch to its record,
an epoch's end, moving records to the History) the state is part-way through step ``cut_step``, and the
trainer marks its History "not exactly resumable" (see ``Trainer.end_run``). The previous handler is put
back when the run's loop ends (each ``Trainer.advance``: a race installs it for each racer's turn). In other
threads (``Trainer.start()``), or when someone else installed their own handler, nothing is changed.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Interrupts:
    """What Ctrl-C asked of a run: ``requested`` (end after this step) and ``cut_step`` (a second Ctrl-C
    stopped that step part-way: the state is no longer at a step boundary)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.changing_step: int | None = None  # the step whose state is being changed, if any
        self.cut_step: int | None = None

    def clear(self) -> None:
        """A new ``fit()`` (``Trainer.begin_run``): no request yet (a ``cut_step`` stays in the History, not here)."""
        self.requested.clear()
        self.cut_step = None

    @contextmanager
    def changing(self, step: int) -> Iterator[None]:
        """Within the block, the run's state is on its way from one step boundary to the next."""
        outer = self.changing_step
        self.changing_step = step if outer is None else outer
        try:
            yield
        finally:
            self.changing_step = outer

    def on_sigint(self, signum: int, frame: object) -> None:
        """The SIGINT handler: a first call sets ``requested``; a second raises ``KeyboardInterrupt``, after
        noting the step it cuts, if any."""
        if not self.requested.is_set():
            self.requested.set()
            return
        if self.changing_step is not None:
            self.cut_step = self.changing_step
        raise KeyboardInterrupt


@contextmanager
def deferred_sigint(interrupts: Interrupts) -> Iterator[None]:
    """Within the block, SIGINT goes to :meth:`Interrupts.on_sigint` (main thread, default handler only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, interrupts.on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
