"""How a colour looks to a reader with colour-vision deficiency, and how far apart two colours look.

Simulation: Gustavo M. Machado, Manuel M. Oliveira and Leandro A. F. Fernandes, "A Physiologically-based
Model for Simulation of Color Vision Deficiency", IEEE Transactions on Visualization and Computer
Graphics 15(6), 2009. Each deficiency at severity 1 (dichromacy) is one 3 × 3 matrix applied to
*linear* RGB (the paper's Table 1, severity 1.0)::

    rgb_lin = decode_srgb(hex)            # IEC 61966-2-1 transfer function
    sim_lin = clip(M_kind · rgb_lin, 0, 1)

Difference: CIE76 ΔE, the Euclidean distance in CIELAB (D65 white, sRGB primaries). A ΔE of about 2 is
just noticeable side by side; lines on a chart need far more — :mod:`mtl_lab.palette` keeps its first
four task colours ≥ 15 apart under deuteranopia and protanopia and ≥ 12 under tritanopia.
"""

from __future__ import annotations

import itertools
import math

MACHADO_2009 = {
    "protanopia": ((0.152286, 1.052583, -0.204868),
                   (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968),
                     (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779),
                   (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
}
VISIONS = ("normal", *MACHADO_2009)
SRGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375),
               (0.2126729, 0.7151522, 0.0721750),
               (0.0193339, 0.1191920, 0.9503041))
D65_WHITE = (0.95047, 1.0, 1.08883)


def hex_to_linear(color: str) -> tuple[float, float, float]:
    """``#rrggbb`` → linear RGB in [0, 1] (the sRGB transfer function undone)."""
    if not (isinstance(color, str) and len(color) == 7 and color[0] == "#"):
        raise ValueError(f"colour must be '#rrggbb', got {color!r}")
    channels = [int(color[k:k + 2], 16) / 255 for k in (1, 3, 5)]
    return tuple(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)


def simulate(color: str, vision: str) -> tuple[float, float, float]:
    """The linear RGB a reader with ``vision`` (``normal`` or a key of :data:`MACHADO_2009`) sees."""
    rgb = hex_to_linear(color)
    if vision == "normal":
        return rgb
    if vision not in MACHADO_2009:
        raise ValueError(f"vision must be one of {list(VISIONS)}, got {vision!r}")
    return tuple(min(1.0, max(0.0, sum(m * c for m, c in zip(row, rgb)))) for row in MACHADO_2009[vision])


def linear_to_lab(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    """Linear sRGB → CIELAB (D65)."""
    xyz = [sum(m * c for m, c in zip(row, rgb)) / w for row, w in zip(SRGB_TO_XYZ, D65_WHITE)]
    eps = (6 / 29) ** 3
    fx, fy, fz = (v ** (1 / 3) if v > eps else v / (3 * (6 / 29) ** 2) + 4 / 29 for v in xyz)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def delta_e(a: str, b: str, vision: str = "normal") -> float:
    """CIE76 ΔE between colours ``a`` and ``b`` as seen with ``vision``."""
    return math.dist(linear_to_lab(simulate(a, vision)), linear_to_lab(simulate(b, vision)))


def closest_pair(colors: list[str], vision: str = "normal") -> tuple[float, str, str]:
    """The smallest ΔE between any two of ``colors`` under ``vision``, and that pair."""
    if len(colors) < 2:
        raise ValueError(f"closest_pair needs at least two colours, got {colors!r}")
    return min((delta_e(a, b, vision), a, b) for a, b in itertools.combinations(colors, 2))
