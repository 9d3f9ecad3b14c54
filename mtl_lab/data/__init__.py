"""Embedded datasets, one module each, behind one registry.

* :data:`DATASETS` maps every dataset name to the function that builds it.
* :func:`available` lists ``(name, one-line description)`` for menus and tooltips.
* :data:`LOCAL_DATASETS` maps the real data sets read from the user's own files (NYUv2, Cityscapes in
  MTAN's layout, ``root=`` required) to their loaders.
* :func:`load` builds a dataset from its name and options, with clear errors.

Every dataset returns a :class:`MultiTaskData` (see :mod:`mtl_lab.data.base`); all of them are read
from files shipped inside the package or generated from a seed — nothing is downloaded. The sources,
licences and constructions are described in ``data/README.md`` at the top of the repository.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from mtl_lab.data.base import MultiTaskData, Split, make_data, split_indices
from mtl_lab.data.digits import digits
from mtl_lab.data.linnerud import linnerud
from mtl_lab.data.localization import localization
from mtl_lab.data.mmoe_synthetic import mmoe_synthetic
from mtl_lab.data.mtan_npy import cityscapes, nyuv2
from mtl_lab.data.multidigits import multidigits
from mtl_lab.data.related import related
from mtl_lab.data.scenes import scenes
from mtl_lab.validate import check_options

DATASETS: dict[str, Callable[..., MultiTaskData]] = {
    "digits": digits,
    "multidigits": multidigits,
    "mmoe_synthetic": mmoe_synthetic,
    "linnerud": linnerud,
    "localization": localization,
    "related": related,
    "scenes": scenes,
}

# Real data sets read from files the user already has (``root=``): not in the menus, since they need a path.
LOCAL_DATASETS: dict[str, Callable[..., MultiTaskData]] = {"nyuv2": nyuv2, "cityscapes": cityscapes}

# Options that load() fills in when they are not given: the MMoE data needs a task correlation ρ,
# and 0.5 is the middle setting of the paper's experiments (its Figure 4a).
DEFAULT_OPTIONS: dict[str, dict[str, object]] = {"mmoe_synthetic": {"correlation": 0.5}}

__all__ = [
    "DATASETS",
    "DEFAULT_OPTIONS",
    "LOCAL_DATASETS",
    "MultiTaskData",
    "Split",
    "available",
    "cityscapes",
    "digits",
    "linnerud",
    "load",
    "localization",
    "make_data",
    "mmoe_synthetic",
    "multidigits",
    "nyuv2",
    "option_names",
    "related",
    "scenes",
    "split_indices",
]


def available() -> list[tuple[str, str]]:
    """``(name, description)`` of every dataset, in registry order (the first docstring line)."""
    return [(name, (fn.__doc__ or "").strip().splitlines()[0]) for name, fn in DATASETS.items()]


def option_names(name: str) -> list[str]:
    """The option names that ``load(name, ...)`` accepts."""
    loaders = {**DATASETS, **LOCAL_DATASETS}
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; choose from {list(loaders)}")
    return list(inspect.signature(loaders[name]).parameters)


def load(name: str, **options: object) -> MultiTaskData:
    """Build the dataset ``name`` with ``options`` (see :func:`option_names`; defaults in each module)."""
    allowed = option_names(name)
    unknown = [key for key in options if key not in allowed]
    if unknown:
        raise ValueError(f"dataset {name!r} has no option(s) {unknown}; its options are {allowed}")
    loader = DATASETS.get(name) or LOCAL_DATASETS[name]
    check_options(loader, options, f"dataset {name!r}")  # kinds as the defaults, seeds in range
    return loader(**{**DEFAULT_OPTIONS.get(name, {}), **options})
