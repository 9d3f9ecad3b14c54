"""``mtl_lab.sweep`` moved to :mod:`mtl_lab.studies.sweep`;
this name is kept so that older notebooks and scripts still run.

Importing it warns once (``FutureWarning``) with the new path; it will be removed in a later version.
"""

import warnings

from mtl_lab.studies.sweep import (  # noqa: F401
    METHOD_MARKERS,
    SweepPoint,
    SweepResult,
    dominates,
    front,
    front_figure,
    ratio_grid,
    simplex_grid,
    sweep,
    weight_grid,
)

warnings.warn("mtl_lab.sweep has moved to mtl_lab.studies.sweep: import from mtl_lab.studies.sweep instead",
              FutureWarning, stacklevel=2)
