"""Multi-input data: every task has its own inputs, and its own train/val/test rows.

In the ordinary form (:class:`~mtl_lab.data.base.MultiTaskData`) the tasks share their inputs: one image,
several labels. In the **multi-input** form (LibMTL's ``multi_input``; Office-31 and Office-Home, where each
image domain is a task) task ``t`` has a data set of its own, ``(x_t, y_t)``, of its own size; the tasks
share the model (its encoder) and nothing else. Training then draws, at every step, one batch per task
from that task's rows (:mod:`mtl_lab.training.inputs`), and evaluation scores each task on its own rows.

:class:`MultiInputData` holds the tasks and three :class:`TaskSplits` (``train``, ``val``, ``test``): a
mapping from each task to a :class:`~mtl_lab.data.base.Split` whose targets hold that task only. Every
task's inputs have the same shape (one encoder reads them all). :meth:`MultiInputData.from_tensors` builds
one from your own per-task tensors; normalisation is fitted on the training rows of all tasks together
(one encoder, one input scale).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import torch

from mtl_lab.data.base import (
    Augment,
    Split,
    check_selection,
    check_split_fractions,
    find_task,
    fit_normalizer,
    task_names_of,
)
from mtl_lab.tasks import Task
from mtl_lab.validate import check_finite, check_seed


@dataclass(frozen=True)
class TaskSplits:
    """One split of multi-input data: each task's own rows (``splits[task]``, targets of that task only)."""

    splits: dict[str, Split]

    def __getitem__(self, task: str) -> Split:
        return self.splits[task]

    def __iter__(self) -> Iterator[str]:
        return iter(self.splits)

    def __len__(self) -> int:
        """The rows of every task together."""
        return sum(len(s) for s in self.splits.values())

    def items(self):
        return self.splits.items()

    def sizes(self) -> dict[str, int]:
        """Each task's number of rows."""
        return {task: len(s) for task, s in self.splits.items()}

    def to(self, device: torch.device | str) -> TaskSplits:
        return TaskSplits({task: s.to(device) for task, s in self.splits.items()})


@dataclass(frozen=True)
class MultiInputData:
    """Tasks, each with its own train/val/test rows (see the module docstring).

    Attributes:
        name: dataset name (for reports).
        tasks: the tasks, in head order.
        train, val, test: :class:`TaskSplits`; ``train[t]`` has at least one row for every task.
        x_mean, x_std: the normalisation fitted on the training rows of all tasks (``None``: raw inputs).
        augment: optional train-time augmentation, applied to each task's batch.
        info: free-form facts for reports.
    """

    name: str
    tasks: list[Task]
    train: TaskSplits
    val: TaskSplits
    test: TaskSplits
    x_mean: torch.Tensor | None = None
    x_std: torch.Tensor | None = None
    augment: Augment | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = task_names_of(self.name, self.tasks)
        shapes = set()
        for split_name in ("train", "val", "test"):
            part = getattr(self, split_name)
            if list(part) != names:
                raise ValueError(f"dataset {self.name!r}: the {split_name} split has tasks {list(part)}, "
                                 f"expected {names} (each task its own rows)")
            for task in self.tasks:
                rows = part[task.name]
                if list(rows.y) != [task.name]:
                    raise ValueError(f"dataset {self.name!r}: {split_name} rows of task {task.name!r} hold targets "
                                     f"{list(rows.y)}, expected only {[task.name]}")
                task.check_target(rows.y[task.name], len(rows))
                if len(rows):
                    shapes.add(tuple(rows.x.shape[1:]))
        empty = [t for t in names if len(self.train[t]) == 0]
        if empty:
            raise ValueError(f"dataset {self.name!r}: task(s) {empty} have no training rows")
        if len(shapes) > 1:
            raise ValueError(f"dataset {self.name!r}: the tasks' inputs differ in shape {sorted(shapes)}; one "
                             "encoder reads them all, so every input needs the same shape")

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input (the same for every task)."""
        return tuple(self.train[self.task_names[0]].x.shape[1:])

    def task(self, name: str) -> Task:
        """The task called ``name``."""
        return find_task(self.tasks, name)

    def select(self, names: list[str] | tuple[str, ...]) -> MultiInputData:
        """The same data with only the tasks ``names`` (in that order), each with its own rows."""
        names = check_selection(self.name, self.task_names, names)

        def keep(part: TaskSplits) -> TaskSplits:
            return TaskSplits({n: part[n] for n in names})

        return replace(self, tasks=[self.task(n) for n in names], train=keep(self.train), val=keep(self.val),
                       test=keep(self.test))

    def to(self, device: torch.device | str) -> MultiInputData:
        return replace(self, train=self.train.to(device), val=self.val.to(device), test=self.test.to(device))

    def summary(self) -> dict:
        """Sizes (per task) and task specs, JSON-friendly."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "multi_input": True,
            "sizes": {s: getattr(self, s).sizes() for s in ("train", "val", "test")},
            "tasks": [t.spec() for t in self.tasks],
            **({"info": self.info} if self.info else {}),
        }

    @staticmethod
    def from_tensors(
        inputs: dict[str, torch.Tensor],
        targets: dict[str, torch.Tensor],
        tasks: list[Task],
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 0,
        normalize: bool = True,
        name: str = "custom",
        per_feature: bool | None = None,
    ) -> MultiInputData:
        """Multi-input data from your own tensors: ``inputs[t]`` and ``targets[t]`` are task ``t``'s rows.

        Each task's rows get their own seeded random split into disjoint train/val/test (the fractions are
        per task; task ``k`` draws its permutation from ``seed + k``). Normalisation as
        :meth:`MultiTaskData.from_tensors <mtl_lab.data.base.MultiTaskData.from_tensors>`, fitted on the
        training rows of every task together.
        """
        check_seed(seed)
        names = [t.name for t in tasks]
        for label, given in (("inputs", inputs), ("targets", targets)):
            if not isinstance(given, dict) or set(given) != set(names):
                got = sorted(given) if isinstance(given, dict) else type(given).__name__
                raise ValueError(f"{label} must map every task to its own tensor: tasks {names}, got {got}")
        check_split_fractions(val_fraction, test_fraction)
        shapes = {tuple(x.shape[1:]) for x in inputs.values() if isinstance(x, torch.Tensor)}
        if len(shapes) > 1:
            raise ValueError(f"the tasks' inputs differ in shape {sorted(shapes)}; one encoder reads them all, so "
                             "every input needs the same shape")
        parts: dict[str, dict[str, Split]] = {"train": {}, "val": {}, "test": {}}
        for k, task in enumerate(tasks):
            x, y = inputs[task.name], targets[task.name]
            if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[0] == 0:
                shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                raise ValueError(f"inputs[{task.name!r}] must be a tensor [N, ...] with N ≥ 1, got {shape}")
            task.check_target(y, x.shape[0])
            check_finite(f"inputs[{task.name!r}]", x, False)
            check_finite(f"the targets of task {task.name!r}", y, False)
            n = x.shape[0]
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + k))
            n_val, n_test = round(val_fraction * n), round(test_fraction * n)
            if n - n_val - n_test < 1:
                raise ValueError(f"task {task.name!r}: {n} rows leave no training rows after the val/test split")
            whole = Split(x.float(), {task.name: y})
            parts["test"][task.name] = whole.take(order[:n_test])
            parts["val"][task.name] = whole.take(order[n_test : n_test + n_val])
            parts["train"][task.name] = whole.take(order[n_test + n_val :])
        mean = std = None
        if normalize:
            pooled = torch.cat([s.x for s in parts["train"].values()])
            mean, std = fit_normalizer(pooled, per_feature=pooled.dim() < 4 if per_feature is None else per_feature)
            for split in parts.values():
                for task_name, s in split.items():
                    split[task_name] = Split((s.x - mean) / std, s.y)
        splits = {key: TaskSplits(value) for key, value in parts.items()}
        return MultiInputData(name, list(tasks), splits["train"], splits["val"], splits["test"], mean, std)
