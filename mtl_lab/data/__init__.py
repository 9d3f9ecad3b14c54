"""Embedded datasets, one module each, behind one registry.

* :data:`DATASETS` maps every dataset name to the function that builds it.
* :func:`available` lists ``(name, one-line description)`` for menus and tooltips.
* :data:`REQUIRED_FILES` names the real data sets that need the user's own files (``root=``: CelebA,
  Census-Income, Office, NYUv2 and Cityscapes in MTAN's layout, …); :func:`menu` offers those whose files
  are present. :data:`PACKAGE_FILES` names those that an installed package may ship instead (Yeast and
  Solar-flare in ``river``), found without importing it.
* :func:`load` builds a dataset from its name and options, with clear errors.

Every dataset returns a :class:`MultiTaskData` (see :mod:`mtl_lab.data.base`) except Office-31 and Office-Home,
whose tasks each have their own images: :class:`MultiInputData` by default (:mod:`mtl_lab.data.multi_input`);
all are read
from files shipped inside the package or generated from a seed — nothing is downloaded. The sources,
licences and constructions are described in ``data/README.md`` at the top of the repository.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path

from mtl_lab.data.base import MultiTaskData, Split, make_data, split_indices
from mtl_lab.data.celeba import celeba
from mtl_lab.data.census import census
from mtl_lab.data.digits import digits
from mtl_lab.data.linnerud import linnerud
from mtl_lab.data.localization import localization
from mtl_lab.data.mmoe_synthetic import mmoe_synthetic
from mtl_lab.data.mnist import mnist, multifashion, multifashion_mnist, multimnist
from mtl_lab.data.mtan_npy import cityscapes, nyuv2
from mtl_lab.data.multi_input import MultiInputData, TaskSplits
from mtl_lab.data.multidigits import multidigits
from mtl_lab.data.office import office31, office_home
from mtl_lab.data.related import related
from mtl_lab.data.river_files import river_file
from mtl_lab.data.scenes import scenes
from mtl_lab.data.solar_flare import solar_flare
from mtl_lab.data.yeast import yeast
from mtl_lab.validate import check_options

DATASETS: dict[str, Callable[..., MultiTaskData]] = {
    "digits": digits,
    "multidigits": multidigits,
    "mmoe_synthetic": mmoe_synthetic,
    "linnerud": linnerud,
    "localization": localization,
    "related": related,
    "scenes": scenes,
    "mnist": mnist,
    "multimnist": multimnist,
    "multifashion": multifashion,
    "multifashion_mnist": multifashion_mnist,
    "celeba": celeba,
    "census": census,
    "office31": office31,
    "office_home": office_home,
    "nyuv2": nyuv2,
    "cityscapes": cityscapes,
    "yeast": yeast,
    "solar_flare": solar_flare,
}

# Options that load() fills in when they are not given: the MMoE data needs a task correlation ρ,
# and 0.5 is the middle setting of the paper's experiments (its Figure 4a).
DEFAULT_OPTIONS: dict[str, dict[str, object]] = {"mmoe_synthetic": {"correlation": 0.5}}

# Real data sets read from files: the folder under $MTL_LAB_DATA each option reads (see :func:`menu`).
DATA_ENV = "MTL_LAB_DATA"
FILE_FOLDERS: dict[str, dict[str, str]] = {
    "mnist": {"root": "mnist"},  # optional: without it the 5 000 bundled digits
    "multimnist": {"root": "mnist"},
    "multifashion": {"root": "fashion_mnist"},
    "multifashion_mnist": {"root": "mnist", "fashion_root": "fashion_mnist"},
    "celeba": {"root": "celeba"},
    "census": {"root": "census"},
    "office31": {"root": "office31"},
    "office_home": {"root": "office_home"},
    "nyuv2": {"root": "nyuv2"},
    "cityscapes": {"root": "cityscapes"},
    "yeast": {"root": "yeast"},
    "solar_flare": {"root": "solar_flare"},
}
# The file options a real data set cannot load without (mnist and multimnist fall back on the bundled digits).
REQUIRED_FILES: dict[str, tuple[str, ...]] = {
    "multifashion": ("root",),
    "multifashion_mnist": ("fashion_root",),
    "celeba": ("root",),
    "census": ("root",),
    "office31": ("root",),
    "office_home": ("root",),
    "nyuv2": ("root",),
    "cityscapes": ("root",),
    "yeast": ("root",),  # or river's copy (PACKAGE_FILES)
    "solar_flare": ("root",),
}
# The real data sets that an installed river package ships: the file under river/datasets/ that load() reads
# when no root= is given (see mtl_lab.data.river_files; river itself is never imported).
PACKAGE_FILES: dict[str, str] = {"yeast": "yeast.csv.gz", "solar_flare": "solar-flare.csv.zip"}

__all__ = [
    "DATASETS",
    "DEFAULT_OPTIONS",
    "MultiInputData",
    "MultiTaskData",
    "PACKAGE_FILES",
    "Split",
    "available",
    "celeba",
    "census",
    "cityscapes",
    "digits",
    "linnerud",
    "load",
    "menu",
    "menu_options",
    "localization",
    "make_data",
    "mmoe_synthetic",
    "mnist",
    "multifashion",
    "multifashion_mnist",
    "multimnist",
    "office31",
    "office_home",
    "multidigits",
    "nyuv2",
    "option_names",
    "related",
    "scenes",
    "solar_flare",
    "split_indices",
    "TaskSplits",
    "yeast",
]


def available() -> list[tuple[str, str]]:
    """``(name, description)`` of every dataset, in registry order (the first docstring line)."""
    return [(name, (fn.__doc__ or "").strip().splitlines()[0]) for name, fn in DATASETS.items()]


def option_names(name: str) -> list[str]:
    """The option names that ``load(name, ...)`` accepts."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {list(DATASETS)}")
    return list(inspect.signature(DATASETS[name]).parameters)


def load(name: str, **options: object) -> MultiTaskData:
    """Build the dataset ``name`` with ``options`` (see :func:`option_names`; defaults in each module)."""
    allowed = option_names(name)
    unknown = [key for key in options if key not in allowed]
    if unknown:
        raise ValueError(f"dataset {name!r} has no option(s) {unknown}; its options are {allowed}")
    check_options(DATASETS[name], options, f"dataset {name!r}")  # kinds as the defaults, seeds in range
    return DATASETS[name](**{**DEFAULT_OPTIONS.get(name, {}), **options})


def menu_options(name: str, folder: str | None = None) -> dict[str, str]:
    """The file options of data set ``name`` found under ``folder`` (default ``$MTL_LAB_DATA``): each option
    of :data:`FILE_FOLDERS` whose sub-folder exists, e.g. ``{"root": "$MTL_LAB_DATA/celeba"}``."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {list(DATASETS)}")
    folder = folder if folder is not None else os.environ.get(DATA_ENV)
    if not folder:
        return {}
    found = {option: Path(folder) / sub for option, sub in FILE_FOLDERS.get(name, {}).items()}
    return {option: str(path) for option, path in found.items() if path.is_dir()}


def menu(folder: str | None = None) -> list[str]:
    """The data sets a menu offers: those bundled or generated, each real one whose files are present
    under ``folder`` (default the folder named by ``$MTL_LAB_DATA``; one sub-folder per set, see
    ``data/README.md``), and each one whose file an installed package ships (:data:`PACKAGE_FILES`)."""
    return [name for name in DATASETS if files_present(name, folder) or package_file(name) is not None]


def files_present(name: str, folder: str | None = None) -> bool:
    """Whether every file option that data set ``name`` needs has its sub-folder under ``folder``."""
    return set(REQUIRED_FILES.get(name, ())) <= set(menu_options(name, folder))


def package_file(name: str) -> Path | None:
    """The file of data set ``name`` that an installed package ships, or ``None``."""
    shipped = PACKAGE_FILES.get(name)
    return river_file(shipped) if shipped is not None else None
