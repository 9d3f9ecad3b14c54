"""Engines that train a list of independent runs: in this process, in a local process pool, or on Ray.

Every engine calls the same function, :func:`mtl_lab.studies.runs.execute`, on each
:class:`~mtl_lab.studies.runs.RunSpec` and yields the result records as runs finish (in any order; the study
orders them by key). A run's numbers depend only on its configuration and on the number of torch
threads it uses, so engines given the same ``threads`` produce the same table.

* ``sequential`` — one run after another in this process: the smallest footprint, the default.
* ``processes`` — :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start method
  (a fresh interpreter per worker: no forked torch thread pools), ``workers`` processes.
* ``ray`` — one Ray task per run (``num_cpus=threads``). With ``address`` the engine joins an existing
  cluster (``ray start --head`` on one machine, ``ray start --address=…`` on the others); without it,
  it starts a local cluster with ``workers`` CPUs. Ray is an optional extra: ``pip install 'mtl-lab[ray]'``.

Torch threads per run default to ``max(1, cpu_count // workers)`` for the parallel engines, so the
workers together use the machine's cores once and do not oversubscribe them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

from mtl_lab.studies.runs import RunSpec, execute

ENGINES = ("sequential", "processes", "ray")


def default_threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def check_workers(workers: int | None) -> int:
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int ≥ 1, got {workers!r}")
    return workers


def run_sequential(specs: list[RunSpec], threads: int | None) -> Iterator[dict]:
    for spec in specs:
        yield execute(spec, threads)


def run_processes(specs: list[RunSpec], workers: int, threads: int) -> Iterator[dict]:
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(execute, spec, threads) for spec in specs]
        for future in as_completed(futures):
            yield future.result()


def start_ray(address: str | None, workers: int):
    """Join the cluster at ``address``, or start a local one with ``workers`` CPUs (once per process)."""
    try:
        import ray
    except ImportError:
        raise ValueError("the ray engine needs Ray: pip install 'mtl-lab[ray]' (make install does it)") from None
    if ray.is_initialized():
        return ray
    where = f"the cluster at {address!r}" if address is not None else f"a local Ray with {workers} CPUs"
    attempts = 1 if address is not None else 2  # a local node that misses Ray's start-up deadline on a busy
    for attempt in range(attempts):  # machine gets one more try
        try:
            if address is not None:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            return ray
        except Exception as exc:  # e.g. no cluster at that address, or a local node that timed out starting
            ray.shutdown()
            if attempt == attempts - 1:
                raise ValueError(f"could not start or join {where}: {type(exc).__name__}: {exc}") from exc
    return ray


def run_ray(specs: list[RunSpec], workers: int, threads: int, address: str | None) -> Iterator[dict]:
    ray = start_ray(address, workers)
    remote = ray.remote(num_cpus=threads, max_retries=0)(execute)
    pending = [remote.remote(spec, threads) for spec in specs]
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        yield ray.get(ready[0])


def run_all(
    specs: list[RunSpec],
    engine: str = "sequential",
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
) -> Iterator[dict]:
    """Yield the result record of every spec as it finishes, on the chosen engine."""
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is not one of {ENGINES}")
    if address is not None and engine != "ray":
        raise ValueError(f"address {address!r} is only for engine='ray', got engine={engine!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be an int ≥ 1, got {threads!r}")
    if not specs:
        return
    if engine == "sequential":
        yield from run_sequential(specs, threads)
        return
    workers = check_workers(workers)
    threads = threads if threads is not None else default_threads(workers)
    if engine == "processes":
        yield from run_processes(specs, workers, threads)
    else:
        yield from run_ray(specs, workers, threads, address)
