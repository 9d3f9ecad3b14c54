"""A race: two to four methods trained in lock-step from the same initial weights and the same batch order.

A comparison of methods teaches only when nothing but the method differs. :func:`race_trainers` builds one
:class:`~mtl_lab.training.Trainer` per method from one recipe — the same data, architecture, options and
seed, so the model is initialised from the same seed and the batch order is drawn from a generator seeded
by it — and :class:`LockStep` advances them in turn, one step each, in one thread. Each racer's run is
begun once and ended once, like one ``fit()`` (:meth:`Trainer.begin_run` / :meth:`Trainer.end_run`); a turn
continues it by one step through the trainer's own loop::

    begin:    trainer_r.begin_run()                         for each racer r
    round k:  for each racer r, in order:  trainer_r.advance(1)    → every racer is at step k
    end:      trainer_r.end_run(status)                     when r completes, stops or fails

Each ``advance`` installs its own trainer's global random state and keeps it after the step
(:mod:`mtl_lab.training.resume`), so a racer's run is bitwise the run it would make alone; the test split is
evaluated once, at each racer's end.

**Stop** (``halt``) is read at the start of a round: in that round each racer takes its step and ends as
``stopped`` (its test split evaluated), so all racers stop at the same step. A racer whose step fails (a
non-finite loss) ends with status ``error``, its error kept in :attr:`LockStep.errors`; the others go on.
**Ctrl-C** ends the race as Stop does, but ``interrupted``: the racer whose turn it is ends after its step (as
it would end ``fit()``), the others take their step of that round, and then every open run ends
``interrupted`` at the same step (one press, whatever the number of racers); ``run()`` returns, and each run
continues exactly with ``fit()`` or another race. An exception between turns ends every open run
(``interrupted`` for Ctrl-C, else ``error``) and is raised.
``run(max_rounds=…)`` ends the open runs ``paused``, like ``fit(max_steps=…)``; ``run()`` again continues.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from mtl_lab import validate
from mtl_lab.training.events import Event
from mtl_lab.training.trainer import Trainer
from mtl_lab.weighting import METHODS

RACERS = (2, 4)  # the fewest and the most methods in one race (four stay readable in one chart)
ENDED = ("completed", "stopped", "interrupted", "error")


def check_methods(methods) -> list[str]:
    """2 … 4 different registered method names (``ValueError`` naming what is wrong)."""
    return validate.check_race(methods, list(METHODS), *RACERS)


def race_trainers(methods, build: Callable[[str], Trainer]) -> dict[str, Trainer]:
    """One trainer per method, each built by ``build(method)`` from the same recipe; the racers must agree
    on everything a lock-step comparison needs (tasks, steps per epoch, epochs, seed)."""
    trainers = {m: build(m) for m in check_methods(methods)}
    first = next(iter(trainers.values()))
    for method, trainer in trainers.items():
        for what, mine, theirs in (("tasks", trainer.task_names, first.task_names),
                                   ("batches per epoch", trainer.batches_per_epoch, first.batches_per_epoch),
                                   ("epochs", trainer.config.epochs, first.config.epochs),
                                   ("seed", trainer.config.seed, first.config.seed)):
            if mine != theirs:
                raise ValueError(f"racer {method!r} has {what} {mine!r}, the first racer {theirs!r}: a race "
                                 "differs only by its method")
    return trainers


class LockStep:
    """Advance ``trainers`` ({method: Trainer}) one step each per round, in one thread.

    ``after_round(step)`` is called after every round (the view's pace and status); its exceptions stop
    nothing. :attr:`statuses` holds each racer's status (``running`` until it ends).
    """

    def __init__(self, trainers: dict[str, Trainer], after_round: Callable[[int], None] | None = None) -> None:
        check_methods(list(trainers))
        self.trainers = dict(trainers)
        self.after_round = after_round
        self.halt = threading.Event()  # Stop: the next round is the last
        self.closing = threading.Event()  # set for the last round: each racer stops after its step
        self.statuses = {m: t.history.status for m, t in self.trainers.items()}
        self.errors: dict[str, str] = {}
        self.interrupted = False  # a racer's turn ended on Ctrl-C: this round is the last
        self.thread: threading.Thread | None = None
        for trainer in self.trainers.values():
            trainer.records.every = 1  # each turn flushes its one row anyway: no extra device sync
            trainer.records.callback = self.racer_callback(trainer)

    def racer_callback(self, trainer: Trainer) -> Callable[[Event], None]:
        """In the last round, a racer's step event asks it to stop after that step."""
        def on_event(event: Event) -> None:
            if event.kind == "step" and self.closing.is_set():
                trainer.stop()
        return on_event

    @property
    def step(self) -> int:
        """The step every racer has reached (the fewest, while a round is under way)."""
        return min(t.global_step for t in self.trainers.values())

    @property
    def racing(self) -> list[str]:
        """The racers that have not ended (completed, stopped or failed)."""
        return [m for m, s in self.statuses.items() if s not in ENDED]

    def turn(self, method: str) -> None:
        """One step of one racer (its run begun); a racer that completes, stops or fails ends its run."""
        trainer = self.trainers[method]
        try:
            status = trainer.advance(1)
        except KeyboardInterrupt:  # a second Ctrl-C (or a callback's): this racer ends as fit() would end it
            status = "interrupted"
        except Exception as exc:  # noqa: BLE001 — the run is marked "error" with a note; the race goes on
            self.end(method, "error", exc)
            return
        if status == "interrupted":
            self.interrupted = True  # Ctrl-C was meant for the race: the others end after this round
        if status != "paused":
            self.end(method, status)

    def end(self, method: str, status: str, error: BaseException | None = None) -> None:
        """End one racer's run with ``status`` (``error``: ``error`` kept in :attr:`errors`)."""
        try:
            status = self.trainers[method].end_run(status, error).status
        except Exception as exc:  # noqa: BLE001 — its test evaluation failed: the run is marked "error"
            error, status = exc, "error"
        if error is not None:
            self.errors[method] = f"{type(error).__name__}: {error}"
        self.statuses[method] = status

    def run_round(self) -> None:
        """Each racer still in the race takes one step (the last one when :attr:`halt` is set)."""
        if self.halt.is_set():
            self.closing.set()
        for method in self.racing:
            self.turn(method)
        if self.after_round is not None:
            try:
                self.after_round(self.step)
            except Exception as exc:  # noqa: BLE001 — a view must never take the race down
                for trainer in self.trainers.values():
                    trainer.history.add_note({"step": trainer.global_step, "callback_error": repr(exc)})

    def run(self, max_rounds: int | None = None) -> dict[str, str]:
        """Begin every racer's run, rounds until every racer has ended (or ``max_rounds`` were run: the open
        runs end ``paused``); returns the statuses. Whatever ends the race, no run is left open."""
        if max_rounds is not None:
            validate.check_int("max_rounds", max_rounds, 1)
        self.begin()
        self.interrupted = False
        rounds = 0
        try:
            while self.racing and (max_rounds is None or rounds < max_rounds):
                self.run_round()
                rounds += 1
                if self.interrupted:
                    self.end_all("interrupted")
        except KeyboardInterrupt:
            self.end_all("interrupted")
            raise
        except BaseException as exc:
            self.end_all("error", exc)
            raise
        self.end_all("paused")
        return dict(self.statuses)

    def begin(self) -> None:
        """Begin the run of every racer still in the race (none, if one of them is already running)."""
        begun = []
        try:
            for method in self.racing:
                self.trainers[method].begin_run()
                begun.append(method)
                self.statuses[method] = "running"
        except RuntimeError:
            for method in begun:
                self.end(method, "paused")
            raise

    def end_all(self, status: str, error: BaseException | None = None) -> None:
        """End every run still open with ``status``."""
        for method in self.racing:
            self.end(method, status, error)

    def start(self) -> threading.Thread:
        """:meth:`run` in a background thread (daemon), returned."""
        self.halt.clear()
        self.closing.clear()
        self.thread = threading.Thread(target=self.run, name="mtl_lab-race", daemon=True)
        self.thread.start()
        return self.thread

    def stop(self, wait: bool = False, timeout: float = 30.0) -> None:
        """Every racer stops after the next round (all at the same step); ``wait`` joins the thread."""
        self.halt.set()
        if wait and self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()
