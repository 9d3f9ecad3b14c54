"""Linnerud: 20 men, three exercises in, three body measurements out — the tiny tabular example.

Source: M. Tenenhaus, "La régression PLS : théorie et pratique", Editions Technic, 1998, as bundled
with scikit-learn (BSD-3-Clause licence). Twenty middle-aged men in a fitness club; the files are
``files/linnerud_exercise.csv`` (Chins, Situps, Jumps) and ``files/linnerud_physiological.csv``
(Weight, Waist, Pulse), space separated, one header line each.

Inputs: the three exercise counts ``[20, 3]``, normalised per column with the training split's mean
and standard deviation. The rows are split at random by ``seed`` (12 / 4 / 4 with the default
fractions). Tasks ``weight`` (pounds), ``waist`` (inches) and ``pulse`` (beats per minute): one
regression value each (MSE loss, MSE metric ↓). Each target is standardised with the mean and standard
deviation of the training split, so the three losses are on one scale (a raw weight error is in the
hundreds of square pounds, a waist error in square inches); ``data.info["target_mean"]`` and
``["target_std"]`` undo it. With 20 rows every number here is noisy: it is a data set for looking at
all of it at once, not for ranking methods.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mtl_lab import tasks as T
from mtl_lab.data.base import MultiTaskData, Split, make_data, split_indices

FILES = Path(__file__).parent / "files"
INPUT_COLUMNS = ("Chins", "Situps", "Jumps")
TARGET_COLUMNS = ("Weight", "Waist", "Pulse")
SOURCE = "Linnerud (Tenenhaus 1998), as bundled with scikit-learn; BSD-3-Clause"


def read_table(path: Path, columns: tuple[str, ...]) -> torch.Tensor:
    """A space-separated file with a header line → float ``[rows, len(columns)]``; checks the header."""
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    header, rows = lines[0], lines[1:]
    if tuple(header) != columns:
        raise ValueError(f"{path.name}: expected the columns {list(columns)}, got {header}")
    bad = [i + 2 for i, row in enumerate(rows) if len(row) != len(columns)]
    if bad:
        raise ValueError(f"{path.name}: lines {bad} do not have {len(columns)} values")
    return torch.tensor([[float(v) for v in row] for row in rows], dtype=torch.float32)


def linnerud(
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    normalize: bool = True,
) -> MultiTaskData:
    """Linnerud fitness data (20 men): predict weight, waist and pulse from three exercise counts."""
    x = read_table(FILES / "linnerud_exercise.csv", INPUT_COLUMNS)
    y = read_table(FILES / "linnerud_physiological.csv", TARGET_COLUMNS)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"the exercise file has {x.shape[0]} rows, the physiological file {y.shape[0]}")
    train_idx, val_idx, test_idx = split_indices(x.shape[0], fractions, seed)
    if len(train_idx) < 2:
        raise ValueError(f"fractions {fractions} leave {len(train_idx)} training row(s); at least 2 are needed")
    y_mean, y_std = y[train_idx].mean(dim=0), y[train_idx].std(dim=0)
    z = (y - y_mean) / y_std
    names = [c.lower() for c in TARGET_COLUMNS]
    whole = Split(x, {name: z[:, k : k + 1] for k, name in enumerate(names)})
    units = {"weight": "pounds", "waist": "inches", "pulse": "beats per minute"}
    tasks = [T.regression(name, 1, description=f"{name} ({units[name]}), standardised on train") for name in names]
    info = {
        "source": SOURCE,
        "rows": int(x.shape[0]),
        "inputs": list(INPUT_COLUMNS),
        "target_mean": {name: float(y_mean[k]) for k, name in enumerate(names)},
        "target_std": {name: float(y_std[k]) for k, name in enumerate(names)},
        "fractions": list(fractions),
    }
    return make_data(
        "linnerud",
        tasks,
        whole.take(train_idx),
        whole.take(val_idx),
        whole.take(test_idx),
        normalize=normalize,
        info=info,
    )
