"""UCI Census-Income (KDD) in the set-up of the MMoE paper, read from the user's files.

Ma, Zhao, Yi, Chen, Hong and Chi, "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts", KDD 2018, section 6.3: 299 285 rows of the 1994–95 Current Population Surveys;
task ``income`` (is the income above 50 000?) and task ``never_married`` (is the marital status "Never
married"?), both binary. The data: T. Lane and R. Kohavi, UCI Machine Learning Repository (CC BY 4.0).

Files (``root=DIR``): ``census-income.data`` (199 523 rows, the training split) and
``census-income.test`` (99 762 rows), each optionally gzipped (``.gz``). Comma-separated, no header,
42 columns; every value after the first starts with a space (``39, Private, …``).

Features, as the paper's public reimplementations build them: the 29 categorical columns of
``CATEGORICAL`` one-hot (the categories seen in either file; no label is read to build them), the 10
numeric columns of ``NUMERIC`` standardised with the training rows' mean and standard deviation. Left
out: the two label columns and the survey's ``instance weight`` (column 24), which the data's own
documentation says not to use as a feature. The test file is split half into validation and test by a
seeded permutation (the paper's protocol).

Metric: the MMoE paper reports each task's ROC AUC; so does the lab (``metric="auc"``, exact over the whole
split by the rank formula, :func:`mtl_lab.tasks.roc_auc`). ``metric="accuracy"`` scores the thresholded logit
instead (with 6 % of incomes above 50 000, predicting "no" everywhere is already 94 % accurate: the reason
the paper uses AUC).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import torch

from mtl_lab import tasks as T
from mtl_lab.data.base import MultiTaskData, Split, make_data
from mtl_lab.data.mnist import check_root, find_file
from mtl_lab.validate import check_choice, check_seed

N_COLUMNS = 42
INCOME, MARITAL, INSTANCE_WEIGHT = 41, 7, 24
INCOME_VALUES = {"50000+.": 1.0, "- 50000.": 0.0}
NEVER_MARRIED = "Never married"
NUMERIC = {
    0: "age", 5: "wage per hour", 16: "capital gains", 17: "capital losses", 18: "dividends from stocks",
    30: "num persons worked for employer", 36: "own business or self employed", 38: "veterans benefits",
    39: "weeks worked in year", 40: "year",
}
CATEGORICAL = {
    1: "class of worker", 2: "detailed industry recode", 3: "detailed occupation recode", 4: "education",
    6: "enroll in edu inst last wk", 8: "major industry code", 9: "major occupation code", 10: "race",
    11: "hispanic origin", 12: "sex", 13: "member of a labor union", 14: "reason for unemployment",
    15: "full or part time employment stat", 19: "tax filer stat", 20: "region of previous residence",
    21: "state of previous residence", 22: "detailed household and family stat",
    23: "detailed household summary in household", 25: "migration code-change in msa",
    26: "migration code-change in reg", 27: "migration code-move within reg", 28: "live in this house 1 year ago",
    29: "migration prev res in sunbelt", 31: "family members under 18", 32: "country of birth father",
    33: "country of birth mother", 34: "country of birth self", 35: "citizenship",
    37: "fill inc questionnaire for veteran's admin",
}
FILES = ("census-income.data", "census-income.test")
LAYOUT = ("expected layout: DIR/census-income.data and DIR/census-income.test (each may end in .gz), as "
          "distributed by the UCI repository: 42 comma-separated columns, no header")
TASK_NAMES = ("income", "never_married")
METRICS = ("auc", "accuracy")


def read_rows(path: Path) -> list[list[str]]:
    """The rows of one census file, each a list of 42 stripped strings; an error names a malformed line."""
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    rows = []
    with opener(path, "rt", encoding="latin-1") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            values = [v.strip() for v in line.rstrip("\n").split(",")]
            if len(values) != N_COLUMNS:
                raise ValueError(f"{path}, line {number}: {len(values)} columns, expected {N_COLUMNS}; {LAYOUT}")
            if values[INCOME] not in INCOME_VALUES:
                raise ValueError(f"{path}, line {number}: income column 42 is {values[INCOME]!r}, expected one of "
                                 f"{sorted(INCOME_VALUES)}")
            rows.append(values)
    if not rows:
        raise ValueError(f"{path}: no rows; {LAYOUT}")
    return rows


def numeric(rows: list[list[str]], path: Path) -> torch.Tensor:
    """The ``NUMERIC`` columns as float ``[N, 10]``; an error names a value that is not a number."""
    values = []
    for i, row in enumerate(rows):
        try:
            values.append([float(row[column]) for column in NUMERIC])
        except ValueError:
            bad = next(c for c in NUMERIC if not is_number(row[c]))
            raise ValueError(f"{path}: row {i + 1}, column {bad + 1} ({NUMERIC[bad]}) is {row[bad]!r}, "
                             "expected a number") from None
    return torch.tensor(values, dtype=torch.float32)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def one_hot(rows: list[list[str]], categories: dict[int, list[str]]) -> torch.Tensor:
    """The ``CATEGORICAL`` columns one-hot, ``[N, Σ categories]``, in column order then category order."""
    blocks = []
    for column, values in categories.items():
        index = {v: k for k, v in enumerate(values)}
        codes = torch.tensor([index[row[column]] for row in rows])
        blocks.append(torch.nn.functional.one_hot(codes, len(values)).float())
    return torch.cat(blocks, dim=1)


def labels(rows: list[list[str]]) -> dict[str, torch.Tensor]:
    return {
        "income": torch.tensor([INCOME_VALUES[r[INCOME]] for r in rows]),
        "never_married": torch.tensor([float(r[MARITAL] == NEVER_MARRIED) for r in rows]),
    }


def census(root: str | None = None, seed: int = 0, normalize: bool = True, metric: str = "auc") -> MultiTaskData:
    """UCI Census-Income (KDD), MMoE set-up (needs root=DIR): income > 50k and never married, binary."""
    check_choice("metric", metric, METRICS)
    if root is None:
        raise ValueError(f"census needs the UCI Census-Income (KDD) files, which are not bundled: pass root=DIR; "
                         f"{LAYOUT}")
    check_seed(seed)
    folder = check_root(root)
    paths = [find_file(folder, name, LAYOUT) for name in FILES]
    train_rows, test_rows = (read_rows(p) for p in paths)
    categories = {c: sorted({r[c] for r in train_rows} | {r[c] for r in test_rows}) for c in CATEGORICAL}
    parts = []
    for rows, path in ((train_rows, paths[0]), (test_rows, paths[1])):
        parts.append(Split(torch.cat([numeric(rows, path), one_hot(rows, categories)], dim=1), labels(rows)))
    train, rest = parts
    order = torch.randperm(len(rest), generator=torch.Generator().manual_seed(seed))
    half = len(rest) // 2
    val, test = rest.take(order[:half]), rest.take(order[half:])
    if normalize:  # standardise the numeric columns with the training rows; one-hot columns stay 0/1
        k = len(NUMERIC)
        mean, std = train.x[:, :k].mean(dim=0), train.x[:, :k].std(dim=0).clamp(min=1e-6)
        train, val, test = (
            Split(torch.cat([(s.x[:, :k] - mean) / std, s.x[:, k:]], dim=1), s.y) for s in (train, val, test)
        )
    tasks = [
        T.binary("income", description="1 if the income is above 50 000 USD", metric=metric),
        T.binary("never_married", description="1 if the marital status is 'Never married'", metric=metric),
    ]
    info = {
        "source": f"UCI Census-Income (KDD) files in {folder}",
        "features": {"numeric": list(NUMERIC.values()), "one_hot": {CATEGORICAL[c]: len(v) for c, v in
                                                                    categories.items()}},
        "positive_rate_train": {name: float(y.mean()) for name, y in train.y.items()},
    }
    return make_data("census", tasks, train, val, test, normalize=False, info=info)
