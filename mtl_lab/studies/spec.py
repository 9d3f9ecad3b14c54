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
from mtl_lab.validate import (
    check_device_available,
    check_seed,
    check_task_names,
    is_int,
    type_note,
    weight_ok,
)
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
        for seed in self.seeds:
            check_seed(seed, "seed")
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


def variant(entry, kind: str, key: str) -> Variant:
    """``"mgda"`` or ``{"name": "cagrad", "options": {"c": 0.4}, "label": "cagrad c=0.4"}`` → :class:`Variant`.

    ``key`` names the entry in messages (``methods[2]``); types are taken as written (a name is a string).
    """
    if isinstance(entry, str):
        return Variant(entry)
    if not isinstance(entry, dict) or "name" not in entry:
        raise ValueError(f"key {key!r}: each {kind} must be a name or a table with 'name', got {entry!r}"
                         f"{type_note(entry)}")
    unknown = sorted(set(entry) - {"name", "options", "label"})
    if unknown:
        raise ValueError(f"key {key!r}: {kind} {entry['name']!r} has unknown key(s) {unknown}; "
                         "allowed: name, options, label")
    for part, value, want in (("name", entry["name"], str), ("options", entry.get("options", {}), dict),
                              ("label", entry.get("label", ""), str)):
        if not isinstance(value, want):
            what = "a string" if want is str else "a table"
            raise ValueError(f"key '{key}.{part}': must be {what}, got {value!r}{type_note(value)}")
    return Variant(entry["name"], dict(entry.get("options", {})), entry.get("label", ""))


STUDY_KEYS = ("name", "data", "data_options", "tasks", "architectures", "methods", "static", "seeds", "train",
              "baselines")


def a_list(spec: dict, key: str, default=None) -> list:
    """``spec[key]`` as written: a list (a string is not a list of its characters)."""
    value = spec.get(key, default)
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"key {key!r}: must be a list, got {value!r}{type_note(value)}")
    return list(value)


def a_table(value, key: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"key {key!r}: must be a table, got {value!r}{type_note(value)}")
    return dict(value)


def study_from_dict(spec: dict) -> Study:
    """A :class:`Study` from the dict a TOML or JSON study file holds (see :data:`EXAMPLE`).

    Every value is checked as written, before anything is converted: a string is not a list, ``"no"`` is
    not a bool, seeds are :func:`~mtl_lab.validate.check_seed` seeds, ``train`` holds only
    :class:`TrainConfig` options, static weights are finite numbers ≥ 0. Messages start with the key.
    What needs the data set (task names, method and model options, the device) is checked by
    :func:`check_study` before any run starts.
    """
    from mtl_lab import data as datasets

    if not isinstance(spec, dict):
        raise ValueError(f"a study file must hold a table of keys, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(STUDY_KEYS))
    if unknown:
        raise ValueError(f"unknown study key(s) {unknown}; allowed: {list(STUDY_KEYS)}")
    if "data" not in spec:
        raise ValueError("key 'data': a study needs 'data' (a data-set name)")
    if not isinstance(spec["data"], str) or spec["data"] not in datasets.DATASETS:
        raise ValueError(f"key 'data': data {spec['data']!r} is not one of {sorted(datasets.DATASETS)}")
    name = spec.get("name", "study")
    if not isinstance(name, str):
        raise ValueError(f"key 'name': must be a string, got {name!r}{type_note(name)}")
    data_options = a_table(spec.get("data_options", {}), "data_options")
    tasks = spec.get("tasks")
    if tasks is not None:
        try:
            tasks = check_task_names(tasks, "tasks")
        except ValueError as exc:
            raise ValueError(f"key 'tasks': {exc}") from None
    architectures = [variant(a, "architecture", f"architectures[{i}]")
                     for i, a in enumerate(a_list(spec, "architectures", ["hard"]))]
    methods = [variant(m, "method", f"methods[{i}]") for i, m in enumerate(a_list(spec, "methods", []))]
    seeds = a_list(spec, "seeds", [0, 1, 2])
    for i, seed in enumerate(seeds):
        try:
            check_seed(seed, "seed")
        except ValueError as exc:
            raise ValueError(f"key 'seeds[{i}]': {exc}") from None
    train = a_table(spec.get("train", {}), "train")
    if "seed" in train:
        raise ValueError(f"key 'train.seed': train must not set 'seed' (got {train['seed']!r}): the study's seeds "
                         "set it per run")
    unknown = [k for k in train if k not in TrainConfig.option_names()]
    if unknown:
        allowed = [k for k in TrainConfig.option_names() if k != "seed"]
        raise ValueError(f"key 'train': unknown option(s) {unknown}; "
                         f"allowed: {allowed}")
    try:
        TrainConfig(**train)
    except ValueError as exc:
        raise ValueError(f"key 'train': {exc}") from None
    baselines = spec.get("baselines", True)
    if not isinstance(baselines, bool):
        raise ValueError(f"key 'baselines': must be true or false, got {baselines!r}{type_note(baselines)}")
    static = a_table(spec.get("static", {}), "static")
    if not set(static) <= {"weights", "grid"}:
        raise ValueError(f"key 'static': 'static' must be a table with 'weights' (a list of weight vectors)"
                         f" and/or 'grid' (points of mtl_lab.studies.sweep.weight_grid), got {static!r}")
    weights = a_list(static, "weights", []) if "weights" in static else []
    for i, w in enumerate(weights):
        if isinstance(w, str) or not isinstance(w, list) or not w or not all(weight_ok(v) for v in w):
            raise ValueError(f"key 'static.weights[{i}]': must be a list of finite numbers ≥ 0 (one per task), "
                             f"got {w!r}{type_note(w)}")
    weights = [list(w) for w in weights]
    if "grid" in static:
        grid = static["grid"]
        if not is_int(grid):
            raise ValueError(f"key 'static.grid': points must be an int ≥ 2, got {grid!r}{type_note(grid)}")
        n_tasks = len(tasks) if tasks is not None else len(load_data(spec["data"], data_options).task_names)
        try:
            weights += weight_grid(n_tasks, grid)
        except ValueError as exc:
            raise ValueError(f"key 'static.grid': {exc}") from None
    return Study(data=spec["data"], data_options=data_options, tasks=tuple(tasks) if tasks is not None else None,
                 architectures=tuple(architectures), methods=tuple(methods),
                 static_weights=tuple(tuple(float(v) for v in w) for w in weights), seeds=tuple(seeds),
                 train=train, baselines=baselines, name=name)


def check_study(study: Study, task_names: list[str]) -> None:
    """What needs the data set, checked before any run starts (messages start with the key).

    Every method is built with its options and reset for the tasks (the declared option checks of
    :mod:`mtl_lab.validate`), every static weight vector too; every architecture's options are checked by
    name and kind; the training device must exist on this machine.
    """
    from mtl_lab.models import architecture_options, check_option_kinds
    from mtl_lab.weighting import create

    try:
        check_device_available(study.train.get("device", TrainConfig.device))
    except ValueError as exc:
        raise ValueError(f"key 'train.device': {exc}") from None
    for i, arch in enumerate(study.architectures):
        try:
            check_option_kinds(arch.name, arch.options)
            trunk = arch.options.get("trunk")
            allowed = architecture_options(arch.name, trunk if isinstance(trunk, str) else None)
            unknown = [k for k in arch.options if k not in allowed]
            if unknown:
                raise ValueError(f"architecture {arch.name!r} has no option(s) {unknown}; its options are {allowed}")
        except ValueError as exc:
            raise ValueError(f"key 'architectures[{i}]': {exc}") from None
    for i, method in enumerate(study.methods):
        try:
            create(method.name, **method.options).reset(list(task_names))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"key 'methods[{i}]': {exc}") from None
    for i, w in enumerate(study.static_weights):
        try:
            create("static", weights=list(w)).reset(list(task_names))
        except ValueError as exc:
            raise ValueError(f"key 'static.weights[{i}]': {exc}") from None


def study_task_names(study: Study) -> list[str]:
    """The study's task names from its data set; a bad data option or task name is named by its key."""
    try:
        data = cached_data(study.data, json.dumps(study.data_options, sort_keys=True))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"key 'data_options': {exc}") from None
    if study.tasks is None:
        return list(data.task_names)
    unknown = [t for t in study.tasks if t not in data.task_names]
    if unknown:
        raise ValueError(f"key 'tasks': unknown task(s) {unknown} for data {study.data!r}; "
                         f"choose from {data.task_names}")
    return list(study.tasks)


def load_study(path: str | Path) -> Study:
    """Read a study file: ``.toml`` (``tomllib``, Python ≥ 3.11) or ``.json``; every value checked as written.

    An error names the file, then the key and the value (one line): ``study file 'x.toml': key 'seeds[0]': …``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"study file {str(path)!r} does not exist")
    if path.suffix not in (".json", ".toml"):
        raise ValueError(f"study file {str(path)!r} must end in .toml or .json")
    try:
        if path.suffix == ".json":
            spec = json.loads(path.read_text())
        else:
            try:
                import tomllib
            except ImportError:  # Python 3.10
                raise ValueError("reading TOML needs Python ≥ 3.11 (tomllib); write the study as JSON") from None
            spec = tomllib.loads(path.read_text())
        return study_from_dict(spec)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ValueError(f"study file {str(path)!r}: {exc}") from None


@functools.lru_cache(maxsize=8)
def cached_data(name: str, options_json: str):
    from mtl_lab import data as datasets

    return datasets.load(name, **json.loads(options_json))


def load_data(name: str, options: dict, tasks: Iterable[str] | None = None):
    """The data set (loaded once per process), restricted to ``tasks``."""
    data = cached_data(name, json.dumps(options, sort_keys=True))
    return data.select(list(tasks)) if tasks is not None else data
