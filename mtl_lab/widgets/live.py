"""The live figure: one persistent matplotlib Figure, redrawn from History snapshots, throttled.

Layout, side by side: on the left the per-task loss curves (train and validation) and the effective
weights; on the right the gradient contributions — each task's share of the update, the pairwise
cosines and the gradient norms (the same panels as :func:`mtl_lab.plots.signature_figure`). The Axes
and lines are made once and only their data change, so nothing piles up however long the lab runs and
a frame costs at most one rendering.

Throttling: :meth:`LivePlot.due` says whether a redraw is due. Redraws are at most ``max_rate`` per
second (4 Hz), and drawing may take at most ``budget`` (3 %) of the wall time since the run started,
plus a small ``credit`` (0.25 s) so the first frame of a run comes at once. The training loop that calls
:meth:`LivePlot.draw_if_due` between steps so keeps about 97 % of its speed however slow a frame is:
on a fast machine frames come every second or two, on a slow or busy one further apart (the status
line, which costs nothing, keeps counting in between).

Blitting: axes, ticks, titles and legends — the text whose layout makes a full rendering slow — are
drawn only when an axis range has to change; every other frame restores that saved background and
draws just the data artists on it (several times cheaper). When the run's length is known
(``planned_steps``) the step axes span it from the start, as a progress bar does; otherwise they grow
with headroom (×2). Loss ranges grow with 25 % margins, so a run needs only a handful of full renderings.

The PNG bytes go to ``target.value`` — an ``ipywidgets.Image`` in the lab, any object with a
``value`` attribute in tests and benchmarks. Nothing here imports ipywidgets.
"""

from __future__ import annotations

import io
import math
import time

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import Collection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter
from PIL import Image

from mtl_lab import plots
from mtl_lab.history import History


def plain_ticks(ax: Axes) -> None:
    """Tick labels as plain numbers (``0.01``, not ``10^{-2}``): no mathtext to lay out on every frame."""
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def data_bounds(artists: list) -> tuple[float, float, float, float] | None:
    """``(x0, x1, y0, y1)`` of the finite data of lines and filled areas (``None`` without data)."""
    xs, ys = [], []
    for artist in artists:
        if isinstance(artist, Line2D):
            xs.append(np.asarray(artist.get_xdata(), dtype=float))
            ys.append(np.asarray(artist.get_ydata(), dtype=float))
        elif isinstance(artist, Collection):
            for path in artist.get_paths():
                xs.append(path.vertices[:, 0])
                ys.append(path.vertices[:, 1])
    if not xs:
        return None
    x, y = np.concatenate(xs), np.concatenate(ys)
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return None
    x, y = x[keep], y[keep]
    return float(x.min()), float(x.max()), float(y.min()), float(y.max())


def fit_with_headroom(
    ax: Axes, bounds: tuple[float, ...], scale_y: bool, grow: float = 2.0, planned: int | None = None
) -> None:
    """Keep ``ax``'s range while the data ``bounds`` fit in it; otherwise set a new one with headroom.

    A new range gets ``grow`` × the data along x and margins along y (25 %; on a log axis a decade below
    and 0.3 above, room for falling losses); it is also renewed when the data fill less than a third of
    it along x (a quarter along y, an eighth on a log axis). With
    ``planned`` steps (the run's length, when known) the step axis spans the whole run from the start
    and never changes. An unchanged range lets :meth:`LivePlot.draw` reuse the saved background.
    """
    x0, x1, y0, y1 = bounds
    old = ax.get_xlim()
    span = max(x1 - x0, 1.0)
    if planned is not None and 0 <= x0 and x1 <= planned:
        if old != (-0.01 * planned, 1.01 * planned):
            ax.set_xlim(-0.01 * planned, 1.01 * planned)
    elif not (old[0] <= x0 and x1 <= old[1] and span >= (old[1] - old[0]) / 3):
        ax.set_xlim(x0 - 0.02 * span * grow, x0 + span * grow)
    if not scale_y:
        return
    log = ax.get_yscale() == "log"
    if log:
        positive = max(y0, 1e-12)
        y0, y1 = math.log10(positive), math.log10(max(y1, positive))
    old = [math.log10(max(v, 1e-12)) for v in ax.get_ylim()] if log else list(ax.get_ylim())
    fill = 1 / 8 if log else 1 / 4  # falling losses span decades: keep a log range longer
    if not (old[0] <= y0 and y1 <= old[1] and (y1 - y0) >= (old[1] - old[0]) * fill):
        below, above = (1.0, 0.3) if log else (0.25 * ((y1 - y0) or 1.0),) * 2  # a decade of room to fall
        lo, hi = y0 - below, y1 + above
        ax.set_ylim((10**lo, 10**hi) if log else (lo, hi))


class LivePlot:
    """A persistent five-panel Figure drawn into ``target.value`` as PNG bytes.

    The Axes and their lines are made once per set of tasks (:meth:`prepare`); each redraw only gives
    the lines new data, so a frame costs one rendering and no new artists.

    Args:
        target: an object whose ``value`` receives the PNG bytes (``None``: keep them in ``png``).
        figsize, dpi: size of the image.
        max_rate: at most this many redraws per second.
        budget: the largest fraction of wall time spent drawing (after ``credit`` seconds).
        credit: drawing seconds allowed at once when a run starts.
    """

    def __init__(self, target=None, figsize: tuple[float, float] = (12.5, 7.0), dpi: int = 68,
                 max_rate: float = 4.0, budget: float = 0.03, credit: float = 0.25) -> None:
        self.target = target
        self.credit = credit
        self.dpi = dpi
        self.max_rate = max_rate
        self.budget = budget
        self.figure = Figure(figsize=figsize, dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        self.background = None  # the saved static part of the last full rendering
        self.drawn_state: tuple = ()  # axis ranges, scales and title of that rendering
        self.full_renders = 0
        self.planned_steps: int | None = None  # the run's length: the step axis spans it from the start
        self.task_names: list[str] = []
        self.lines: dict[str, list] = {}
        self.stacks: list = []
        self.notes: dict[str, object] = {}
        self.png = b""
        self.frames = 0
        self.draw_seconds = 0.0
        self.last_draw = -float("inf")
        self.clock_started = time.perf_counter()
        self.clock_draw_seconds = 0.0
        self.prepare([])

    # ------------------------------------------------------------ throttle

    def start_clock(self) -> None:
        """A run starts: the drawing budget counts from now (and the next frame is due at once)."""
        self.clock_started = time.perf_counter()
        self.clock_draw_seconds = 0.0
        self.last_draw = -float("inf")

    def due(self, now: float | None = None) -> bool:
        """At most ``max_rate`` frames a second, and drawing within ``budget·elapsed + credit``."""
        now = time.perf_counter() if now is None else now
        if now - self.last_draw < 1.0 / self.max_rate:
            return False
        return self.clock_draw_seconds <= self.budget * (now - self.clock_started) + self.credit

    # ------------------------------------------------------------ artists

    def prepare(self, task_names: list[str]) -> None:
        """(Re)build the Axes and one line per task / task pair for ``task_names``."""
        self.figure.clear()
        self.task_names = list(task_names)
        grid = self.figure.add_gridspec(3, 2, hspace=0.5, wspace=0.16, left=0.06, right=0.98, top=0.88,
                                        bottom=0.07)
        self.loss_ax = self.figure.add_subplot(grid[0:2, 0])
        self.weight_ax = self.figure.add_subplot(grid[2, 0])
        self.share_ax = self.figure.add_subplot(grid[0, 1])
        self.cosine_ax = self.figure.add_subplot(grid[1, 1])
        self.norm_ax = self.figure.add_subplot(grid[2, 1])
        titles = [(self.loss_ax, "Per-task loss (solid: train, dashed: validation)"),
                  (self.weight_ax, "Effective task weights w_t"),
                  (self.share_ax, "Share of the update per task (sums to 1)"),
                  (self.cosine_ax, "Gradient cosine per task pair (< 0: conflict)"),
                  (self.norm_ax, "Gradient norm ‖g_t‖ per task")]
        for ax, title in titles:
            ax.set_title(title, fontsize=9)
            ax.tick_params(labelsize=7)
        self.norm_ax.set_xlabel("step", fontsize=8)
        self.weight_ax.set_xlabel("step", fontsize=8)
        for ax in (self.loss_ax, self.norm_ax):
            ax.set_yscale("log")
            plain_ticks(ax)
        self.cosine_ax.set_ylim(-1.05, 1.05)
        self.cosine_ax.axhspan(-1.05, 0.0, color="#d62728", alpha=0.07)
        self.cosine_ax.axhline(0.0, color="black", lw=0.8)
        self.share_ax.axhline(1.0, color="black", lw=0.8, ls=":")
        self.share_ax.axhline(0.0, color="black", lw=0.8)
        colors = [plots.task_color(i) for i in range(len(task_names))]
        self.lines = {
            "train": [self.loss_ax.plot([], [], color=c, lw=1.5)[0] for c in colors],
            "val": [self.loss_ax.plot([], [], "--o", color=c, ms=3, lw=1)[0] for c in colors],
            "weights": [self.weight_ax.plot([], [], color=c, lw=1.2)[0] for c in colors],
            "norms": [self.norm_ax.plot([], [], color=c, lw=1.2)[0] for c in colors],
            "cosines": [],
        }
        pairs = [(i, j) for i in range(len(task_names)) for j in range(i + 1, len(task_names))]
        for i, j in pairs:
            line = self.cosine_ax.plot([], [], lw=1.2, label=f"{task_names[i]}·{task_names[j]}")[0]
            self.lines["cosines"].append((i, j, line))
        if 0 < len(pairs) <= 10:
            self.cosine_ax.legend(fontsize=6, ncol=2 if len(pairs) > 3 else 1, loc="lower left")
        self.stacks = []
        self.notes = {ax_name: ax.text(0.5, 0.5, "", ha="center", va="center", transform=ax.transAxes, fontsize=8)
                      for ax_name, ax in (("share", self.share_ax), ("cosine", self.cosine_ax),
                                          ("norm", self.norm_ax))}
        self.background = None
        for artist in self.data_artists():
            artist.set_animated(True)
        for ax in self.figure.axes:
            ax.set_autoscale_on(False)  # ranges are set by fit_with_headroom only
        if task_names:
            handles = self.lines["train"]
            self.figure.legend(handles, task_names, loc="upper center", ncol=min(len(task_names), 8), fontsize=8,
                               frameon=False, bbox_to_anchor=(0.5, 0.955))
        self.canvas.draw()  # now, not in the first frame of a run: fonts and text layouts get cached

    def update(self, history: History) -> None:
        """Give every line the data of ``history`` (a snapshot)."""
        if history.task_names != self.task_names:
            self.prepare(history.task_names)
        steps = history.steps
        for i, task in enumerate(history.task_names):
            self.lines["train"][i].set_data(steps, plots.smooth([row[i] for row in history.losses], 0.8))
            val = [(e["step"], e["val_loss"][task]) for e in history.epochs if task in e.get("val_loss", {})]
            self.lines["val"][i].set_data([v[0] for v in val], [v[1] for v in val])
            self.lines["weights"][i].set_data(steps, [row[i] for row in history.weights])
        positive = all(v > 0 for row in history.losses for v in row)
        if self.loss_ax.get_yscale() != ("log" if positive else "linear"):
            self.loss_ax.set_yscale("log" if positive else "linear")
            plain_ticks(self.loss_ax)
        diag = history.diagnostics
        dsteps = [d["step"] for d in diag]
        for i in range(history.n_tasks):
            self.lines["norms"][i].set_data(dsteps, [max(d["norms"][i], 1e-12) for d in diag])
        for i, j, line in self.lines["cosines"]:
            line.set_data(dsteps, [d["cosines"][i][j] for d in diag])
        for collection in self.stacks:
            collection.remove()
        self.stacks = []
        if diag:
            colors = [plots.task_color(t) for t in range(history.n_tasks)]
            shares = [[d["shares"][t] for d in diag] for t in range(history.n_tasks)]
            self.stacks = self.share_ax.stackplot(dsteps, [[max(v, 0.0) for v in r] for r in shares],
                                                  colors=colors, alpha=0.85)
            if any(v < 0 for r in shares for v in r):
                self.stacks += self.share_ax.stackplot(dsteps, [[min(v, 0.0) for v in r] for r in shares],
                                                       colors=colors, alpha=0.45)
        reason = "" if diag else (history.meta.get("diagnostics") or "no gradient diagnostics yet")
        for note in self.notes.values():
            note.set_text(reason)
        for collection in self.stacks:
            collection.set_animated(True)
        artists = self.data_artists()
        for ax in (self.loss_ax, self.weight_ax, self.share_ax, self.norm_ax, self.cosine_ax):
            bounds = data_bounds([a for a in artists if a.axes is ax])
            if ax is self.share_ax and bounds is not None:  # always show the 0 … 1 band of the shares
                bounds = (bounds[0], bounds[1], min(bounds[2], 0.0), max(bounds[3], 1.0))
            if bounds is not None:
                fit_with_headroom(ax, bounds, scale_y=ax is not self.cosine_ax, planned=self.planned_steps)

    def draw(self, history: History, title: str = "") -> bytes:
        """Update from ``history`` (a snapshot), render, and publish the PNG."""
        started = time.perf_counter()
        self.update(history)
        state = (title, *[(ax.get_xlim(), ax.get_ylim(), ax.get_yscale()) for ax in self.figure.axes])
        if self.background is None or state != self.drawn_state:
            self.figure.suptitle(title, fontsize=10, y=0.995)
            self.canvas.draw()  # everything but the animated (data) artists
            self.background = self.canvas.copy_from_bbox(self.figure.bbox)
            self.drawn_state = state
            self.full_renders += 1
        else:
            self.canvas.restore_region(self.background)
        for artist in self.data_artists():
            self.figure.draw_artist(artist)
        self.png = self.encode()
        if self.target is not None:
            self.target.value = self.png
        finished = time.perf_counter()
        self.charge(finished - started)
        self.frames += 1
        self.last_draw = finished
        return self.png

    def data_artists(self) -> list:
        """The artists whose data change between frames (drawn over the saved background)."""
        lines = [*self.lines["train"], *self.lines["val"], *self.lines["weights"], *self.lines["norms"]]
        lines += [line for _, _, line in self.lines["cosines"]]
        return [*self.stacks, *lines, *self.notes.values()]

    def encode(self) -> bytes:
        """The canvas as PNG bytes (fast compression: the image is redrawn often)."""
        width, height = self.canvas.get_width_height()
        image = Image.frombuffer("RGBA", (width, height), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="png", compress_level=1)  # opaque figure: no alpha to keep
        return buffer.getvalue()

    def draw_if_due(self, history_source, title: str = "") -> bool:
        """Redraw when due; ``history_source()`` is called only then, and its time counts as drawing time."""
        if not self.due():
            return False
        started = time.perf_counter()
        history = history_source()
        self.charge(time.perf_counter() - started)
        self.draw(history, title)
        return True

    def charge(self, seconds: float) -> None:
        """Count ``seconds`` of drawing work: in total, and against this run's budget."""
        self.draw_seconds += seconds
        self.clock_draw_seconds += seconds
