"""How a run ends, whatever happened (``Trainer.end_run``, which ``fit()`` calls once): the History gets a status
(``completed``, ``paused``, ``stopped``, ``interrupted`` or ``error``), the buffered records and the test results,
and the views the ``end`` or ``error`` event (:class:`RunEnd`); the training time is kept by a :class:`RunClock`,
which runs only while the run's loop does (``Trainer.advance``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mtl_lab.history import History
from mtl_lab.training.evaluation import note_non_finite_results
from mtl_lab.training.records import Records


class RunClock:
    """Seconds spent in training loops, over every loop (``advance()``, which ``fit()`` calls) of a run: the run's
    own time.

    It runs only while a loop runs (:meth:`running`): what happens between loops and after one (the test
    evaluation, the views' work at the ``end`` event, single-task baselines trained next, the other racers'
    turns in a race) is not the run's time, so a rate read from this clock is the run's own speed
    (:meth:`steps_per_second`).
    """

    def __init__(self) -> None:
        self.seconds = 0.0  # the loops that ended
        self.started: float | None = None  # when the running loop started; None between loops

    def start(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds so far, the running loop included (between loops: the loops that ended)."""
        if self.started is None:
            return self.seconds
        return self.seconds + time.perf_counter() - self.started

    def stop(self) -> None:
        self.seconds = self.elapsed()
        self.started = None

    def steps_per_second(self, step: int, origin: tuple[float, int] = (0.0, 0)) -> float:
        """``(step − s₀) / (elapsed − t₀)`` since ``origin = (t₀, s₀)`` (seconds on this clock and the step then,
        e.g. when a paused run went on); 0.0 before any time passed."""
        seconds, first = origin
        elapsed = self.elapsed() - seconds
        return (step - first) / elapsed if elapsed > 0 else 0.0

    @contextmanager
    def running(self) -> Iterator[None]:
        """Counts the seconds spent in the block."""
        self.start()
        try:
            yield
        finally:
            self.stop()


@dataclass
class RunEnd:
    """The end of a run at ``step`` and ``epoch``: what it writes into ``history`` and tells the views (the
    clock stopped with the run's last loop)."""

    history: History
    records: Records
    clock: RunClock
    step: int
    epoch: int

    def interrupted(self, cut_step: int | None) -> None:
        """Keep the buffered steps and say what the interrupt left: a step cut part-way by a second Ctrl-C
        (``cut_step``) marks the History ``meta["exact_resume"] = False`` with ``meta["cut_step"]`` and a note."""
        try:
            self.records.flush(self.history, self.step, self.epoch)
        except KeyboardInterrupt:  # a second interrupt from a view cannot lose them
            pass
        if cut_step is None:
            message = ("training interrupted: the History and the model keep what was done so far; "
                       "fit() continues exactly where it stopped")
        else:
            message = (f"training interrupted by a second Ctrl-C part-way through step {cut_step} (its update or "
                       "records may be half done): the run is NOT exactly resumable; fit() continues, but not "
                       "bitwise like an uninterrupted run")
            self.history.update_meta(exact_resume=False, cut_step=cut_step)
            self.history.add_note({"step": cut_step, "warning": message})
            with self.history.lock:
                self.history.meta.setdefault("warnings", []).append(message)
        warnings.warn(message, stacklevel=4)  # at the caller of fit()

    def finish(self, status: str, evaluate_test: Callable[[], tuple[dict, dict]]) -> str:
        """The test results and the status; an interrupt during the test evaluation leaves the run intact
        (``interrupted``, with a note). Returns the status."""
        try:
            test_loss, test_metric = evaluate_test()
        except KeyboardInterrupt:
            self.history.update_meta(status="interrupted", steps=self.step, epochs_done=self.epoch)
            self.history.add_note({"step": self.step, "note": "interrupted during the test evaluation"})
            return "interrupted"
        self.history.update_meta(status=status, steps=self.step, epochs_done=self.epoch,
                                 train_seconds=round(self.clock.seconds, 3), test_loss=test_loss,
                                 test_metrics=test_metric)
        note_non_finite_results(self.history, {"test_loss": test_loss, "test_metrics": test_metric}, "test split",
                                self.step)
        return status

    def fail(self, exc: BaseException) -> None:
        """Record an error: keep what was buffered, mark the History, tell the views."""
        try:
            self.records.flush(self.history, self.step, self.epoch)
        except BaseException:  # noqa: BLE001 — the records are in the History already; the error is the news
            self.records.buffer = []
        message = f"{type(exc).__name__}: {exc}"
        self.history.add_note({"step": self.step, "error": message})
        self.history.update_meta(status="error", error=message, steps=self.step, epochs_done=self.epoch)
        try:
            self.records.emit(self.history, "error", self.step, self.epoch, {"error": message})
        except BaseException as again:  # noqa: BLE001
            self.history.add_note({"step": self.step, "callback_error": repr(again)})

    def emit_end(self, status: str) -> None:
        """The ``end`` event; the run has ended already, so a callback's interrupt only leaves a note."""
        try:
            self.records.emit(self.history, "end", self.step, self.epoch, {"status": status})
        except BaseException as exc:  # noqa: BLE001
            self.history.add_note({"step": self.step, "callback_error": repr(exc)})
            if not isinstance(exc, KeyboardInterrupt):
                raise
