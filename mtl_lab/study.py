"""``mtl_lab.study`` moved to :mod:`mtl_lab.studies`;
this name is kept so that older notebooks and scripts still run.

Importing it warns once (``FutureWarning``) with the new path; it will be removed in a later version.
"""

import warnings

from mtl_lab.studies import (  # noqa: F401
    BASELINE,
    EXAMPLE,
    STUDY_KEYS,
    RunSpec,
    Study,
    StudyResult,
    Variant,
    average_ranks,
    execute,
    load_data,
    load_study,
    mean_ci,
    plan,
    run_study,
    study_from_dict,
    summarise,
    t_quantile,
)

warnings.warn("mtl_lab.study has moved to mtl_lab.studies: import from mtl_lab.studies instead",
              FutureWarning, stacklevel=2)
