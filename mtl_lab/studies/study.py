"""Studies: a declarative grid of runs (methods × architectures × seeds …) → a table with confidence intervals.

A study names a data set, its tasks, the architectures, the methods (with their options), static-weight
vectors, the seeds and the training settings (:class:`Study`; :func:`load_study` reads it from TOML or
JSON, :data:`EXAMPLE` is one). :func:`plan` expands it into runs (:class:`RunSpec`), single-task
baselines included, each identified by a hash of its full configuration. :func:`run_study` trains them
on an engine (:mod:`mtl_lab.studies.engines`: in-process, a local process pool, or Ray), keeps every finished
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
two figures (:mod:`mtl_lab.studies.report`).
"""


from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mtl_lab.studies.engines import ENGINES, run_all
from mtl_lab.studies.runs import load_data, plan
from mtl_lab.studies.spec import BASELINE, Study
from mtl_lab.studies.statistics import mean_ci, summarise


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
