"""Yeast: the functional classes of 2 417 yeast genes as 14 binary tasks (MULAN's multi-label Yeast).

A. Elisseeff and J. Weston, "A kernel method for multi-labelled classification", NeurIPS 2001: each gene
is described by 103 numbers (micro-array expression and phylogenetic profiles) and belongs to any subset
of 14 functional classes. The multi-label version of the MULAN library (G. Tsoumakas, E. Spyromitros-
Xioufis, J. Vilcek and I. Vlahavas, JMLR 2011), in the copy that the ``river`` package ships
(``river/datasets/yeast.csv.gz``, BSD-3-Clause packaging); read without importing river
(:mod:`mtl_lab.data.river_files`), or from ``root=DIR`` holding ``yeast.csv.gz`` or ``yeast.csv``.

File: comma-separated, a header ``Att1,…,Att103,Class1,…,Class14``, then one gene per line: 103
decimal numbers and 14 labels ``0`` or ``1``.

Tasks ``class1`` … ``class14`` (the file's label columns in lower case; the file does not name the
functional classes), binary (BCE, accuracy); ``tasks=[...]`` keeps any subset, in the order given.

Splits, chosen by ``split`` (one function each in :data:`SPLITS`):

* ``"mulan"`` (default) — MULAN's standard split, 1 500 training and 917 test genes. river's file lists
  MULAN's 917 test genes first and then its 1 500 training genes in the order of MULAN's
  ``yeast-train.arff`` (checked against a copy of that file), so the test split is the first 917 rows;
  a seeded 20 % of the 1 500 (300 genes) is the validation split, the other 1 200 the training split.
  It needs the file's 2 417 rows.
* ``"random"`` — a seeded random 60 / 20 / 20 % split of all rows (any file size).

Features are standardised with the mean and standard deviation of the training split only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from mtl_lab import tasks as T
from mtl_lab.data.base import MultiTaskData, Split, make_data, split_indices
from mtl_lab.data.river_files import find_data_file, read_csv
from mtl_lab.validate import check_bool, check_choice, check_seed, check_task_names

FEATURES = tuple(f"Att{i}" for i in range(1, 104))
LABELS = tuple(f"Class{i}" for i in range(1, 15))
COLUMNS = FEATURES + LABELS
LABEL_VALUES = ("0", "1")
TASK_NAMES = tuple(label.lower() for label in LABELS)
FILE_NAMES = ("yeast.csv.gz", "yeast.csv")
SHIPPED = "yeast.csv.gz"
LAYOUT = ("expected layout: DIR/yeast.csv.gz (or DIR/yeast.csv) as river ships it: a comma-separated header "
          "Att1,…,Att103,Class1,…,Class14, then one gene per line: 103 numbers and 14 labels 0 or 1")
MULAN_TEST, MULAN_TRAIN = 917, 1500  # river's row order: MULAN's test genes, then its training genes
VAL_FRACTION = 0.2  # of MULAN's 1 500 training genes: 300 for validation
RANDOM_FRACTIONS = (0.6, 0.2, 0.2)
SOURCE = ("MULAN's multi-label Yeast (Elisseeff & Weston, NeurIPS 2001) as shipped in river's "
          "datasets/yeast.csv.gz (BSD-3-Clause packaging)")

SplitRule = Callable[[int, int, Path], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def mulan_split(n: int, seed: int, path: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MULAN's split: test = the first 917 rows; a seeded 300 of the last 1 500 validate, 1 200 train."""
    if n != MULAN_TEST + MULAN_TRAIN:
        raise ValueError(f"{path}: split='mulan' needs river's {MULAN_TEST + MULAN_TRAIN} rows (MULAN's "
                         f"{MULAN_TEST} test genes, then its {MULAN_TRAIN} training genes), the file has {n}; "
                         "use split='random' for another file")
    order = MULAN_TEST + torch.randperm(MULAN_TRAIN, generator=torch.Generator().manual_seed(seed))
    n_val = round(VAL_FRACTION * MULAN_TRAIN)
    return order[n_val:].sort().values, order[:n_val].sort().values, torch.arange(MULAN_TEST)


def random_split(n: int, seed: int, path: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded random 60 / 20 / 20 % split of the ``n`` rows."""
    return tuple(rows.sort().values for rows in split_indices(n, RANDOM_FRACTIONS, seed))


SPLITS: dict[str, SplitRule] = {"mulan": mulan_split, "random": random_split}


def choose_tasks(tasks: list[str] | tuple[str, ...] | None) -> list[str]:
    """The task names to keep: all 14 when ``tasks`` is ``None``, else a non-empty subset, in its order."""
    if tasks is None:
        return list(TASK_NAMES)
    chosen = check_task_names(tasks, "tasks")
    unknown = [name for name in chosen if name not in TASK_NAMES]
    if unknown or not chosen:
        raise ValueError(f"tasks {chosen!r}: {f'unknown task(s) {unknown}' if unknown else 'no task'}; "
                         f"choose a non-empty subset of {list(TASK_NAMES)}")
    return chosen


def is_finite_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def first_bad_number(rows: list[list[str]], columns: range, path: Path) -> ValueError:
    """The error naming the first value in ``columns`` that is not a finite number."""
    for i, row in enumerate(rows):
        for column in columns:
            if not is_finite_number(row[column]):
                return ValueError(f"{path}, line {i + 2}: column {COLUMNS[column]} is {row[column]!r}, "
                                  "expected a finite number")
    return ValueError(f"{path}: a feature is not a finite number")


def read_yeast(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Features float ``[N, 103]`` and labels float ``[N, 14]`` (0/1) of a Yeast file; errors name the file."""
    rows = read_csv(path, COLUMNS)
    k = len(FEATURES)
    try:
        x = torch.tensor([[float(v) for v in row[:k]] for row in rows], dtype=torch.float32)
    except ValueError:
        raise first_bad_number(rows, range(k), path) from None
    if not bool(torch.isfinite(x).all()):
        raise first_bad_number(rows, range(k), path)
    if not {v for row in rows for v in row[k:]} <= set(LABEL_VALUES):
        labels = range(k, len(COLUMNS))
        i, column = next((i, c) for i, row in enumerate(rows) for c in labels if row[c] not in LABEL_VALUES)
        raise ValueError(f"{path}, line {i + 2}: label column {COLUMNS[column]} is {rows[i][column]!r}, "
                         "expected 0 or 1")
    y = torch.tensor([[float(v) for v in row[k:]] for row in rows])
    return x, y


def yeast(
    root: str | None = None,
    tasks: list[str] | None = None,
    split: str = "mulan",
    seed: int = 0,
    normalize: bool = True,
) -> MultiTaskData:
    """Yeast gene functions (river's copy or root=DIR): 14 binary labels from 103 gene features."""
    check_seed(seed)
    check_choice("split", split, tuple(SPLITS))
    check_bool("normalize", normalize)
    chosen = choose_tasks(tasks)
    path = find_data_file("yeast", root, FILE_NAMES, SHIPPED, LAYOUT)
    x, y = read_yeast(path)
    train, val, test = SPLITS[split](len(x), seed, path)
    whole = Split(x, {name: y[:, TASK_NAMES.index(name)] for name in chosen})
    task_list = [
        T.binary(name, description=f"1 if the gene belongs to functional class {name[5:]} (file column "
                 f"{LABELS[TASK_NAMES.index(name)]})")
        for name in chosen
    ]
    parts = [whole.take(rows) for rows in (train, val, test)]
    info = {
        "source": f"{SOURCE}; read from {path}",
        "split": split,
        "positive_rate_train": {name: round(float(t.mean()), 4) for name, t in parts[0].y.items()},
    }
    return make_data("yeast", task_list, *parts, normalize=normalize, info=info)
