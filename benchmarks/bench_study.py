"""Speed-up of a study on 2 workers against 1: the same 12-run study, one engine, side by side.

The study: digits (3 tasks), 2 methods (equal, pcgrad) × 2 architectures (hard, mmoe) × 3 seeds, no
baselines, no cache: 12 runs of a few seconds each. Each configuration trains it once with 1 torch
thread per run (``threads=1``), first on 1 worker, then on 2; the engine's start-up (spawning the
processes, or starting Ray) is inside the measured time, as a user would see it. Reported: wall
seconds of each, the speed-up (1-worker seconds / 2-worker seconds; 2.0 is the ideal on 2 free cores),
and whether both tables are identical (they must be: same seeds, same threads → same numbers).

Run: ``python benchmarks/bench_study.py [--engine processes|ray] [--epochs N] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtl_lab.studies import run_study, study_from_dict  # noqa: E402


def study(epochs: int):
    return study_from_dict({
        "name": "bench", "data": "digits", "tasks": ["digit", "parity", "recon"], "seeds": [0, 1, 2],
        "baselines": False,
        "train": {"epochs": epochs, "batch_size": 64, "device": "cpu", "diagnostics_every": 0},
        "architectures": [{"name": "hard", "options": {"hidden": [128, 128]}},
                          {"name": "mmoe", "options": {"num_experts": 4}}],
        "methods": ["equal", "pcgrad"],
    })


def timed(engine: str, workers: int, epochs: int) -> tuple[float, float, list[dict]]:
    """Wall seconds, the runs' summed training seconds, and the table without its cost columns."""
    started = time.perf_counter()
    result = run_study(study(epochs), engine=engine, workers=workers, threads=1)
    seconds = time.perf_counter() - started
    if engine == "ray":
        import ray

        ray.shutdown()
    busy = sum(r["seconds"] for r in result.runs)
    return seconds, busy, [{k: v for k, v in r.items() if k not in ("seconds", "steps_per_s")}
                           for r in result.records]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="processes", choices=["processes", "ray"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="1-epoch runs (a smoke test: start-up dominates)")
    args = parser.parse_args()
    if args.quick:
        args.epochs = 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    one, busy_one, table_one = timed(args.engine, 1, args.epochs)
    two, busy_two, table_two = timed(args.engine, 2, args.epochs)
    print(f"12-run study on the {args.engine} engine, 1 torch thread per run; {os.cpu_count()} CPUs, "
          f"load average {load:.1f} at the start")
    print("| workers | wall s | speed-up | Σ run training s |")
    print("|---|---|---|---|")
    print(f"| 1 | {one:.1f} | 1.00 | {busy_one:.1f} |")
    print(f"| 2 | {two:.1f} | {one / two:.2f} | {busy_two:.1f} |")
    print(f"tables identical: {table_one == table_two}")
    print("(Σ run training s grows with 2 workers when the cores are busy with other work: then they compete.)")


if __name__ == "__main__":
    main()
