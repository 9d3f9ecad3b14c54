"""One colour language for every view: one colour per task, one colour per method, one per meaning.

Every figure (``plots.py``, the live charts, the arena, the toy landscape, the sweep and the comparison)
takes its colours from here, so a task or a method looks the same wherever it appears, and no colour
means two things in one view:

* **Tasks** — mid-tone colours, by the task's position in the data set (``task_color(i)``).
* **Methods** — dark colours, one fixed colour per method name (``method_color(name)``), disjoint from
  the task colours, so a method's arrow is never mistaken for a task's gradient.
* **Conflict** — red is kept for "this task's loss would rise / the gradients conflict" only; no task or
  method is red. Pairwise cosines are drawn as a heat strip on the diverging scale
  ``cosine_color(c)`` (red < 0 < grey), never as lines in task colours.
* **Neutral** — greys for reference lines, the Pareto set and the "single-task" baseline.
"""

from __future__ import annotations

import colorsys
import zlib

TASK_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
CONFLICT = "#d62728"
NEUTRAL = "#7f7f7f"
REFERENCE = "#000000"

# Dark colours, none of them a task colour or the conflict red. Equal and static weighting are the
# baselines every comparison starts from: black and dark grey.
METHOD_COLORS = {
    "equal": "#000000",
    "static": "#4d4d4d",
    "inverse_loss": "#6b4e16",
    "dwa": "#8c6d31",
    "uncertainty": "#393b79",
    "gradnorm": "#5254a3",
    "rlw": "#637939",
    "gls": "#7b4173",
    "imtl_l": "#843c39",
    "famo": "#3182bd",
    "db_mtl": "#636363",
    "mgda": "#08519c",
    "mgda_ub": "#4292c6",
    "pcgrad": "#006d2c",
    "gradvac": "#41ab5d",
    "cagrad": "#a63603",
    "imtl_g": "#54278f",
    "nash_mtl": "#ae017e",
    "aligned_mtl": "#01665e",
    "upgrad": "#8c2d04",
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
}


def task_color(index: int) -> str:
    """The colour of the task at ``index`` in its data set (cycles after eight tasks)."""
    return TASK_COLORS[index % len(TASK_COLORS)]


def task_colors(n: int) -> list[str]:
    return [task_color(i) for i in range(n)]


def method_color(name: str) -> str:
    """The colour of a method, the same in every view. A method without an entry gets a dark colour
    derived from its name (stable across sessions), away from the task colours' lightness."""
    if name in METHOD_COLORS:
        return METHOD_COLORS[name]
    hue = (zlib.crc32(name.encode()) % 360) / 360.0
    r, g, b = colorsys.hls_to_rgb(hue, 0.28, 0.75)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def cosine_color(c: float) -> str:
    """Diverging scale for a cosine in [−1, 1]: conflict red at −1, white at 0, dark grey at +1."""
    c = max(-1.0, min(1.0, float(c))) if c == c else 0.0
    low, mid, high = (0xD6, 0x27, 0x28), (0xF7, 0xF7, 0xF7), (0x40, 0x40, 0x40)
    end = low if c < 0 else high
    t = abs(c)
    rgb = [round(m + (e - m) * t) for m, e in zip(mid, end)]
    return "#" + "".join(f"{v:02x}" for v in rgb)
