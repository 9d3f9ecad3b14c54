"""One colour language for every view: one colour (and one second cue) per task, one colour per method.

Every figure (``plots.py``, the live charts, the arena, the toy landscape, the sweep and the comparison)
takes its colours from here, so a task or a method looks the same wherever it appears, and no colour
means two things in one view. Colour is never the only cue: a reader with a colour-vision deficiency
(about one man in twelve) must be able to tell every line apart.

* **Tasks** — the Okabe–Ito palette (Masataka Okabe and Kei Ito, "Color Universal Design", 2008),
  by the task's position in the data set (``task_color(i)``), and a **second cue** per task: a dash
  pattern (``task_dash(i)``, lines) and a marker (``task_marker(i)``, points). Under simulated
  deuteranopia and protanopia (Machado et al. 2009, :mod:`mtl_lab.colour_vision`) the first four task
  colours stay ≥ 15 CIE76 ΔE apart (≥ 12 under tritanopia); ``tests/test_palette.py`` checks it.
* **Methods** — dark colours, one fixed colour per method name (``method_color(name)``), disjoint from
  the task colours, so a method's arrow is never mistaken for a task's gradient. The methods a lecture
  races most (:data:`CORE_METHODS`) stay ≥ 20 ΔE apart under each simulated deficiency.
* **Conflict** — a diverging orange–blue scale (``cosine_color(c)``: orange < 0 < blue, white at 0),
  readable under deuteranopia and protanopia; pairwise cosines are drawn as a heat strip on it, never as
  lines in task colours. :data:`CONFLICT` (its orange end) marks "the gradients conflict / this task's
  loss would rise" and nothing else.
* **Neutral** — greys for reference lines, the Pareto set and the "single-task" baseline.
"""

from __future__ import annotations

import colorsys
import zlib

# Okabe–Ito without its black (black is the reference and the "equal" method); the eighth is Tol's wine.
TASK_COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#882255"]
# The second cue: dash patterns as on/off lengths in points (matplotlib) or CSS pixels (the browser),
# and matplotlib marker codes, one per task position.
TASK_DASHES: list[tuple[float, ...]] = [(), (6, 3), (1.5, 2.5), (8, 3, 2, 3), (3, 2), (10, 2, 2, 2, 2, 2),
                                        (14, 4), (2, 2, 6, 2)]
TASK_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
CONFLICT = "#b35806"
COSINE_ZERO = "#f7f7f7"
ALIGNED = "#2166ac"
NEUTRAL = "#7f7f7f"
REFERENCE = "#000000"

# Dark colours, none of them a task colour or the conflict orange. Equal and static weighting are the
# baselines every comparison starts from: black and dark grey. The core methods' colours come from Paul
# Tol's muted scheme ("Colour Schemes", SRON technical note EPS/TN/09-002) and stay apart under simulated
# deficiencies.
CORE_METHODS = ("equal", "uncertainty", "pcgrad", "mgda", "cagrad", "nash_mtl")
METHOD_COLORS = {
    "equal": "#000000",
    "static": "#4d4d4d",
    "uncertainty": "#332288",
    "pcgrad": "#44AA99",
    "mgda": "#999933",
    "cagrad": "#8c2d04",
    "nash_mtl": "#7b4173",
    "inverse_loss": "#6b4e16",
    "dwa": "#8c6d31",
    "gradnorm": "#5254a3",
    "rlw": "#637939",
    "gls": "#6a3d9a",
    "imtl_l": "#843c39",
    "famo": "#3182bd",
    "db_mtl": "#636363",
    "mgda_ub": "#4292c6",
    "gradvac": "#41ab5d",
    "imtl_g": "#54278f",
    "aligned_mtl": "#01665e",
    "upgrad": "#a63603",
    "dualproj": "#b15928",
    "graddrop": "#35978f",
    "torchjd": "#252525",
    "scale_invariant": "#00008b",
    "stch": "#4d004b",
    "fairgrad": "#2b5c00",
    "config": "#00334d",
    "pcd": "#5a5a00",
    "excess_mtl": "#3d1f00",
    "cr_mogm": "#483d8b",
    "moco": "#1a3d3d",
    "sdmgrad": "#252a5c",
    "modo": "#556b2f",
    "auto_lambda": "#8b008b",
    "epo": "#7a0177",
    "pareto_mtl": "#084081",
    "cosmos": "#4a1486",
    "pbi": "#662506",
    "ntkmtl": "#00441b",
    "config_momentum": "#1c4f6e",
    "cosmos_sampled": "#99000d",  # Pareto-set learning's loss (built with its model's sampler, not in the registry)
}


def task_color(index: int) -> str:
    """The colour of the task at ``index`` in its data set (cycles after eight tasks)."""
    return TASK_COLORS[index % len(TASK_COLORS)]


def task_colors(n: int) -> list[str]:
    return [task_color(i) for i in range(n)]


def task_dash(index: int) -> tuple[float, ...]:
    """The dash pattern (on/off lengths; ``()`` = solid) of the task at ``index`` — its second cue."""
    return TASK_DASHES[index % len(TASK_DASHES)]


def task_linestyle(index: int) -> str | tuple[float, tuple[float, ...]]:
    """:func:`task_dash` as a matplotlib ``linestyle``."""
    dash = task_dash(index)
    return (0, dash) if dash else "-"


def task_marker(index: int) -> str:
    """The matplotlib marker of the task at ``index`` (points: validation values, the arena's tips)."""
    return TASK_MARKERS[index % len(TASK_MARKERS)]


def method_color(name: str) -> str:
    """The colour of a method, the same in every view. A method without an entry gets a dark colour
    derived from its name (stable across sessions), away from the task colours' lightness."""
    if name in METHOD_COLORS:
        return METHOD_COLORS[name]
    hue = (zlib.crc32(name.encode()) % 360) / 360.0
    r, g, b = colorsys.hls_to_rgb(hue, 0.28, 0.75)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def cosine_color(c: float) -> str:
    """Diverging scale for a cosine in [−1, 1]: conflict orange at −1, near-white at 0, blue at +1.

    Values beyond ±1 (rounding) take the end colour; NaN (no diagnostics) is the neutral middle.
    """
    c = max(-1.0, min(1.0, float(c))) if c == c else 0.0
    mid = hex_rgb(COSINE_ZERO)
    end = hex_rgb(CONFLICT if c < 0 else ALIGNED)
    t = abs(c)
    rgb = [round(m + (e - m) * t) for m, e in zip(mid, end)]
    return "#" + "".join(f"{v:02x}" for v in rgb)


def hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
