"""Task cascades: a task's head also reads the predictions of the tasks it depends on.

After Hashimoto, Xiong, Tsuruoka and Socher, "A Joint Many-Task Model: Growing a Neural Network for
Multiple NLP Tasks", EMNLP 2017, where higher-level tasks read the predicted labels of lower-level
ones. Given a dependency graph — ``{"parity": ["digit"], "ge5": ["digit"]}`` says that the parity and
≥5 heads see the digit head's prediction — and a shared trunk ``r = f(x)``::

    p_s = prediction of task s           # softmax (multiclass), sigmoid (binary, box), identity (regression)
    y_t = h_t([r ; p_s for every parent s of t])

The heads run in a topological order of the graph, so parents are computed first; a cycle, a task
that depends on itself or an unknown name is an error. The parents' predictions are **detached**:
a child's loss does not train its parent's head (each head is trained by its own task's loss alone,
which keeps the heads' parameter groups exact for the gradient methods), but it does reach the shared
trunk through ``r``. The child can only learn to *use* its parents' answers — with parity ← digit
it can learn "odd digit ⇒ parity 1" from the digit probabilities.

With no dependencies (the default) the model is hard sharing. Defaults: the hard-sharing trunk and
linear heads.
"""

from __future__ import annotations

import torch
from torch import nn

from mtl_lab.models.base import MultiTaskModel
from mtl_lab.models.hard import make_head
from mtl_lab.models.trunks import build_trunk
from mtl_lab.tasks import Task


def prediction(task: Task, output: torch.Tensor) -> torch.Tensor:
    """What a dependent head reads of ``task``'s raw output: probabilities, or the values themselves."""
    if task.kind == "multiclass":
        return torch.softmax(output, dim=-1)
    if task.kind in ("binary", "box"):
        return torch.sigmoid(output)
    return output


def check_dependencies(dependencies: dict | None, task_names: list[str]) -> dict[str, list[str]]:
    """``{task: [parents]}`` for every task (empty lists included), after checking names and self-loops."""
    dependencies = dict(dependencies or {})
    result = {name: [] for name in task_names}
    for child, parents in dependencies.items():
        if child not in task_names:
            raise ValueError(f"dependencies name unknown task {child!r}; the tasks are {task_names}")
        if isinstance(parents, str):
            parents = [parents]
        unknown = [p for p in parents if p not in task_names]
        if unknown:
            raise ValueError(f"task {child!r} depends on unknown task(s) {unknown}; the tasks are {task_names}")
        if child in parents:
            raise ValueError(f"task {child!r} cannot depend on itself")
        result[child] = list(dict.fromkeys(parents))
    return result


def topological_order(parents: dict[str, list[str]], task_names: list[str]) -> list[str]:
    """Tasks ordered so that every parent comes before its children (ties keep the task order)."""
    order: list[str] = []
    remaining = list(task_names)
    while remaining:
        ready = [n for n in remaining if all(p in order for p in parents[n])]
        if not ready:
            raise ValueError(f"dependencies form a cycle among tasks {find_cycle(parents, remaining)}")
        order.append(ready[0])
        remaining.remove(ready[0])
    return order


def find_cycle(parents: dict[str, list[str]], candidates: list[str]) -> list[str]:
    """One cycle, as a path ``[a, b, …, a]`` following parent links (called only when one exists)."""
    path = [candidates[0]]
    while True:
        nxt = next(p for p in parents[path[-1]] if p in candidates)
        if nxt in path:
            return path[path.index(nxt) :] + [nxt]
        path.append(nxt)


class Cascade(MultiTaskModel):
    """A shared trunk and heads that read the trunk and their parents' (detached) predictions."""

    architecture = "cascade"

    def __init__(
        self,
        tasks: list[Task],
        input_shape: tuple[int, ...],
        dependencies: dict[str, list[str]] | None = None,
        trunk: str = "mlp",
        head_hidden: tuple[int, ...] = (),
        **trunk_options,
    ) -> None:
        super().__init__(tasks)
        self.parents = check_dependencies(dependencies, self.task_names)
        self.order = topological_order(self.parents, self.task_names)
        self.by_name = {t.name: t for t in tasks}
        self.trunk = build_trunk(trunk, input_shape, **trunk_options)
        width = self.trunk.out_dim
        self.heads = nn.ModuleDict()
        for t in tasks:
            extra = sum(self.by_name[p].out_dim for p in self.parents[t.name])
            self.heads[t.name] = make_head(width + extra, t.out_dim, tuple(head_hidden))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def decode(self, rep: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs: dict[str, torch.Tensor] = {}
        for name in self.order:
            seen = [prediction(self.by_name[p], outputs[p]).detach() for p in self.parents[name]]
            outputs[name] = self.heads[name](torch.cat([rep] + seen, dim=1))
        return {name: outputs[name] for name in self.task_names}

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def task_parameters(self, name: str) -> list[nn.Parameter]:
        self.check_task(name)
        return list(self.heads[name].parameters())

    def describe(self) -> dict:
        return {**super().describe(), "dependencies": {k: v for k, v in self.parents.items() if v}, "order": self.order}
