"""How the live chart gets its data: rows read from a History, decimated, sent as binary appends.

The training thread does no drawing and no sending. While a run trains, a daemon thread of
:class:`ChartFeed` wakes ``rate`` times a second (10), reads the rows the History gained since its last
visit (under the History's lock, a few list slices) and sends them to the browser as one binary
message per stream — 8 bytes a number, a few hundred bytes per message. The browser appends them and
redraws once per animation frame (:mod:`mtl_lab.widgets.chart`).

The feed reads one History per run it shows: one for the lab's run, two to four for a race
(:mod:`mtl_lab.widgets.race`; the racers advance in lock-step, so their rows line up step by step and a
row is sent once every racer has it). Streams (one row per recorded step / diagnostics step / epoch;
"per run and task" is run by run, the tasks in order within each run):

* ``step``: ``[step, smoothed train loss per run and task, effective weight per run and task]`` — the loss
  is an exponential moving average (weight of the past ``smoothing``), as in :func:`mtl_lab.plots.smooth`;
* ``diag``: ``[step, share per task, cosine per task pair (i < j), gradient norm per task]`` of the run
  the gradient panels show (``shown``; :meth:`ChartFeed.show` picks another);
* ``val``: ``[step, validation loss per run and task]``.

Decimation keeps a line at ≤ ``max_points`` points however long the run: only rows whose step is a
multiple of ``stride`` are kept; when a stream holds more than ``max_points`` rows its stride doubles
(keeping every row whose step is a multiple of the new stride — evenly spread over the whole run, early
history included) and the browser gets a ``reset`` with the thinned rows. A run of N steps so sends
about log2(N / max_points) resets in all.

A view that starts late (a re-rendered output, a Voila page, a second view) or misses a message asks
for the whole decimated history with ``{"kind": "hello"}``; the reply goes out from the kernel's main
thread when it is free, and the appends from the sender thread never wait for it.
"""

from __future__ import annotations

import math
import struct
import threading
from collections.abc import Callable

from mtl_lab.history import History

STREAMS = ("step", "diag", "val")


class ChartFeed:
    """Feeds a :class:`~mtl_lab.widgets.chart.LiveChart` (or any object with ``send``, ``on_msg`` and
    the chart's traits) from the History returned by ``source()``."""

    def __init__(self, chart, rate: float = 10.0, max_points: int = 1000, smoothing: float = 0.8) -> None:
        if not (isinstance(rate, int | float) and 0 < rate <= 60):
            raise ValueError(f"rate must be a number of messages per second in (0, 60], got {rate!r}")
        if not (isinstance(max_points, int) and max_points >= 16):
            raise ValueError(f"max_points must be an integer ≥ 16, got {max_points!r}")
        self.chart = chart
        self.rate = float(rate)
        self.max_points = max_points
        self.smoothing = smoothing
        self.lock = threading.Lock()
        self.sources: list[Callable[[], History]] = []
        self.shown = 0  # the run whose diagnostics the gradient panels show
        self.thread: threading.Thread | None = None
        self.halt = threading.Event()
        self.wake = threading.Event()  # set by :meth:`step_taken` for the run's first rows, and by :meth:`stop`
        self.messages = 0
        self.bytes_sent = 0
        self.clear([])
        chart.on_msg(self.on_message)

    # ------------------------------------------------------------ state

    def clear(self, task_names: list[str]) -> None:
        """Forget all rows (a new run, or no run)."""
        self.task_names = list(task_names)
        self.rows: dict[str, list[list[float]]] = {s: [] for s in STREAMS}
        self.sent: dict[str, int] = {s: 0 for s in STREAMS}
        self.stride: dict[str, int] = {s: 1 for s in STREAMS}
        self.read: dict[str, int] = {s: 0 for s in STREAMS}
        self.ema: list[float] | None = None
        self.loss_log = True
        self.notes_seen = 0

    def detach(self) -> None:
        """No run any more (Reset, close): stop sending, forget the rows, show empty axes."""
        self.stop()
        with self.lock:
            self.sources = []
            self.clear(self.task_names)
        self.chart.markers = []
        self.send_reset()

    def begin(self, sources: list[Callable[[], History]], task_names: list[str], planned_steps: int,
              racers: list[dict] | tuple = ()) -> None:
        """A new run (one source) or race (one per racer, and ``racers``: a ``{label, color}`` each): rows come
        from each ``source()`` from now on; the chart is cleared and its gradient panels show the first run."""
        if racers and len(racers) != len(sources):
            raise ValueError(f"{len(racers)} racers for {len(sources)} sources: one racer per source")
        self.stop()
        with self.lock:
            self.sources = list(sources)
            self.shown = 0
            self.clear(task_names)
        self.chart.racers = [dict(r) for r in racers]  # before the reset: the view reads the rows' shape from it
        self.chart.set_tasks(task_names)
        self.chart.planned_steps = int(planned_steps)
        self.chart.markers = []
        self.chart.note = ""
        self.send_reset()

    # ------------------------------------------------------------ the sender thread

    def start(self) -> None:
        """Send new rows ``rate`` times a second until :meth:`stop` (idempotent)."""
        if self.thread is not None and self.thread.is_alive():
            return
        self.halt.clear()
        self.thread = threading.Thread(target=self.loop, name="mtl-lab-chart-feed", daemon=True)
        self.thread.start()

    def loop(self) -> None:
        while not self.halt.is_set():
            self.flush()
            self.wake.wait(1.0 / self.rate)
            self.wake.clear()

    def step_taken(self) -> None:
        """The trainer took a step: if the browser has no row of this run yet, send now, not at the next tick
        (the first frame follows Train at once). Costs the caller one comparison."""
        if self.sent["step"] == 0:
            self.wake.set()

    def stop(self) -> None:
        """Stop the sender thread and send what is left."""
        self.halt.set()
        self.wake.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        self.thread = None
        if self.sources:
            self.flush()

    def show(self, index: int) -> None:
        """The gradient panels show run ``index`` from now on (its whole diagnostics history is resent)."""
        if not 0 <= index < len(self.sources):
            raise ValueError(f"run {index!r} is not one of the {len(self.sources)} runs the chart shows")
        with self.lock:
            self.shown = index
            self.rows["diag"], self.read["diag"], self.stride["diag"] = [], 0, 1
            self.send_reset_locked()
        self.flush()

    # ------------------------------------------------------------ reading the History

    def pull(self, histories: list[History]) -> bool:
        """Append the Histories' new rows to the kept rows; ``True`` when the browser needs a reset.

        A step or epoch row is taken once every run has it (lock-step runs fill them in turn)."""
        T = len(self.task_names)
        runs = []
        for history in histories:
            with history.lock:
                start = self.read["step"]
                steps = history.steps[start:]
                runs.append((steps, history.losses[start:start + len(steps)],
                             history.weights[start:start + len(steps)], history.epochs[self.read["val"]:]))
        shown = histories[self.shown]
        with shown.lock:
            diags = shown.diagnostics[self.read["diag"]:]
            notes = shown.notes[self.notes_seen:]
            note = shown.meta.get("diagnostics") or ""
        n = min(min(len(steps), len(losses), len(weights)) for steps, losses, weights, _ in runs)
        n_epochs = min(len(epochs) for *_, epochs in runs)
        self.read["step"] += n
        self.read["diag"] += len(diags)
        self.read["val"] += n_epochs
        self.notes_seen += len(notes)
        reset = False
        steps = runs[0][0][:n]
        losses = [[float(v) for _, run_losses, _, _ in runs for v in run_losses[i]] for i in range(n)]
        weights = [[float(v) for _, _, run_weights, _ in runs for v in run_weights[i]] for i in range(n)]
        for step, loss, weight in zip(steps, losses, weights):
            if self.ema is None:
                self.ema = [float(v) for v in loss]
            else:
                f = self.smoothing
                self.ema = [f * a + (1 - f) * float(v) for a, v in zip(self.ema, loss)]
            if self.loss_log and any(not (v > 0) for v in self.ema if math.isfinite(v)):
                self.loss_log, reset = False, True  # a loss ≤ 0 cannot go on a log axis
            reset |= self.keep("step", [float(step), *self.ema, *map(float, weight)])
        pairs = [(i, j) for i in range(T) for j in range(i + 1, T)]
        for d in diags:
            if "shares" not in d:
                continue
            row = [float(d["step"]), *map(float, d["shares"]), *[float(d["cosines"][i][j]) for i, j in pairs],
                   *map(float, d["norms"])]
            reset |= self.keep("diag", row)
        for i in range(n_epochs):
            row = [float(runs[0][3][i]["step"])]
            for *_, epochs in runs:
                val = epochs[i].get("val_loss") or {}
                row += [float(val.get(t, math.nan)) for t in self.task_names]
            reset |= self.keep("val", row)
        self.update_markers(notes)
        if note:
            self.chart.note = f"Gradient panels: {note}"  # an unchanged value sends nothing
        return reset

    def keep(self, stream: str, row: list[float]) -> bool:
        """Keep ``row`` if its step is a multiple of the stride; thin the stream when it grows too long."""
        if int(row[0]) % self.stride[stream]:
            return False
        rows = self.rows[stream]
        rows.append(row)
        if len(rows) <= self.max_points:
            return False
        while len(rows) > self.max_points:
            self.stride[stream] *= 2
            rows = [r for r in rows if int(r[0]) % self.stride[stream] == 0]
        self.rows[stream] = rows
        return True

    def update_markers(self, notes: list[dict]) -> None:
        """A note that weights or an option changed mid-run becomes a marker on the chart."""
        new = []
        for note in notes:
            if "weights_set" in note:
                text = ", ".join(f"{t}={w:g}" for t, w in note["weights_set"].items())
                new.append({"step": int(note["step"]), "label": f"w: {text}"})
            elif "option_set" in note:
                new.append({"step": int(note["step"]), "label": str(note["option_set"])})
        if new:
            self.chart.markers = [*self.chart.markers, *new]

    # ------------------------------------------------------------ sending

    def flush(self) -> None:
        """Read the History's new rows and send them (a reset when the browser's rows were thinned)."""
        sources = self.sources
        if not sources:
            return
        with self.lock:
            reset = self.pull([source() for source in sources])
            if reset:
                self.send_reset_locked()
                return
            for stream in STREAMS:
                rows = self.rows[stream]
                start = self.sent[stream]
                if len(rows) > start:
                    self.send({"kind": "append", "stream": stream, "start": start, "cols": len(rows[0])},
                              [pack(rows[start:])])
                    self.sent[stream] = len(rows)

    def send_reset(self) -> None:
        with self.lock:
            self.send_reset_locked()

    def send_reset_locked(self) -> None:
        cols = self.columns()
        self.send({"kind": "reset", "streams": cols, "log": {"loss": self.loss_log, "norm": True}},
                  [pack(self.rows[s]) for s in STREAMS])
        self.sent = {s: len(self.rows[s]) for s in STREAMS}

    def columns(self) -> dict[str, int]:
        T, R = len(self.task_names), max(1, len(self.sources))
        return {"step": 1 + 2 * R * T, "diag": 1 + 2 * T + T * (T - 1) // 2, "val": 1 + R * T}

    def send(self, content: dict, buffers: list[bytes]) -> None:
        self.chart.send(content, buffers)
        self.messages += 1
        self.bytes_sent += sum(len(b) for b in buffers)

    def on_message(self, _widget, content: dict, _buffers) -> None:
        """A view asks for everything (it started late or missed an append)."""
        if isinstance(content, dict) and content.get("kind") == "hello":
            self.send_reset()


def pack(rows: list[list[float]]) -> bytes:
    """Rows of floats as little-endian float64, row after row (NaN and ±inf kept; the view skips them)."""
    flat = [v for row in rows for v in row]
    return struct.pack(f"<{len(flat)}d", *flat)


def unpack(data: bytes, cols: int) -> list[list[float]]:
    """The inverse of :func:`pack` (for tests and tools)."""
    flat = struct.unpack(f"<{len(data) // 8}d", data)
    return [list(flat[i:i + cols]) for i in range(0, len(flat), cols)]
