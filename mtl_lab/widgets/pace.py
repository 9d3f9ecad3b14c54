"""Lecture pace: a cap on training steps per second, so a demo run lasts long enough to move a slider.

The lab's training thread calls :meth:`Pace.wait` after every recorded step; it sleeps just long enough
that the run keeps to ``steps_per_second`` on average (measured from the run's start or the last change
of pace), and wakes at once when ``halt`` is set (Stop). ``None`` means full speed: no waiting at all.
The pace may change while a run trains; the new cap counts from that moment.
"""

from __future__ import annotations

import math
import threading
import time

# What the panel offers: (label, steps per second or None for full speed).
PACES: tuple[tuple[str, float | None], ...] = (
    ("full speed", None),
    ("200 steps/s", 200.0),
    ("100 steps/s", 100.0),
    ("50 steps/s", 50.0),
    ("25 steps/s (lecture)", 25.0),
    ("10 steps/s", 10.0),
    ("5 steps/s", 5.0),
)


def check_pace(steps_per_second: float | None) -> float | None:
    """``None`` (full speed) or a finite number of steps per second > 0; ``ValueError`` otherwise."""
    if steps_per_second is None:
        return None
    ok = isinstance(steps_per_second, int | float) and not isinstance(steps_per_second, bool)
    if not ok or not math.isfinite(steps_per_second) or steps_per_second <= 0:
        raise ValueError(f"pace must be None (full speed) or a number of steps per second > 0, "
                         f"got {steps_per_second!r}")
    return float(steps_per_second)


class Pace:
    """At most ``steps_per_second`` training steps a second (``None``: full speed)."""

    def __init__(self, steps_per_second: float | None = None) -> None:
        self.steps_per_second = check_pace(steps_per_second)
        self.origin = (time.perf_counter(), 0)

    def set(self, steps_per_second: float | None, step: int) -> None:
        """A new cap from ``step`` on (checked)."""
        self.steps_per_second = check_pace(steps_per_second)
        self.origin = (time.perf_counter(), step)

    def restart(self, step: int) -> None:
        """A run (re)starts at ``step``: the cap counts from now."""
        self.origin = (time.perf_counter(), step)

    def delay(self, step: int, now: float | None = None) -> float:
        """Seconds to wait before going on past ``step`` (0 at full speed or when behind)."""
        if self.steps_per_second is None:
            return 0.0
        started, first = self.origin
        now = time.perf_counter() if now is None else now
        return max(0.0, started + (step - first) / self.steps_per_second - now)

    def wait(self, step: int, halt: threading.Event) -> None:
        """Sleep until ``step`` is due; return at once when ``halt`` is set."""
        seconds = self.delay(step)
        if seconds > 0:
            halt.wait(min(seconds, 1.0))


class RecordCadence:
    """How many steps the trainer buffers before it moves rows to the History (and so to the chart).

    At a capped pace every step is recorded (the chart moves step by step). At full speed the trainer's
    own cadence (``full``: 10 steps on the CPU) keeps a fast run's overhead low — unless steps are so slow
    that rows would reach the chart less than ``rows_per_second`` times a second (a dense model at 10
    steps/s would move once a second): then fewer steps, down to every step. The training thread reports
    every move (:meth:`moved`); the speed is measured between two moves of the same run.
    """

    def __init__(self, full: int = 10, rows_per_second: float = 10.0) -> None:
        self.full = full
        self.rows_per_second = rows_per_second
        self.at_full_speed = full
        self.last: tuple[float, int] | None = None  # (time, step) of this run's last move

    def every(self, capped: bool) -> int:
        """The cadence now: 1 at a capped pace, else what the measured speed allows (at most ``full``)."""
        return 1 if capped else self.at_full_speed

    def moved(self, step: int, now: float) -> None:
        """Rows up to ``step`` moved at time ``now``: keep at least ``rows_per_second`` moves a second."""
        if self.last is not None:
            last_time, last_step = self.last
            steps, seconds = step - last_step, now - last_time
            if steps > 0 and seconds > 0:
                per_move = math.floor(steps / seconds / self.rows_per_second)
                self.at_full_speed = max(1, min(self.full, per_move))
        self.last = (now, step)

    def begin(self) -> None:
        """A run (re)starts: the speed is measured from its first move (not across the pause before it)."""
        self.last = None

    def restart(self, full: int) -> None:
        """A new trainer: its own cadence, and no speed measured yet."""
        self.full = full
        self.at_full_speed = full
        self.last = None
