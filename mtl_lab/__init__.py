"""mtl_lab: an interactive teaching lab for multi-task learning.

The layers, each importing only the ones before it::

    data → tasks → models → gradients → weighting → train → metrics/plots → widgets/cli

Start with :func:`mtl_lab.data.load`, :func:`mtl_lab.training.build_trainer` and
:func:`mtl_lab.plots.signature_figure`; :func:`aggregate` combines a gradient matrix the way a method does.
"""

from mtl_lab.weighting import aggregate, available

__version__ = "0.1.0"

__all__ = ["__version__", "aggregate", "available"]
