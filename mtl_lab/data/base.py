"""The data protocol: a list of tasks and three disjoint splits of ``(x, {task: y})``.

Every dataset in ``mtl_lab.data`` returns a :class:`MultiTaskData`. Inputs are one tensor ``x`` of
shape ``[N, F]`` (tabular) or ``[N, C, H, W]`` (images); targets are a dict with one tensor per task.
Input normalisation is fitted on the training split only and applied to all three splits; the fitted
``x_mean``/``x_std`` are kept so a learner can undo it. An optional ``augment`` function is applied
to training batches only: ``augment(x, targets, generator) -> (x, targets)`` (it keeps the rows, so
their label masks stay valid).

Missing labels. A row may lack some tasks' targets. A split then carries ``mask``: for each task with
missing labels a boolean tensor ``[N]`` (``True`` = labelled); a task absent from ``mask`` is labelled
on every row. The target tensor keeps one row per example; an unlabelled row holds a placeholder
(zeros, see :func:`mtl_lab.training.masks.fill_unlabelled`) that no loss, gradient or metric ever reads: each
task's loss and metric are computed over its labelled rows only (:mod:`mtl_lab.training.masks`). Batches for
training come from ``batches(..., with_mask=True)`` as ``(x, {task: y}, {task: mask})``.

When each task has its own inputs (Office's image domains), the data are a
:class:`~mtl_lab.data.multi_input.MultiInputData` instead: each task its own splits of this form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import torch

from mtl_lab.tasks import Task
from mtl_lab.validate import check_bool, check_finite, check_seed

Batch = tuple[torch.Tensor, dict[str, torch.Tensor]]
MaskedBatch = tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]
Augment = Callable[[torch.Tensor, dict[str, torch.Tensor], torch.Generator], Batch]


def batch_rows(
    n: int, batch_size: int, shuffle: bool, generator: torch.Generator | None, drop_last: bool
) -> list[slice] | list[torch.Tensor]:
    """The rows of each mini-batch of ``n`` rows, in order: consecutive slices, or when ``shuffle`` consecutive
    chunks of ``randperm(n, generator)`` (on the CPU). ``drop_last`` leaves out a last, smaller batch."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    stop = n - n % batch_size if drop_last else n
    if shuffle:
        order = torch.randperm(n, generator=generator)
        return [order[start : start + batch_size] for start in range(0, stop, batch_size)]
    return [slice(start, min(start + batch_size, n)) for start in range(0, stop, batch_size)]


@dataclass(frozen=True)
class Split:
    """One split: inputs ``x``, a target tensor per task, all with the same number of rows, and the
    label ``mask`` of each task that misses labels on some rows (``{}``: every row is labelled)."""

    x: torch.Tensor
    y: dict[str, torch.Tensor]
    mask: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def labelled(self, task: str) -> torch.Tensor:
        """The boolean ``[N]`` mask of the rows that have a label for ``task``."""
        if task in self.mask:
            return self.mask[task]
        return torch.ones(len(self), dtype=torch.bool, device=self.x.device)

    def n_labelled(self, task: str) -> int:
        """How many rows have a label for ``task``."""
        return int(self.mask[task].sum()) if task in self.mask else len(self)

    def take(self, index: torch.Tensor) -> Split:
        """The rows at ``index``."""
        return Split(
            self.x[index],
            {name: t[index] for name, t in self.y.items()},
            {name: m[index] for name, m in self.mask.items()},
        )

    def to(self, device: torch.device | str) -> Split:
        """A copy on ``device`` (returns ``self`` when nothing moves); a subclass keeps its own fields."""
        if self.x.device == torch.device(device):
            return self
        return replace(
            self,
            x=self.x.to(device),
            y={name: t.to(device) for name, t in self.y.items()},
            mask={name: m.to(device) for name, m in self.mask.items()},
        )

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        with_mask: bool = False,
    ) -> Iterator[Batch] | Iterator[MaskedBatch]:
        """Yield ``(x, {task: y})`` mini-batches; the order is drawn from ``generator`` when shuffling.

        ``with_mask=True`` yields ``(x, {task: y}, {task: mask})`` (masks of the tasks that miss labels).
        """
        for rows in batch_rows(len(self), batch_size, shuffle, generator, drop_last):
            if not isinstance(rows, slice):
                rows = rows.to(self.x.device)
            x, y = self.x[rows], {name: t[rows] for name, t in self.y.items()}
            if with_mask:
                yield x, y, {name: m[rows] for name, m in self.mask.items()}
            else:
                yield x, y


def find_task(dataset_tasks: list[Task], name: str) -> Task:
    """The task called ``name`` (``KeyError`` naming the tasks there are)."""
    for t in dataset_tasks:
        if t.name == name:
            return t
    raise KeyError(f"no task {name!r}; this dataset has {[t.name for t in dataset_tasks]}")


def check_selection(dataset: str, available: list[str], names: list[str] | tuple[str, ...] | str) -> list[str]:
    """The tasks chosen from a data set (``select()``, a loader's ``tasks=``): at least one, each known and named
    once (a single name is a list of one)."""
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown} for dataset {dataset!r}; choose from {available}")
    if not names:
        raise ValueError(f"no task chosen; choose at least one of {available}")
    if len(set(names)) != len(names):
        raise ValueError(f"the chosen tasks repeat a name: {names}")
    return names


def check_split_fractions(val_fraction: float, test_fraction: float) -> None:
    """``from_tensors``' validation and test fractions: each in [0, 1), together below 1."""
    for label, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"{label} must be in [0, 1), got {frac!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction + test_fraction}")


def task_names_of(name: str, tasks: list[Task]) -> list[str]:
    """The task names of data set ``name``: at least one, none repeated (``ValueError`` naming them)."""
    names = [t.name for t in tasks]
    if not names:
        raise ValueError(f"dataset {name!r} has no tasks")
    if len(set(names)) != len(names):
        raise ValueError(f"dataset {name!r}: task names repeat: {names}")
    return names


@dataclass(frozen=True)
class MultiTaskData:
    """Tasks plus train/val/test splits.

    Attributes:
        name: dataset name (for reports).
        tasks: the tasks, in head order.
        train, val, test: disjoint splits.
        x_mean, x_std: the normalisation fitted on ``train`` (``None`` when the inputs were left raw).
        augment: optional train-time augmentation ``augment(x, targets, generator)``.
        info: free-form facts for reports (source, sizes, generator constants).
    """

    name: str
    tasks: list[Task]
    train: Split
    val: Split
    test: Split
    x_mean: torch.Tensor | None = None
    x_std: torch.Tensor | None = None
    augment: Augment | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = task_names_of(self.name, self.tasks)
        for split_name in ("train", "val", "test"):
            split = getattr(self, split_name)
            if len(split) == 0 and split_name == "train":
                raise ValueError(f"dataset {self.name!r}: the train split is empty")
            missing = [n for n in names if n not in split.y]
            if missing:
                raise ValueError(f"dataset {self.name!r}: {split_name} split has no targets for tasks {missing}")
            for task in self.tasks:
                task.check_target(split.y[task.name], len(split))
            check_masks(self.name, split_name, split, names, self.info.get("allow_nonfinite", False))
        empty = [t for t in names if self.train.n_labelled(t) == 0]
        if empty:
            raise ValueError(f"dataset {self.name!r}: task(s) {empty} have no labelled row in the train split")

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input (without the batch dimension)."""
        return tuple(self.train.x.shape[1:])

    def task(self, name: str) -> Task:
        """The task called ``name``."""
        return find_task(self.tasks, name)

    def select(self, names: list[str] | tuple[str, ...]) -> MultiTaskData:
        """The same data with only the tasks ``names`` (in that order).

        Rows that have no label for any of ``names`` are dropped (they have nothing to train or score).
        """
        names = check_selection(self.name, self.task_names, names)

        def keep(split: Split) -> Split:
            # replace() keeps the split's own class (a streamed split stays streamed)
            kept = replace(split, y={n: split.y[n] for n in names},
                           mask={n: split.mask[n] for n in names if n in split.mask})
            if len(kept.mask) < len(names):  # a kept task is labelled everywhere: every row stays
                return kept
            # rows without a label for any kept task carry nothing to learn or score: drop them
            any_label = torch.stack([kept.mask[n] for n in names]).any(dim=0)
            return kept if bool(any_label.all()) else kept.take(any_label.nonzero().flatten())

        return replace(
            self,
            tasks=[self.task(n) for n in names],
            train=keep(self.train),
            val=keep(self.val),
            test=keep(self.test),
        )

    def subsample_train(self, fraction: float, seed: int = 0) -> MultiTaskData:
        """Keep a random ``fraction`` of the training rows (for data-efficiency experiments)."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
        n = len(self.train)
        k = max(1, round(fraction * n))
        g = torch.Generator().manual_seed(seed)
        index = torch.randperm(n, generator=g)[:k].sort().values
        return replace(self, train=self.train.take(index))

    def to(self, device: torch.device | str) -> MultiTaskData:
        """All splits on ``device``."""
        return replace(self, train=self.train.to(device), val=self.val.to(device), test=self.test.to(device))

    def summary(self) -> dict:
        """Sizes and task specs, JSON-friendly (with labelled-row counts when some labels are missing)."""
        labelled = {
            split: {t: getattr(self, split).n_labelled(t) for t in self.task_names}
            for split in ("train", "val", "test")
            if getattr(self, split).mask
        }
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
            "tasks": [t.spec() for t in self.tasks],
            **({"labelled": labelled} if labelled else {}),
            **({"info": self.info} if self.info else {}),
        }

    @staticmethod
    def from_tensors(
        x: torch.Tensor,
        targets: dict[str, torch.Tensor],
        tasks: list[Task],
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 0,
        normalize: bool = True,
        name: str = "custom",
        per_feature: bool | None = None,
        masks: dict[str, torch.Tensor] | None = None,
        allow_nonfinite: bool = False,
    ) -> MultiTaskData:
        """Build a dataset from your own tensors: a seeded random split into disjoint train/val/test.

        ``x`` has one row per example; ``targets`` maps every task name to a tensor with as many rows.
        Normalisation uses train statistics per feature for tabular ``x`` and one scalar for images
        (``x`` with 4 dimensions) unless ``per_feature`` says otherwise. NaN or inf in ``x`` or a float
        target is an error naming its rows and columns unless ``allow_nonfinite=True``.

        Missing labels: ``masks`` maps a task to a boolean tensor ``[N]`` (``True`` = this row has a label
        for the task). The target values of unlabelled rows are never read (they may be anything, NaN
        included) and are stored as zeros. A NaN target on a labelled row is an error.
        """
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 2 or x.shape[0] == 0:
            raise ValueError(f"x must have shape [N, ...] with N ≥ 1, got {tuple(x.shape)}")
        names = [t.name for t in tasks]
        if set(names) != set(targets):
            raise ValueError(f"targets has tasks {sorted(targets)}, the task list has {sorted(names)}")
        masks = dict(masks or {})
        unknown = [t for t in masks if t not in names]
        if unknown:
            raise ValueError(f"masks has task(s) {unknown} that are not in the task list {names}")
        targets = dict(targets)
        for task in tasks:
            if task.name in masks:
                check_mask(masks[task.name], x.shape[0], f"masks[{task.name!r}]")
                targets[task.name] = fill_unlabelled(targets[task.name], masks[task.name], task.name)
            task.check_target(targets[task.name], x.shape[0])
        check_inputs(x, targets, seed, allow_nonfinite)
        check_split_fractions(val_fraction, test_fraction)
        n = x.shape[0]
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=g)
        n_val, n_test = round(val_fraction * n), round(test_fraction * n)
        if n - n_val - n_test < 1:
            raise ValueError(f"{n} rows leave no training rows after the val/test split")
        whole = Split(x.float(), targets, masks)
        test = whole.take(order[:n_test])
        val = whole.take(order[n_test : n_test + n_val])
        train = whole.take(order[n_test + n_val :])
        if per_feature is None:
            per_feature = x.dim() < 4
        info = {"allow_nonfinite": True} if allow_nonfinite else None  # the NaN check of each split honours it
        return make_data(name, tasks, train, val, test, normalize=normalize, per_feature=per_feature, info=info)


def check_inputs(x: torch.Tensor, targets: dict[str, torch.Tensor], seed: int, allow_nonfinite: bool) -> None:
    """``from_tensors``' value checks (:mod:`mtl_lab.validate`): finite data, a valid seed."""
    check_seed(seed)
    check_bool("allow_nonfinite", allow_nonfinite)
    check_finite("x", x, allow_nonfinite)
    for task_name, y in targets.items():
        check_finite(f"the targets of task {task_name!r}", y, allow_nonfinite,
                     hint="; if those rows have no label for the task, mark missing labels with masks="
                     "{task: bool tensor} instead of NaN")


def fit_normalizer(x: torch.Tensor, per_feature: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of training inputs (per feature, or one scalar for images).

    A single training row has no spread: its standard deviation is taken as 1 (not NaN).
    """
    if per_feature:
        mean = x.mean(dim=0, keepdim=True)
        std = x.std(dim=0, keepdim=True) if x.shape[0] > 1 else torch.ones_like(mean)
    else:
        mean = x.mean().reshape(1)
        std = x.std().reshape(1) if x.numel() > 1 else torch.ones_like(mean)
    return mean, std.clamp(min=1e-6)


def make_data(
    name: str,
    tasks: list[Task],
    train: Split,
    val: Split,
    test: Split,
    normalize: bool = True,
    per_feature: bool = True,
    augment: Augment | None = None,
    info: dict | None = None,
) -> MultiTaskData:
    """Assemble a :class:`MultiTaskData`, normalising inputs with statistics of ``train`` only."""
    mean = std = None
    if normalize:
        mean, std = fit_normalizer(train.x, per_feature=per_feature)
        train, val, test = (Split((s.x - mean) / std, s.y, s.mask) for s in (train, val, test))
    return MultiTaskData(name, list(tasks), train, val, test, mean, std, augment, dict(info or {}))


def split_indices(n: int, fractions: tuple[float, float, float], seed: int) -> tuple[torch.Tensor, ...]:
    """A seeded random partition of ``range(n)`` into three disjoint index sets (train, val, test)."""
    if len(fractions) != 3:
        raise ValueError(f"fractions must be (train, val, test), got {len(fractions)} entries: {tuple(fractions)}")
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be ≥ 0 and sum to 1, got {fractions}")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g)
    n_train = round(fractions[0] * n)
    n_val = round(fractions[1] * n)
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]


def check_mask(mask: object, n: int, label: str) -> None:
    """Raise ``ValueError`` unless ``mask`` is a boolean tensor of shape ``[n]``."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (n,):
        got = f"shape {tuple(mask.shape)} dtype {mask.dtype}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{label} must be a boolean tensor of shape [{n}] (True = labelled), got {got}")


def check_masks(dataset: str, split_name: str, split: Split, names: list[str], allow_nonfinite: bool = False) -> None:
    """Masks name known tasks, have one boolean per row, and no labelled float target is NaN (unless the data
    were made with ``allow_nonfinite=True``)."""
    unknown = [t for t in split.mask if t not in names]
    if unknown:
        raise ValueError(f"dataset {dataset!r}: {split_name} split has masks for unknown task(s) {unknown}")
    for name in names:
        label = f"dataset {dataset!r}: {split_name} mask of task {name!r}"
        if name in split.mask:
            check_mask(split.mask[name], len(split), label)
        y = split.y[name]
        if not allow_nonfinite and y.dtype.is_floating_point and y.numel() and bool(torch.isnan(y).any()):
            raise ValueError(
                f"dataset {dataset!r}: {split_name} targets of task {name!r} contain NaN; mark missing labels "
                "with a mask (MultiTaskData.from_tensors(..., masks={task: labelled_rows})), not with NaN"
            )


def fill_unlabelled(y: torch.Tensor, mask: torch.Tensor, task: str) -> torch.Tensor:
    """``y`` with its unlabelled rows set to zero: a placeholder no loss or metric reads.

    A labelled row that holds NaN is an error (it would be trained on).
    """
    if not isinstance(y, torch.Tensor) or y.shape[:1] != mask.shape:
        raise ValueError(f"task {task!r}: the target must be a tensor with {mask.shape[0]} rows")
    labelled = y[mask]
    if y.dtype.is_floating_point and labelled.numel() and bool(torch.isnan(labelled).any()):
        raise ValueError(f"task {task!r}: a labelled row's target is NaN; set its mask entry to False instead")
    keep = mask.reshape(-1, *([1] * (y.dim() - 1)))
    return torch.where(keep, y, torch.zeros((), dtype=y.dtype))
