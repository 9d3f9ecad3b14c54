"""``mtl_lab.arena`` moved to :mod:`mtl_lab.toy.arena`;
this name is kept so that older notebooks and scripts still run.

Importing it warns once (``FutureWarning``) with the new path; it will be removed in a later version.
"""

import warnings

from mtl_lab.toy.arena import (  # noqa: F401
    PRESETS,
    ArenaResult,
    arena_figure,
    combine_all,
    cosines,
    draw_arena,
    gradients_from_polar,
    preset,
    results_table,
)

warnings.warn("mtl_lab.arena has moved to mtl_lab.toy.arena: import from mtl_lab.toy.arena instead",
              FutureWarning, stacklevel=2)
