"""Solar flares: how many C-, M- and X-class flares a sunspot region produces in the next 24 hours.

UCI Machine Learning Repository, "Solar Flare" (donor G. Bradshaw, 1989), its second file
(``flare.data2``, 1 066 regions; the better error-checked one), in the copy that the ``river`` package
ships (``river/datasets/solar-flare.csv.zip``, BSD-3-Clause packaging); read without importing river
(:mod:`mtl_lab.data.river_files`), or from ``root=DIR`` holding ``solar-flare.csv.zip`` or
``solar-flare.csv``.

File: comma-separated with a header; river's zip archive holds one member, itself named
``solar-flare.csv.zip``. Ten categorical codes describe a region (:data:`CATEGORIES`, the codes of UCI's
``flare.names``), then three counts: ``c-class-flares``, ``m-class-flares``, ``x-class-flares``.

Features: the ten codes one-hot over the categories UCI documents (33 columns, 0/1, not standardised);
a code outside them is an error. In river's copy ``largest-spot-area`` is 1 on every row, and no
region has Zurich class ``A``: those columns are constant, which does no harm.

Tasks ``c_flares``, ``m_flares``, ``x_flares``: regression of the count (float ``[N, 1]``), MSE loss
and MSE metric — the losses :mod:`mtl_lab.tasks` has (a Poisson loss would suit counts better). Most
regions produce no flare: in river's copy 83 % have no C-class, 97 % no M-class and 99.5 % no X-class
flare, so a model that predicts the mean is a strong baseline.

Splits: a seeded random 60 / 20 / 20 % split of the rows (640 / 213 / 213).
"""

from __future__ import annotations

from pathlib import Path

import torch

from mtl_lab import tasks as T
from mtl_lab.data.base import MultiTaskData, Split, make_data, split_indices
from mtl_lab.data.river_files import find_data_file, read_csv
from mtl_lab.validate import check_seed

CATEGORIES: dict[str, tuple[str, ...]] = {
    "zurich-class": ("A", "B", "C", "D", "E", "F", "H"),  # modified Zurich class
    "largest-spot-size": ("X", "R", "S", "A", "H", "K"),
    "spot-distribution": ("X", "O", "I", "C"),
    "activity": ("1", "2"),  # reduced, unchanged
    "evolution": ("1", "2", "3"),  # decay, no growth, growth
    "previous-24h-flare-activity": ("1", "2", "3"),  # nothing as big as M1, one M1, more than one M1
    "hist-complex": ("1", "2"),  # historically complex: yes, no
    "hist-complex-this-pass": ("1", "2"),  # became so on this pass across the disk: yes, no
    "area": ("1", "2"),  # small, large
    "largest-spot-area": ("1", "2"),  # ≤ 5, > 5
}
TARGETS = {"c-class-flares": "c_flares", "m-class-flares": "m_flares", "x-class-flares": "x_flares"}
COLUMNS = (*CATEGORIES, *TARGETS)
FILE_NAMES = ("solar-flare.csv.zip", "solar-flare.csv")
SHIPPED = "solar-flare.csv.zip"
LAYOUT = ("expected layout: DIR/solar-flare.csv.zip (a zip archive holding one CSV file, as river ships it) or "
          "DIR/solar-flare.csv: a comma-separated header " + ",".join(COLUMNS) + ", then one region per line: "
          "the ten codes and three flare counts")
FRACTIONS = (0.6, 0.2, 0.2)
SOURCE = ("UCI Solar Flare (flare.data2) as shipped in river's datasets/solar-flare.csv.zip "
          "(BSD-3-Clause packaging)")


def one_hot(rows: list[list[str]], path: Path) -> torch.Tensor:
    """The ten codes one-hot, ``[N, 33]``, column by column in :data:`CATEGORIES` order."""
    blocks = []
    for column, (name, allowed) in enumerate(CATEGORIES.items()):
        index = {value: k for k, value in enumerate(allowed)}
        for i, row in enumerate(rows):
            if row[column] not in index:
                raise ValueError(f"{path}, line {i + 2}: column {name} is {row[column]!r}, expected one of "
                                 f"{list(allowed)}")
        codes = torch.tensor([index[row[column]] for row in rows])
        blocks.append(torch.nn.functional.one_hot(codes, len(allowed)).float())
    return torch.cat(blocks, dim=1)


def counts(rows: list[list[str]], path: Path) -> dict[str, torch.Tensor]:
    """The three flare counts, each float ``[N, 1]``, by task name."""
    out = {}
    for column, (name, task) in enumerate(TARGETS.items(), start=len(CATEGORIES)):
        for i, row in enumerate(rows):
            if not (row[column].isascii() and row[column].isdigit()):
                raise ValueError(f"{path}, line {i + 2}: column {name} is {row[column]!r}, expected a count "
                                 "(0, 1, 2, …)")
        out[task] = torch.tensor([[float(row[column])] for row in rows])
    return out


def feature_names() -> list[str]:
    """``code=value`` for each of the 33 one-hot columns, in order."""
    return [f"{name}={value}" for name, allowed in CATEGORIES.items() for value in allowed]


def solar_flare(root: str | None = None, seed: int = 0) -> MultiTaskData:
    """Solar flares (river's copy or root=DIR): 3 flare counts (regression) from 10 categorical codes."""
    check_seed(seed)
    path = find_data_file("solar_flare", root, FILE_NAMES, SHIPPED, LAYOUT)
    rows = read_csv(path, COLUMNS)
    whole = Split(one_hot(rows, path), counts(rows, path))
    parts = [whole.take(index.sort().values) for index in split_indices(len(rows), FRACTIONS, seed)]
    tasks = [
        T.regression(task, description=f"number of {name[0].upper()}-class flares in the next 24 hours")
        for name, task in TARGETS.items()
    ]
    info = {
        "source": f"{SOURCE}; read from {path}",
        "features": feature_names(),
        "mean_count_train": {name: round(float(y.mean()), 4) for name, y in parts[0].y.items()},
    }
    return make_data("solar_flare", tasks, *parts, normalize=False, info=info)
