"""What a Trainer builds once from its configuration: parameter groups, guard, optimiser, schedule, Gramian engine.

Each function takes plain arguments and returns one object, so the Trainer's set-up reads as a list.
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from mtl_lab.data.base import MultiTaskData
from mtl_lab.gradients import LinearGramian
from mtl_lab.models.base import MultiTaskModel
from mtl_lab.training.config import TrainConfig
from mtl_lab.training.guards import NonFiniteGuard
from mtl_lab.weighting import Weighting


def check_inputs(model: MultiTaskModel, data: MultiTaskData, c: TrainConfig) -> None:
    """A model for these tasks, a training split with rows, and an augmentation when one is asked for."""
    if not isinstance(model, MultiTaskModel):
        raise ValueError(f"model must be a MultiTaskModel, got {type(model).__name__}")
    if model.task_names != data.task_names:
        raise ValueError(f"the model's tasks {model.task_names} differ from the data's tasks {data.task_names}")
    if len(data.train) < 1:
        raise ValueError("the training split is empty")
    if c.augment and data.augment is None:  # never silently ignored
        raise ValueError(f"augment=True, but data set {data.name!r} has no training augmentation; load it with "
                         "augment=True where the data set offers one (digits, localization) or leave augment off")


def parameter_groups(model: MultiTaskModel, task_names: list[str],
                     weighting: Weighting) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    """``(shared, heads)``: the parameters a gradient method acts on, and each task's own.

    Every trainable parameter must be either shared or owned by exactly one task. Without a shared trunk a
    gradient method acts on every task's parameters (see :mod:`mtl_lab.training`): they become ``shared``.
    """
    shared = list(model.shared_parameters())
    heads = [list(model.task_parameters(n)) for n in task_names]
    seen: dict[int, str] = {id(p): "shared" for p in shared}
    for name, params in zip(task_names, heads):
        for p in params:
            if id(p) in seen:
                raise ValueError(f"a parameter of task {name!r} is also listed as {seen[id(p)]}")
            seen[id(p)] = f"task {name!r}"
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        raise ValueError(f"parameters {missing} are neither shared nor owned by a task")
    if not model.has_shared_trunk and weighting.requires_grads:
        return [p for params in heads for p in params], [[] for _ in heads]
    return shared, heads


def make_guard(model: MultiTaskModel, task_names: list[str], device: torch.device, mode: str) -> NonFiniteGuard:
    """The non-finite guard over every trainable parameter, each labelled with its owner."""
    owner = {id(p): "shared" for p in model.shared_parameters()}
    for name in task_names:
        owner.update({id(p): f"task {name!r}" for p in model.task_parameters(name)})
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    labels = [f"{owner.get(id(p), 'model')} parameter {n!r}" for n, p in named]
    deferred = device.type != "cpu" if mode == "auto" else mode == "device"
    return NonFiniteGuard(device, deferred, labels)


def make_optimizer(params: list[torch.Tensor], c: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimiser over ``params`` (every trainable parameter), on PyTorch's fused kernels.

    ``fused=True`` on every device the lab runs on (CPU, CUDA, MPS): one kernel updates every parameter and
    its moments. On the CPU it is 2.5× faster than the ``foreach`` path for Adam and AdamW (the digits MLP's
    90 k parameters: 92 against 252 µs a step, 304 µs for PyTorch's CPU default, the per-tensor loop;
    ``benchmarks/README.md``), which is most of why a step of the Trainer is faster than a hand-written
    loop's. Its updates agree with the per-tensor loop to float32 rounding, not bitwise: the kernel orders
    its operations differently (tested). The fused optimisers also take the non-finite guard's device-side
    flag as ``found_inf`` and skip their update when it is set (:mod:`mtl_lab.training.guards`).
    """
    if c.optimizer == "adam":
        return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay, fused=True)
    if c.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay, fused=True)
    return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay, fused=True)


def make_scheduler(optimizer: torch.optim.Optimizer, c: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler | None:
    if c.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=c.step_size, gamma=c.gamma)
    if c.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=c.epochs)
    return None


def make_gramian_engine(model: MultiTaskModel, shared: list[torch.Tensor], weighting: Weighting,
                        gradient_path: str) -> LinearGramian | None:
    """The Gramian path (opt-in): for methods that need only ``K``, on a trunk of linear layers.

    ``gradient_path="auto"`` takes the Jacobian path: on CPU the Gramian path measured slower in every
    configuration of ``benchmarks/bench_core.py`` (0.70–0.83 × the Jacobian path's steps/s), and it
    has not been measured on a GPU. ``gradient_path="gramian"`` turns it on.
    """
    if gradient_path == "gramian" and weighting.requires != "gramian":  # one rule: refused
        raise ValueError(
            f"gradient_path='gramian' does not apply to method {weighting.name!r}: it needs "
            f"requires={weighting.requires!r}, not the Gramian alone (methods such as mgda, pcgrad, cagrad, "
            "upgrad take it); leave gradient_path at 'auto'"
        )
    if gradient_path != "gramian":
        return None  # (rep_grads=True with gradient_path="gramian" is refused by TrainConfig)
    if not LinearGramian.applies_to(model, shared):
        raise ValueError("gradient_path='gramian' needs a trunk made of nn.Linear layers (e.g. trunk='mlp')")
    return LinearGramian(model, shared)


def describe_run(c: TrainConfig, weighting: Weighting, model: MultiTaskModel, data: MultiTaskData,
                 device: torch.device, engine: LinearGramian | None) -> dict:
    """Run metadata for the History (JSON-friendly)."""
    return {
        "status": "new",
        "config": asdict(c),
        "method": weighting.config(),
        "model": model.describe(),
        "data": data.summary(),
        "device": str(device),
        "torch": str(torch.__version__),
        "threads": torch.get_num_threads(),
        "seed": c.seed,
        "gradient_path": "gramian" if engine is not None else "jacobian",
        "diagnostics": diagnostics_note(model, c.diagnostics_every),
        "method_acts_on": "shared parameters" if model.has_shared_trunk else "every task's parameters",
    }


def diagnostics_note(model: MultiTaskModel, every: int) -> str:
    """Why there will be no gradient diagnostics, or ``""`` when there will be."""
    if not model.has_shared_trunk:
        return f"not applicable: the {model.architecture} architecture has no shared trunk"
    if every == 0:
        return "gradient diagnostics are off (diagnostics_every=0)"
    return ""
