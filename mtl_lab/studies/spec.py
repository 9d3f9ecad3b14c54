"""A study file: what to run (data, tasks, architectures, methods, static weights, seeds, training).

:class:`Study` is the declarative grid; :func:`load_study` reads it from TOML or JSON and
:func:`study_from_dict` checks it; :data:`EXAMPLE` is one. See :mod:`mtl_lab.studies` for the whole flow.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mtl_lab.models import ARCHITECTURES
from mtl_lab.studies.sweep import weight_grid
from mtl_lab.training import TrainConfig
from mtl_lab.weighting import METHODS

BASELINE = "single-task"

EXAMPLE = """\
# An mtl_lab study: 3 methods × 2 architectures × 3 seeds on digits, with single-task baselines for Δm %.
# Run it with `mtl-lab study example.toml --out reports/study` (add `--engine processes` or `--engine ray`).
name = "digits: three methods on two architectures"
data = "digits"
tasks = ["digit", "parity", "recon"]        # leave out to use every task of the data set
seeds = [0, 1, 2]
baselines = true                            # single-task runs (same architecture and seed) for Δm %

[train]                                     # any TrainConfig option
epochs = 4
batch_size = 64
lr = 0.001
device = "cpu"
diagnostics_every = 0

[[architectures]]
name = "hard"
options = { hidden = [64, 64] }

[[architectures]]
name = "mmoe"
options = { num_experts = 4, hidden = [64] }

[[methods]]
name = "equal"

[[methods]]
name = "uncertainty"

[[methods]]
name = "cagrad"
options = { c = 0.4 }

# Static weights: one run per vector (one weight per task, in the order of `tasks`); `grid = 4` would add
# the points of mtl_lab.studies.sweep.weight_grid (log-spaced ratios for 2 tasks, a simplex grid for more).
[static]
weights = [[1, 1, 10]]
"""


# ---------------------------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class Variant:
    """A named choice with options: an architecture or a method. ``label`` tells variants of one name apart."""

    name: str
    options: dict = field(default_factory=dict)
    label: str = ""

    @property
    def display(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Study:
    """Everything a study varies and fixes; the constructor checks it all (errors name the bad value).

    Attributes:
        data: a data-set name of :mod:`mtl_lab.data`; ``data_options`` its options.
        tasks: a subset of its tasks (``None``: all).
        architectures, methods: :class:`Variant` lists (names from the registries).
        static_weights: weight vectors; each adds one ``static`` run per architecture and seed.
        seeds: the seeds every configuration is trained with (≥ 2 for a confidence interval).
        train: :class:`~mtl_lab.training.TrainConfig` options (``seed`` is set per run).
        baselines: train single-task baselines (per architecture, seed and task) for Δm %.
        name: a title for the report.
    """

    data: str
    architectures: tuple[Variant, ...]
    methods: tuple[Variant, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    tasks: tuple[str, ...] | None = None
    data_options: dict = field(default_factory=dict)
    static_weights: tuple[tuple[float, ...], ...] = ()
    train: dict = field(default_factory=dict)
    baselines: bool = True
    name: str = "study"

    def __post_init__(self) -> None:
        from mtl_lab import data as datasets

        if self.data not in datasets.DATASETS:
            raise ValueError(f"data {self.data!r} is not one of {sorted(datasets.DATASETS)}")
        if not self.architectures:
            raise ValueError("a study needs at least one architecture")
        if not self.methods and not self.static_weights:
            raise ValueError("a study needs at least one method or static weight vector")
        for arch in self.architectures:
            if arch.name not in ARCHITECTURES:
                raise ValueError(f"architecture {arch.name!r} is not one of {sorted(ARCHITECTURES)}")
        for method in self.methods:
            if method.name not in METHODS:
                raise ValueError(f"method {method.name!r} is not one of {sorted(METHODS)}")
        for kind, variants in (("architecture", self.architectures), ("method", self.methods)):
            labels = [v.display for v in variants]
            repeated = sorted({x for x in labels if labels.count(x) > 1})
            if repeated:
                raise ValueError(f"{kind} label(s) {repeated} repeat; give each variant its own 'label'")
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in self.seeds):
            raise ValueError(f"seeds must be a non-empty list of ints, got {list(self.seeds)!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds repeat: {list(self.seeds)}")
        if "seed" in self.train:
            raise ValueError("train must not set 'seed': the study's seeds set it per run")
        TrainConfig(**self.train)  # every training option checked before any run starts
        n_tasks = len(self.tasks) if self.tasks is not None else None
        for w in self.static_weights:
            if n_tasks is not None and len(w) != n_tasks:
                raise ValueError(f"static weights {list(w)} have {len(w)} entries, the study has {n_tasks} tasks")

    @property
    def method_labels(self) -> list[str]:
        return [m.display for m in self.methods] + [static_label(w) for w in self.static_weights]


def static_label(weights: Iterable[float]) -> str:
    return "static " + ":".join(f"{v:.3g}" for v in weights)


def variant(entry: str | dict, kind: str) -> Variant:
    """``"mgda"`` or ``{"name": "cagrad", "options": {"c": 0.4}, "label": "cagrad c=0.4"}`` → :class:`Variant`."""
    if isinstance(entry, str):
        return Variant(entry)
    if not isinstance(entry, dict) or "name" not in entry:
        raise ValueError(f"each {kind} must be a name or a table with 'name', got {entry!r}")
    unknown = sorted(set(entry) - {"name", "options", "label"})
    if unknown:
        raise ValueError(f"{kind} {entry['name']!r} has unknown key(s) {unknown}; allowed: name, options, label")
    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise ValueError(f"{kind} {entry['name']!r}: options must be a table, got {options!r}")
    return Variant(str(entry["name"]), dict(options), str(entry.get("label", "")))


STUDY_KEYS = ("name", "data", "data_options", "tasks", "architectures", "methods", "static", "seeds", "train",
              "baselines")


def study_from_dict(spec: dict) -> Study:
    """A :class:`Study` from the dict a TOML or JSON study file holds (see :data:`EXAMPLE`)."""
    unknown = sorted(set(spec) - set(STUDY_KEYS))
    if unknown:
        raise ValueError(f"unknown study key(s) {unknown}; allowed: {list(STUDY_KEYS)}")
    if "data" not in spec:
        raise ValueError("a study needs 'data' (a data-set name)")
    static = spec.get("static", {})
    if not isinstance(static, dict) or not set(static) <= {"weights", "grid"}:
        raise ValueError(f"'static' must be a table with 'weights' (a list of weight vectors) and/or 'grid' "
                         f"(points of mtl_lab.studies.sweep.weight_grid), got {static!r}")
    tasks = spec.get("tasks")
    weights = [list(w) for w in static.get("weights", [])]
    if "grid" in static:
        n_tasks = len(tasks) if tasks is not None else len(load_data(spec["data"], spec.get("data_options", {}))
                                                            .task_names)
        weights += weight_grid(n_tasks, static["grid"])
    return Study(
        data=spec["data"],
        data_options=dict(spec.get("data_options", {})),
        tasks=tuple(tasks) if tasks is not None else None,
        architectures=tuple(variant(a, "architecture") for a in spec.get("architectures", ["hard"])),
        methods=tuple(variant(m, "method") for m in spec.get("methods", [])),
        static_weights=tuple(tuple(float(v) for v in w) for w in weights),
        seeds=tuple(spec.get("seeds", (0, 1, 2))),
        train=dict(spec.get("train", {})),
        baselines=bool(spec.get("baselines", True)),
        name=str(spec.get("name", "study")),
    )


def load_study(path: str | Path) -> Study:
    """Read a study file: ``.toml`` (``tomllib``, Python ≥ 3.11) or ``.json``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"study file {str(path)!r} does not exist")
    if path.suffix == ".json":
        return study_from_dict(json.loads(path.read_text()))
    if path.suffix != ".toml":
        raise ValueError(f"study file {str(path)!r} must end in .toml or .json")
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise ValueError("reading TOML needs Python ≥ 3.11 (tomllib); write the study as JSON instead") from None
    return study_from_dict(tomllib.loads(path.read_text()))


@functools.lru_cache(maxsize=8)
def cached_data(name: str, options_json: str):
    from mtl_lab import data as datasets

    return datasets.load(name, **json.loads(options_json))


def load_data(name: str, options: dict, tasks: Iterable[str] | None = None):
    """The data set (loaded once per process), restricted to ``tasks``."""
    data = cached_data(name, json.dumps(options, sort_keys=True))
    return data.select(list(tasks)) if tasks is not None else data
