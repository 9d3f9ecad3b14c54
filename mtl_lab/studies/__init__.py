"""Studies: many runs at once — a study file, its runs, the engines that train them, statistics and a report.

The modules import in one direction: :mod:`~mtl_lab.studies.spec` (the file) → :mod:`~mtl_lab.studies.runs`
(one run: :class:`RunSpec`, :func:`execute`) → :mod:`~mtl_lab.studies.engines` (sequential, processes, Ray)
→ :mod:`~mtl_lab.studies.statistics` → :mod:`~mtl_lab.studies.study` (:func:`run_study`) →
:mod:`~mtl_lab.studies.report` and :mod:`~mtl_lab.studies.cli` (``mtl-lab study``).
:mod:`~mtl_lab.studies.sweep` trains static-weight grids and draws their Pareto fronts.
"""

from mtl_lab.studies.runs import RunSpec, execute, plan
from mtl_lab.studies.spec import BASELINE, EXAMPLE, STUDY_KEYS, Study, Variant, load_data, load_study, study_from_dict
from mtl_lab.studies.statistics import average_ranks, mean_ci, summarise, t_quantile
from mtl_lab.studies.study import StudyResult, run_study

__all__ = [
    "BASELINE", "EXAMPLE", "STUDY_KEYS", "RunSpec", "Study", "StudyResult", "Variant", "average_ranks", "execute",
    "load_data", "load_study", "mean_ci", "plan", "run_study", "study_from_dict", "summarise", "t_quantile",
]
