"""Runs: a study expanded into :class:`RunSpec` (plain values, hashed) and :func:`execute`, which trains one.

Every engine (:mod:`mtl_lab.studies.engines`) calls :func:`execute` on each spec; nothing here knows
about engines.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import traceback
from dataclasses import asdict, dataclass

import torch

from mtl_lab.studies.spec import BASELINE, Study, load_data, static_label
from mtl_lab.training import build_trainer


@dataclass(frozen=True)
class RunSpec:
    """One training run, fully described by plain values (so it can travel to a worker and be hashed)."""

    data: str
    data_options: dict
    tasks: tuple[str, ...] | None
    architecture: str
    model_options: dict
    method: str
    method_options: dict
    seed: int
    train: dict
    architecture_label: str
    method_label: str

    def config(self) -> dict:
        """The configuration that decides the run's numbers (the labels are names, not settings)."""
        out = asdict(self)
        del out["architecture_label"], out["method_label"]
        out["tasks"] = list(self.tasks) if self.tasks is not None else None
        return out

    @property
    def key(self) -> str:
        """A hash of :meth:`config` and the versions of torch and mtl_lab: equal keys, equal runs."""
        from mtl_lab import __version__

        text = json.dumps({"config": self.config(), "torch": torch.__version__, "mtl_lab": __version__},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def plan(study: Study, task_names: list[str] | None = None) -> list[RunSpec]:
    """Every run of the study, in table order: per architecture, per method, per seed; baselines last."""
    if task_names is None:
        task_names = load_data(study.data, study.data_options, study.tasks).task_names
    tasks = study.tasks
    jobs = [(m.name, dict(m.options), m.display) for m in study.methods]
    jobs += [("static", {"weights": list(w)}, static_label(w)) for w in study.static_weights]
    specs = []
    for arch in study.architectures:
        for method, options, label in jobs:
            for seed in study.seeds:
                specs.append(RunSpec(study.data, dict(study.data_options), tasks, arch.name, dict(arch.options),
                                     method, options, seed, dict(study.train), arch.display, label))
    if study.baselines:
        for arch in study.architectures:
            for task in task_names:
                for seed in study.seeds:
                    specs.append(RunSpec(study.data, dict(study.data_options), (task,), arch.name,
                                         dict(arch.options), "equal", {}, seed, dict(study.train), arch.display,
                                         BASELINE))
    return specs


def execute(spec: RunSpec, threads: int | None = None) -> dict:
    """Train one run and return its result record; an exception becomes ``status="error"`` with the message.

    ``threads`` sets ``torch.set_num_threads`` for the run (restored afterwards), so that workers sharing
    a machine do not oversubscribe its cores, and so that engines given the same value give the same bits.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    record = {"key": spec.key, "config": spec.config(), "architecture": spec.architecture_label,
              "method": spec.method_label, "seed": spec.seed,
              "tasks": list(spec.tasks) if spec.tasks is not None else None}
    try:
        data = load_data(spec.data, spec.data_options, spec.tasks)
        trainer = build_trainer(data, spec.architecture, spec.method, spec.model_options, spec.method_options,
                                seed=spec.seed, **spec.train)
        history = trainer.fit()
        seconds = float(history.meta["train_seconds"])
        steps = int(history.meta["steps"])
        record.update(status=history.status, test_metrics=dict(history.meta["test_metrics"]), seconds=seconds,
                      steps=steps, steps_per_s=steps / seconds if seconds > 0 else math.nan,
                      higher_is_better={t.name: t.higher_is_better for t in data.tasks},
                      metric_names={t.name: t.metric_name for t in data.tasks})
    except Exception as exc:  # a failing run is a result, not the end of the study
        record.update(status="error", error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc(limit=6), seconds=time.perf_counter() - started)
    finally:
        torch.set_num_threads(previous)
    return record


# ---------------------------------------------------------------------------------------------- statistics
