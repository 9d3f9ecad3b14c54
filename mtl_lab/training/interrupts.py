"""Ctrl-C during ``fit()`` ends the run between two steps, never inside one.

A ``KeyboardInterrupt`` raised in the middle of a step (after the optimiser moved the parameters, before
the step was recorded, say) would leave a run that cannot continue exactly. While a run trains in the
main thread, :func:`deferred_sigint` replaces Python's SIGINT handler: the first Ctrl-C (or Jupyter's
"interrupt the kernel") only sets ``flag``, and the training loop ends with status ``interrupted`` after the
current step; a second Ctrl-C raises ``KeyboardInterrupt`` at once, as usual, for a loop that does not
come back. The previous handler is put back when the run ends. In other threads (``Trainer.start()``),
or when someone else installed their own handler, nothing is changed.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def deferred_sigint(flag: threading.Event) -> Iterator[None]:
    """Within the block, a first SIGINT sets ``flag``; a second one raises ``KeyboardInterrupt``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield
        return

    def handler(signum, frame) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
