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

import hashlib
import json
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mtl_lab.studies.engines import ENGINES, run_all
from mtl_lab.studies.runs import load_data, plan
from mtl_lab.studies.spec import BASELINE, Study, check_study
from mtl_lab.studies.statistics import mean_ci, summarise


class StudyWarning(UserWarning):
    """A cached run that is not used (edited, truncated, or of another configuration)."""


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a study; the message says how many runs were done and where they are kept."""


def checksum(record: dict) -> str:
    """SHA-256 of a record's JSON without its ``checksum`` field (keys sorted)."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=True).encode()).hexdigest()


def write_record(path: Path, record: dict) -> None:
    """One finished run as JSON with its :func:`checksum`, written whole or not at all (rename)."""
    text = json.dumps({**record, "checksum": checksum(record)}, allow_nan=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(text)
    partial.replace(path)


def read_record(path: Path, spec) -> tuple[dict | None, str]:
    """``(record, "")`` when the file at ``path`` is a finished run of ``spec``, else ``(None, why not)``."""
    try:
        record = json.loads(path.read_text())
    except (ValueError, OSError) as exc:  # a truncated file, bytes that are not text …
        return None, f"not readable JSON: {type(exc).__name__}: {exc}"
    if not isinstance(record, dict):
        return None, f"a {type(record).__name__}, not a run record"
    if record.get("checksum") != checksum(record):
        return None, "its checksum does not match its contents (edited or damaged)"
    if record.get("key") != spec.key or record.get("config") != json.loads(json.dumps(spec.config())):
        return None, "its config is not this run's"
    if record.get("status") != "completed" or not isinstance(record.get("test_metrics"), dict):
        return None, f"status {record.get('status')!r} is not a completed run with test metrics"
    metrics = record["test_metrics"]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in metrics.values()):
        return None, f"test metrics {metrics!r} are not finite numbers"
    return record, ""


@contextmanager
def stop_after_run(stop: threading.Event, running: threading.Event) -> Iterator[None]:
    """A first SIGINT sets ``stop`` (the study ends after the current run); a second one, while ``running``
    is set (a run trains), raises KeyboardInterrupt; at any other moment it is already being acted on.

    While this handler is installed the trainer leaves SIGINT alone (:func:`~mtl_lab.training.interrupts.
    deferred_sigint` defers only Python's default handler), so the second one reaches the run's ``fit`` as a
    KeyboardInterrupt, which ends that run at once as ``interrupted``. Outside the main thread nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame) -> None:
        if not stop.is_set():
            stop.set()
        elif running.is_set():
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
    warn: Callable[[str], None] | None = None,
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
        warn: called with one line per cached run that is not used (default: ``warnings.warn``, :class:`StudyWarning`).

    Before any run starts, the whole study is checked (:func:`~mtl_lab.studies.spec.check_study`). A cached
    record is used only when its checksum and its own config match the run's (:func:`read_record`); any
    other is named and trained again. In the main thread, a first Ctrl-C (SIGINT) lets the current run finish
    and then stops the study; a second one interrupts the current run (not cached). Either way
    :class:`StudyInterrupted` is raised with a status line, and the finished runs stay in the cache.
    """

    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is not one of {ENGINES}")
    started = time.perf_counter()
    say = warn if warn is not None else (lambda message: warnings.warn(message, StudyWarning, stacklevel=3))
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise ValueError(f"out {str(out)!r} is an existing file; give a folder for the report and its runs/ cache")
    data = load_data(study.data, study.data_options, study.tasks)
    if study.static_weights and study.tasks is None and any(len(w) != len(data.task_names)
                                                            for w in study.static_weights):
        raise ValueError(f"static weights need {len(data.task_names)} entries, one per task {data.task_names}")
    check_study(study, list(data.task_names))  # every value, before any run starts
    specs = plan(study, data.task_names)
    cache = Path(out) / "runs" if out is not None else None
    results: dict[str, dict] = {}
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        for spec in specs:
            path = cache / f"{spec.key}.json"
            if path.is_file():
                record, problem = read_record(path, spec)
                if record is not None:
                    results[spec.key] = record
                else:
                    say(f"cached run {str(path)!r} is not used ({problem}); it is trained again")
    cached = len(results)
    todo = [s for s in specs if s.key not in results]
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(specs), initial=cached, desc=study.name[:30], unit="run")
    stop, running = threading.Event(), threading.Event()
    records = run_all(todo, engine, workers=workers, threads=threads, address=address)
    try:
        with stop_after_run(stop, running):
            while True:
                running.set()  # a second Ctrl-C interrupts only while a run trains, never while one is saved
                try:
                    record = next(records)
                except StopIteration:
                    break
                finally:
                    running.clear()
                results[record["key"]] = record
                if cache is not None and record["status"] == "completed":  # failures are retried on a rerun
                    write_record(cache / f"{record['key']}.json", record)
                if bar is not None:
                    bar.set_postfix_str(f"{record['architecture']}/{record['method']}/seed {record['seed']}")
                    bar.update(1)
                elif callable(progress):
                    progress(len(results), len(specs), f"{record['architecture']}/{record['method']}")
                if stop.is_set() or record["status"] == "interrupted":
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        records.close()
        done = sum(r["status"] == "completed" for r in results.values())
        where = f"; they are kept in {str(cache)!r}, the same command continues" if cache is not None else ""
        raise StudyInterrupted(f"study interrupted: {done} of {len(specs)} runs done ({cached} cached before)"
                               f"{where}") from None
    finally:
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
