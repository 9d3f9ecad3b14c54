"""Task grouping: a common stem, one shared branch per group of tasks, one head per task.

Tasks that help each other should share more than tasks that do not (Standley, Zamir, Chen, Guibas,
Malik and Savarese, "Which Tasks Should Be Learned Together in Multi-task Learning?", ICML 2020;
branched networks in Vandenhende, Georgoulis, De Brabandere and Van Gool, "Branched Multi-Task
Networks: Deciding What Layers To Share", BMVC 2020). With the tasks split into groups ``G_1 … G_m``::

    r   = f(x)                        # the stem, shared by every task
    z_g = b_g(r)                      # one branch per group, shared by that group's tasks
    y_t = h_t(z_{g(t)})               # each task's head reads its group's branch

One group holding every task is hard sharing with a deeper trunk; one group per task is a shared stem
with task-specific upper layers. ``groups`` is a list of lists of task names (or a dict
``{group name: [tasks]}``); every task must be in exactly one group. ``groups=None`` puts tasks of the
same kind together (classification — multiclass and binary —, regression, boxes): a first guess to
replace. Groups can also be found from the data: :func:`mtl_lab.grouping.auto_groups` measures how
the tasks affect each other in a short probe run and proposes groups; ``groups="auto"`` given to
:func:`mtl_lab.training.build_trainer` does exactly that (the constructor alone cannot: it has no data).

Defaults: an MLP stem with one hidden layer of 256 units and branches of one layer as wide as the
stem's output, so that with a single group the sizes equal the hard-sharing default trunk (256, 256).

A branch used by two or more tasks is shared; a branch of a one-task group belongs to that task.
:meth:`Grouped.encode` returns ``[r | z_g for every shared group]``; a one-task group's branch is
computed in :meth:`Grouped.decode` from the ``r`` part.
"""

from __future__ import annotations

import torch
from torch import nn

from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.hard import make_head
from mtl_lab.models.trunks import MLPTrunk, build_trunk
from mtl_lab.tasks import Task

KIND_FAMILY = {"multiclass": "classification", "binary": "classification", "regression": "regression", "box": "box"}


def groups_by_kind(tasks: list[Task]) -> dict[str, list[str]]:
    """Tasks of the same family of kinds together, in task order."""
    groups: dict[str, list[str]] = {}
    for task in tasks:
        groups.setdefault(KIND_FAMILY[task.kind], []).append(task.name)
    return groups


def check_groups(groups, task_names: list[str]) -> dict[str, list[str]]:
    """``groups`` as ``{group name: [task names]}``, after checking it partitions ``task_names``."""
    if groups is None:
        raise ValueError("groups is None; build the default with groups_by_kind(tasks)")
    if isinstance(groups, str):
        if groups == "auto":
            raise ValueError(
                "groups='auto' needs the data for a probe run: pass it to mtl_lab.training.build_trainer, or call "
                "mtl_lab.grouping.auto_groups(data) and give its groups to this model"
            )
        raise ValueError(f"groups must be a list of lists of task names, a dict, None or 'auto'; got {groups!r}")
    if isinstance(groups, dict):
        named = {str(k): list(v) for k, v in groups.items()}
    else:
        named = {f"group {i + 1}": list(g) for i, g in enumerate(groups)}
    seen: list[str] = []
    for label, members in named.items():
        if not members:
            raise ValueError(f"{label} is empty; every group needs at least one task")
        unknown = [m for m in members if m not in task_names]
        if unknown:
            raise ValueError(f"{label} names unknown task(s) {unknown}; the tasks are {task_names}")
        seen += members
    repeated = sorted({n for n in seen if seen.count(n) > 1})
    if repeated:
        raise ValueError(f"task(s) {repeated} appear in more than one group; each task belongs to exactly one")
    missing = [n for n in task_names if n not in seen]
    if missing:
        raise ValueError(f"task(s) {missing} are in no group; every task must be in one of {list(named.values())}")
    return named


class Grouped(MultiTaskModel):
    """A shared stem, a branch per task group, a head per task."""

    architecture = "grouped"

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        groups: list[list[str]] | dict[str, list[str]] | str | None = None,
        trunk: str = "mlp",
        branch_hidden: tuple[int, ...] | None = None,
        head_hidden: tuple[int, ...] = (),
        affinity: dict | None = None,
        **trunk_options,
    ) -> None:
        super().__init__(tasks)
        self.groups = groups_by_kind(tasks) if groups is None else check_groups(groups, self.task_names)
        self.group_of = {name: label for label, members in self.groups.items() for name in members}
        self.affinity = affinity  # the probe's record when the groups were found automatically
        if trunk == "mlp":
            trunk_options.setdefault("hidden", (256,))
        self.stem = build_trunk(trunk, input_shape, **trunk_options)
        width = self.stem.out_dim
        hidden = tuple(branch_hidden) if branch_hidden is not None else (width,)
        self.branches = nn.ModuleDict({label: MLPTrunk((width,), hidden=hidden) for label in self.groups})
        branch_width = hidden[-1]
        self.heads = nn.ModuleDict({t.name: make_head(branch_width, t.out_dim, tuple(head_hidden)) for t in tasks})
        self.shared_groups = [label for label, members in self.groups.items() if len(members) > 1]
        self.stem_width, self.branch_width = width, branch_width

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``[r | z_g for every group of two or more tasks]``."""
        r = self.stem(x)
        return torch.cat([r] + [self.branches[label](r) for label in self.shared_groups], dim=1)

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        r = rep[:, : self.stem_width]
        parts = rep[:, self.stem_width :].split(self.branch_width, dim=1)
        features = dict(zip(self.shared_groups, parts))
        result = {}
        for name in self.task_names:
            label = self.group_of[name]
            z = features[label] if label in features else self.branches[label](r)
            result[name] = self.heads[name](z)
        return result

    def shared_parameters(self) -> list[nn.Parameter]:
        branches = [p for label in self.shared_groups for p in self.branches[label].parameters()]
        return list(self.stem.parameters()) + branches

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        label = self.group_of[name]
        own_branch = [] if label in self.shared_groups else list(self.branches[label].parameters())
        return own_branch + list(self.heads[name].parameters())

    def describe(self) -> dict:
        record = {**super().describe(), "groups": {k: list(v) for k, v in self.groups.items()}}
        if self.affinity is not None:
            record["affinity"] = self.affinity
        return record
