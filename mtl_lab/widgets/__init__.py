"""Live views over the core (ipywidgets): the weight-tuning lab, gradient arena, toy landscape, Pareto
sweep, Pareto explorer and run comparison. The core never imports this package; everything here is a thin
view over :mod:`mtl_lab.training`, :mod:`mtl_lab.history`, :mod:`mtl_lab.plots`, :mod:`mtl_lab.toy.arena`,
:mod:`mtl_lab.toy`, :mod:`mtl_lab.studies.sweep` and :mod:`mtl_lab.studies.pareto_set`.
"""

from mtl_lab.widgets.arena import GradientArena
from mtl_lab.widgets.chart import LiveChart
from mtl_lab.widgets.compare import RunComparison
from mtl_lab.widgets.config import LabConfig
from mtl_lab.widgets.lab import Lab
from mtl_lab.widgets.landscape import ToyLandscape
from mtl_lab.widgets.pareto_explorer import ParetoExplorer
from mtl_lab.widgets.sweep import ParetoSweep

__all__ = ["GradientArena", "Lab", "LabConfig", "LiveChart", "ParetoExplorer", "ParetoSweep", "RunComparison",
           "ToyLandscape"]
