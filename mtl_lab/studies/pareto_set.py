"""Pareto-set learning end to end: build and train one preference-conditioned model, trace its front,
and score it against the sweep's front.

* :func:`build_pareto_set_trainer` — one :class:`~mtl_lab.models.preference.PreferenceSampler` shared by the
  model (:class:`~mtl_lab.models.preference_conditioned.PreferenceConditioned`, COSMOS, or
  :class:`~mtl_lab.models.pareto_hypernetwork.ParetoHyperNetwork`, PHN) and its loss
  (:class:`~mtl_lab.weighting.cosmos_sampled.SampledCOSMOS`), in an ordinary :class:`~mtl_lab.training.Trainer`:
  the Trainer has no branch for it — the model draws the next preference in its ``after_step`` hook.
* :func:`learned_front` — the trained model evaluated at a grid of preferences (forward passes only):
  one metrics dict per preference, like the sweep's points.
* :func:`learned_front_figure` — the learned front over a grid of preferences beside the sweep's points.
* :func:`compare_fronts` — hypervolume and IGD+ (:mod:`mtl_lab.metrics`) of the learned points and of the
  sweep's static points, on the same reference point, against the same reference front: the
  non-dominated points of both sets together (the best front either method found).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from mtl_lab import validate
from mtl_lab.data.base import MultiTaskData
from mtl_lab.metrics import hypervolume, igd_plus, minimisation_points, nadir_reference
from mtl_lab.models.pareto_hypernetwork import ParetoHyperNetwork
from mtl_lab.models.preference import DEFAULT_ALPHA, PreferenceSampler
from mtl_lab.models.preference_conditioned import PreferenceConditioned
from mtl_lab.palette import NEUTRAL, method_color
from mtl_lab.studies.sweep import SweepResult, front
from mtl_lab.training import Trainer
from mtl_lab.training.evaluation import evaluate_split
from mtl_lab.weighting.cosmos_sampled import DEFAULT_PENALTY, SampledCOSMOS

PreferenceModel = PreferenceConditioned | ParetoHyperNetwork  # a model that reads a preference


PARETO_SET_MODELS: dict[str, type[PreferenceModel]] = {
    PreferenceConditioned.architecture: PreferenceConditioned,  # COSMOS: r is an input of every layer
    ParetoHyperNetwork.architecture: ParetoHyperNetwork,  # PHN: r generates the weights
}
BUILT_HERE = ("self", "tasks", "input_shape", "sampler", "hidden")  # what build_pareto_set_trainer passes itself


def build_pareto_set_trainer(
    data: MultiTaskData,
    architecture: str = PreferenceConditioned.architecture,
    alpha: float = DEFAULT_ALPHA,
    penalty: float = DEFAULT_PENALTY,
    hidden: tuple[int, ...] | list[int] = (64, 64),
    model_options: dict | None = None,
    seed: int = 0,
    **train_options,
) -> Trainer:
    """The sampler (seeded with ``seed``), the model (initialised from ``seed``), its loss, and a Trainer.

    ``architecture`` is ``preference_conditioned`` (COSMOS) or ``pareto_hypernetwork`` (PHN);
    ``model_options`` are that model's own (``condition``; ``ray_hidden``), refused by name when they do
    not apply. ``train_options`` go to the Trainer (``epochs``, ``lr``, ``batch_size`` …). The model's
    sampler is ``trainer.model.sampler``, the same object as ``trainer.weighting.sampler``.
    """
    validate.check_choice("architecture", architecture, tuple(PARETO_SET_MODELS))
    cls = PARETO_SET_MODELS[architecture]
    options = dict(model_options or {})
    allowed = [n for n in inspect.signature(cls.__init__).parameters if n not in BUILT_HERE]
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise ValueError(f"model option(s) {unknown} do not apply to {architecture}; allowed: {allowed}")
    validate.check_model_options(cls, options, architecture)
    sampler = PreferenceSampler(len(data.task_names), alpha, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(list(data.tasks), tuple(data.input_shape), sampler, hidden, **options)
    return Trainer(model, data, SampledCOSMOS(sampler, penalty), seed=seed, **train_options)


def learned_front(
    model: PreferenceModel, data: MultiTaskData, preferences: list[list[float]], split: str = "val"
) -> list[dict[str, float]]:
    """The model's per-task metrics on ``split`` at each preference (evaluation mode; the model's own
    evaluation preference is put back afterwards)."""
    kept = model.evaluation_preference.clone()
    points = []
    try:
        for r in preferences:
            model.set_preference(r)
            points.append(evaluate_split(model, data, list(data.tasks), split)[1])
    finally:
        model.evaluation_preference.copy_(kept)
    return points


@dataclass
class FrontComparison:
    """Hypervolume (↑) and IGD+ (↓) of the learned points and of the sweep's static points.

    ``reference`` is the hypervolume's reference point (worst value of each metric over both sets plus
    10 % of its range, metrics where higher is better negated); ``front`` the reference front of IGD+
    (the non-dominated points of both sets together, in the same minimisation coordinates).
    """

    hv_learned: float
    hv_sweep: float
    igd_learned: float
    igd_sweep: float
    reference: list[float]
    front: list[list[float]]

    def text(self) -> str:
        ratio = f"{self.hv_learned / self.hv_sweep:.3f}" if self.hv_sweep > 0 else "undefined: the sweep's is 0"
        return (f"hypervolume learned {self.hv_learned:.4g} vs sweep {self.hv_sweep:.4g} "
                f"(ratio {ratio}); IGD+ learned {self.igd_learned:.4g} vs "
                f"sweep {self.igd_sweep:.4g} (against the non-dominated points of both)")


def compare_fronts(learned: list[dict[str, float]], sweep_result: SweepResult, margin: float = 0.1) -> FrontComparison:
    """Score the learned points and the sweep's static points on one reference point and one reference front."""
    up = sweep_result.higher_is_better
    sweep_metrics = [p.metrics for p in sweep_result.static]
    both = learned + sweep_metrics
    points = minimisation_points(both, up)
    if not np.isfinite(points).all():
        raise ValueError("every learned and sweep point needs finite metrics to be compared")
    reference = nadir_reference(points, margin)
    best = points[front(both, up)]
    n = len(learned)
    return FrontComparison(
        hv_learned=hypervolume(points[:n], reference), hv_sweep=hypervolume(points[n:], reference),
        igd_learned=igd_plus(points[:n], best), igd_sweep=igd_plus(points[n:], best),
        reference=reference.tolist(), front=best.tolist(),
    )


def learned_front_figure(
    learned: list[dict[str, float]],
    sweep_result: SweepResult | None,
    pair: tuple[str, str],
    current: dict[str, float] | None = None,
    metric_names: dict[str, str] | None = None,
    figsize: tuple[float, float] = (5.2, 4.2),
) -> Figure:
    """The learned points (joined in the order of their preferences), the sweep's static points (grey) and,
    when given, the model at one preference (a large dot), on the plane of the two tasks of ``pair``."""
    a, b = pair
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    colour = method_color(SampledCOSMOS.name)
    if sweep_result is not None and sweep_result.static:
        ax.scatter([p.metrics[a] for p in sweep_result.static], [p.metrics[b] for p in sweep_result.static],
                   s=30, color="#bbbbbb", edgecolors=NEUTRAL, zorder=3, label="sweep (one model per weight)")
    ax.plot([m[a] for m in learned], [m[b] for m in learned], "-", color=colour, lw=2, alpha=0.7, zorder=2,
            label="learned front (one model)")
    if current is not None:
        ax.plot(current[a], current[b], "o", ms=10, color=colour, markeredgecolor="black", zorder=4,
                label="the model at the shown preference")
    names = metric_names or {}
    ax.set_xlabel(f"{a}: {names.get(a, 'metric')}")
    ax.set_ylabel(f"{b}: {names.get(b, 'metric')}")
    ax.legend(fontsize=8)
    return fig
