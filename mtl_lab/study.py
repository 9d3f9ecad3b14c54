"""Studies: a declarative grid of runs (methods × architectures × seeds …) → a table with confidence intervals.

A study names a data set, its tasks, the architectures, the methods (with their options), static-weight
vectors, the seeds and the training settings (:class:`Study`; :func:`load_study` reads it from TOML or
JSON, :data:`EXAMPLE` is one). :func:`plan` expands it into runs (:class:`RunSpec`), single-task
baselines included, each identified by a hash of its full configuration. :func:`run_study` trains them
on an engine (:mod:`mtl_lab.engines`: in-process, a local process pool, or Ray), keeps every finished
run in ``out/runs/<hash>.json`` so a rerun skips it, records a failing run with its error instead of
stopping, and summarises per (architecture, method):

* each task's test metric as mean ± the half-width of a 95 % confidence interval over seeds,
  ``x̄ ± t_{0.975, n−1} · s / √n`` with Student's t quantile (Student, Biometrika 1908);
* Δm % against the single-task baselines of the same architecture and seed (Maninis et al., CVPR 2019;
  :mod:`mtl_lab.metrics`), mean ± 95 % CI over seeds;
* the mean rank: per architecture, the methods are ranked on each task's mean metric (1 = best,
  ties share the average rank) and the ranks averaged over the tasks;
* the cost: seconds of training per run and steps per second.

The answer is a list of plain records (dicts), the same whether it comes from the Python API or from
``mtl-lab study FILE --out DIR``, which also writes ``report.md``, ``results.csv``, ``results.json`` and
two figures (:mod:`mtl_lab.study_report`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import statistics
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from mtl_lab.metrics import delta_m
from mtl_lab.models import ARCHITECTURES
from mtl_lab.sweep import weight_grid
from mtl_lab.train import TrainConfig, build_trainer
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
# the points of mtl_lab.sweep.weight_grid (log-spaced ratios for 2 tasks, a simplex grid for more).
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
        train: :class:`~mtl_lab.train.TrainConfig` options (``seed`` is set per run).
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
                         f"(points of mtl_lab.sweep.weight_grid), got {static!r}")
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


# ---------------------------------------------------------------------------------------------- runs


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


@functools.lru_cache(maxsize=8)
def cached_data(name: str, options_json: str):
    from mtl_lab import data as datasets

    return datasets.load(name, **json.loads(options_json))


def load_data(name: str, options: dict, tasks: Iterable[str] | None = None):
    """The data set (loaded once per process), restricted to ``tasks``."""
    data = cached_data(name, json.dumps(options, sort_keys=True))
    return data.select(list(tasks)) if tasks is not None else data


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


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (0.5 < p < 1).

    Newton's method on the CDF, which is integrated from the density with Simpson's rule on ``[0, x]``;
    started at 0, where the CDF is concave, the iterates rise monotonically to the root (accurate to
    ~1e-9 for the quantiles a study uses).
    """
    if not 0.5 < p < 1:
        raise ValueError(f"p must be in (0.5, 1), got {p!r}")
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"df must be an int ≥ 1, got {df!r}")
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def density(x: float) -> float:
        return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df))

    def cdf(x: float, n: int = 2000) -> float:
        h = x / n
        total = density(0.0) + density(x) + sum((4 if i % 2 else 2) * density(i * h) for i in range(1, n))
        return 0.5 + total * h / 3

    x = 0.0
    for _ in range(500):
        step = (p - cdf(x)) / density(x)
        x += step
        if abs(step) < 1e-11 * max(1.0, x):
            break
    return x


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """``(mean, half-width)`` of the t-interval at ``level``; the half-width is NaN for fewer than 2 values."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    sd = statistics.stdev(values)
    return mean, t_quantile(0.5 + level / 2, len(values) - 1) * sd / math.sqrt(len(values))


def average_ranks(scores: list[float], higher_is_better: bool) -> list[float]:
    """Rank 1 = best; tied scores share the average of their ranks; NaN ranks last."""
    key = [(-s if higher_is_better else s) if math.isfinite(s) else math.inf for s in scores]
    order = sorted(range(len(key)), key=lambda i: key[i])
    ranks = [0.0] * len(key)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and key[order[j + 1]] == key[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def summarise(study: Study, results: dict[str, dict], specs: list[RunSpec], task_names: list[str],
              higher: dict[str, bool]) -> list[dict]:
    """One record per (architecture, method): metrics mean ± CI, Δm % ± CI, mean rank, cost, failures.

    ``task_names`` and ``higher`` (higher is better, per task) are the study's tasks and their directions.
    """
    done = [results[s.key] for s in specs if s.key in results]
    ok = [r for r in done if r["status"] == "completed"]
    baseline: dict[tuple[str, int], dict[str, float]] = {}
    for r in ok:
        if r["method"] == BASELINE:
            baseline.setdefault((r["architecture"], r["seed"]), {}).update(r["test_metrics"])
    records = []
    for arch in study.architectures:
        for label in study.method_labels:
            runs = [r for r in done if r["architecture"] == arch.display and r["method"] == label]
            good = [r for r in runs if r["status"] == "completed"]
            record = {"architecture": arch.display, "method": label, "runs": len(runs), "completed": len(good),
                      "errors": [f"seed {r['seed']}: {r.get('error', r['status'])}" for r in runs if r not in good]}
            for task in task_names:
                record[f"{task}_mean"], record[f"{task}_ci"] = mean_ci([r["test_metrics"][task] for r in good])
            deltas = []
            for r in good:
                base = baseline.get((arch.display, r["seed"]), {})
                values = [r["test_metrics"].get(t, math.nan) for t in task_names] + [base.get(t, math.nan)
                                                                                     for t in task_names]
                usable = all(math.isfinite(v) for v in values) and all(base[t] != 0 for t in task_names)
                if task_names and usable:  # Δm needs finite metrics and non-zero baselines
                    deltas.append(delta_m(r["test_metrics"], {t: base[t] for t in task_names}, higher))
            record["delta_m_mean"], record["delta_m_ci"] = mean_ci(deltas)
            record["seconds"] = statistics.fmean([r["seconds"] for r in good]) if good else math.nan
            record["steps_per_s"] = statistics.fmean([r["steps_per_s"] for r in good]) if good else math.nan
            records.append(record)
    for arch in study.architectures:
        rows = [r for r in records if r["architecture"] == arch.display]
        per_task = [average_ranks([r[f"{t}_mean"] for r in rows], higher.get(t, True)) for t in task_names]
        for i, r in enumerate(rows):
            ranked = per_task and r["completed"]
            r["mean_rank"] = statistics.fmean(ranks[i] for ranks in per_task) if ranked else math.nan
    return records


# ---------------------------------------------------------------------------------------------- running


@dataclass
class StudyResult:
    """The records (:func:`summarise`), every run's result by key, and the facts a report needs."""

    study: Study
    records: list[dict]
    runs: list[dict]
    task_names: list[str]
    higher_is_better: dict[str, bool]
    metric_names: dict[str, str]
    cached: int
    seconds: float
    engine: str

    def baselines(self) -> dict[str, dict[str, tuple[float, float]]]:
        """``{architecture: {task: (mean, ci)}}`` of the single-task runs."""
        out: dict[str, dict[str, tuple[float, float]]] = {}
        for arch in self.study.architectures:
            rows = [r for r in self.runs if r["architecture"] == arch.display and r["method"] == BASELINE
                    and r["status"] == "completed"]
            values: dict[str, list[float]] = {}
            for r in rows:
                for task, v in r["test_metrics"].items():
                    values.setdefault(task, []).append(v)
            out[arch.display] = {task: mean_ci(v) for task, v in values.items()}
        return out


def run_study(
    study: Study,
    out: str | Path | None = None,
    engine: str = "sequential",
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    progress: bool | Callable[[int, int, str], None] = False,
) -> StudyResult:
    """Train every run of ``study`` not yet cached under ``out`` and summarise them all.

    Args:
        out: the folder whose ``runs/`` keeps one JSON file per finished run (``None``: no cache).
        engine: ``sequential`` (in this process), ``processes`` (a local spawn pool) or ``ray``.
        workers: parallel runs (``processes``: default the CPU count; ``ray``: the CPUs of a local cluster).
        threads: torch threads per run (default: the CPU count over ``workers`` for the parallel engines,
            unchanged when sequential). Engines given the same value give the same numbers.
        address: ``ray`` only — join the cluster at this address instead of starting a local one.
        progress: ``True`` for a tqdm bar over the runs, or a callback ``progress(done, total, label)``.
    """
    from mtl_lab.engines import ENGINES, run_all

    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is not one of {ENGINES}")
    started = time.perf_counter()
    data = load_data(study.data, study.data_options, study.tasks)
    if study.static_weights and study.tasks is None and any(len(w) != len(data.task_names)
                                                            for w in study.static_weights):
        raise ValueError(f"static weights need {len(data.task_names)} entries, one per task {data.task_names}")
    specs = plan(study, data.task_names)
    cache = Path(out) / "runs" if out is not None else None
    results: dict[str, dict] = {}
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        for spec in specs:
            path = cache / f"{spec.key}.json"
            if path.is_file():
                results[spec.key] = json.loads(path.read_text())
    cached = len(results)
    todo = [s for s in specs if s.key not in results]
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(specs), initial=cached, desc=study.name[:30], unit="run")
    for record in run_all(todo, engine, workers=workers, threads=threads, address=address):
        results[record["key"]] = record
        if cache is not None and record["status"] == "completed":  # failures are retried on a rerun
            (cache / f"{record['key']}.json").write_text(json.dumps(record, allow_nan=True))
        if bar is not None:
            bar.set_postfix_str(f"{record['architecture']}/{record['method']}/seed {record['seed']}")
            bar.update(1)
        elif callable(progress):
            progress(len(results), len(specs), f"{record['architecture']}/{record['method']}")
    if bar is not None:
        bar.close()
    runs = [results[s.key] for s in specs]
    return StudyResult(
        study=study,
        records=summarise(study, results, specs, list(data.task_names),
                          {t.name: t.higher_is_better for t in data.tasks}),
        runs=runs,
        task_names=list(data.task_names),
        higher_is_better={t.name: t.higher_is_better for t in data.tasks},
        metric_names={t.name: t.metric_name for t in data.tasks},
        cached=cached,
        seconds=time.perf_counter() - started,
        engine=engine,
    )
