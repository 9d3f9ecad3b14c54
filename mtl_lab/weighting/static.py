"""Static weighting: a fixed, user-chosen weighted sum of task losses.

Update rule: minimise ``Σ_t w_t L_t`` with constant ``w_t ≥ 0`` (optionally rescaled so that
``Σ_t w_t = 1``); the shared parameters move along ``Σ_t w_t g_t``. This is the classic hand-tuned
multi-task objective; the weights may be changed between steps with :meth:`Static.set_weights`
(the live lab's sliders do this), and the change applies from the next step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from mtl_lab.validate import Flag, TaskWeights, check_declared, check_task_weights
from mtl_lab.weighting.base import Combination, StepContext, Weighting

WeightSpec = Sequence[float] | Mapping[str, float] | None


def resolve_weights(weights: WeightSpec, task_names: list[str], normalize: bool) -> list[float]:
    """Turn a list or a ``{task: weight}`` dict into one checked weight per task.

    Missing dict entries default to 1; a string or a single number is an error, never read as a list
    (:func:`mtl_lab.validate.check_task_weights`). Raises ``ValueError`` naming the bad value.
    """
    out = check_task_weights(weights, task_names)
    if normalize:
        total = sum(out)
        out = [v / total for v in out]
    return out


class Static(Weighting):
    """Fixed weights ``w_t`` given by the user; ``normalize=True`` rescales them to sum to 1."""

    name = "static"
    description = "Fixed hand-chosen weights w_t on the task losses (optionally summing to 1)."
    options = {
        "weights": TaskWeights(),  # one per task, or {task: weight}
        "normalize": Flag(),  # divide by their sum
    }

    def __init__(self, weights: WeightSpec = None, normalize: bool = False) -> None:
        super().__init__(weights=weights, normalize=normalize)
        self.weights = weights
        self.normalize = normalize
        self.values: list[float] = []
        self.weight_tensor: torch.Tensor | None = None  # cached on the losses' device (no copy per step)

    def reset(self, task_names: list[str]) -> None:
        super().reset(task_names)
        self.values = resolve_weights(self.weights, self.task_names, self.normalize)
        self.weight_tensor = None

    def set_weights(self, weights: WeightSpec) -> None:
        """Change the weights; they are checked now and used from the next step on."""
        check_declared(f"{self.name} option weights", weights, self.options["weights"])
        values = resolve_weights(weights, self.task_names, self.normalize)
        self.weights = weights
        self.values = values
        self.weight_tensor = None

    def combine(self, losses: torch.Tensor, grads: torch.Tensor | None, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        w = self.weight_tensor
        if w is None or w.device != losses.device or w.dtype != losses.dtype:
            w = torch.tensor(self.values, dtype=losses.dtype).to(losses.device, non_blocking=True)
            self.weight_tensor = w
        return Combination(w)

    def config(self) -> dict:
        weights = dict(self.weights) if isinstance(self.weights, Mapping) else self.weights
        if weights is not None and not isinstance(weights, dict):
            weights = list(weights)
        return {"name": self.name, "weights": weights, "normalize": self.normalize}
