"""The CAGrad toy problem at the paper's settings: the batched path against the per-step path, one run.

Both paths compute the same trajectories (``tests/test_toy.py`` checks it to 1e-12 on 2 000 steps):
4 methods (equal, MGDA, PCGrad, CAGrad) × the paper's 3 starts, Adam at lr 1e-3.

* new — :func:`mtl_lab.toy.trajectories` as it runs by default: every start × method together in closed
  form on plain floats (:mod:`mtl_lab.toy.batched`), timed on the full 100 000 steps;
* old — the per-step path (``vectorised=False``: autograd gradients, each method's own solver, one
  ``torch.optim.Adam`` step per step), timed on ``--old-steps`` steps (1 000 by default) and
  extrapolated linearly to 100 000 (its cost per step does not change along the run);
* new on the same ``--old-steps`` steps, for a ratio measured on equal work;
* with ``--previous FILE`` (a copy of an earlier ``mtl_lab/toy_batched.py``, e.g. the NumPy batch of
  commit 35c058d: ``git show 35c058d:mtl_lab/toy_batched.py > /tmp/previous.py``), that module's
  ``integrate`` on the same full run, timed right after the new one, and the largest difference of the
  end points (rounding grows where paths cross the valley floors, so they agree to ~1e-1, not 1e-12).

It also measures the landscape widget's Stop: a background run of the four methods plus Nash-MTL
(per-step path, the slower one) is stopped 1 s after it starts; the time from ``stop()`` to the end
of the run (goal: ≤ 0.5 s) and to the figure of what it has are printed, as is the longest gap between
two progress calls.

Goal (issue 11): ≤ 5 s for 4 methods × 3 starts × 100 000 steps on 2 cores. The end points are printed
so that the run also shows the paper's endings. Run: ``python benchmarks/bench_toy.py [--quick]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtl_lab import toy  # noqa: E402

METHODS = ["equal", "mgda", "pcgrad", "cagrad"]


def timed(steps: int, vectorised: bool) -> tuple[float, dict[str, list[toy.Trajectory]]]:
    start = time.perf_counter()
    runs = toy.trajectories(METHODS, toy.PAPER_STARTS, steps=steps, lr=toy.PAPER_LR, vectorised=vectorised)
    return time.perf_counter() - start, runs


def timed_previous(path: str, steps: int) -> tuple[float, dict]:
    """The ``integrate`` of an earlier copy of ``mtl_lab/toy_batched.py`` on the same run."""
    spec = importlib.util.spec_from_file_location("previous_toy_batched", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = (METHODS, list(toy.PAPER_STARTS), steps, toy.PAPER_LR, "adam", {},
            module.record_stride(steps, toy.MAX_POINTS))
    module.integrate(*args[:2], 50, *args[3:])  # warm-up
    start = time.perf_counter()
    result = module.integrate(*args)
    return time.perf_counter() - start, result


def stop_latency() -> tuple[float, float, float]:
    """Seconds from Stop to the run's end (the toy's next progress call, which returns False), to the end
    of the thread (the figure drawn), and the longest gap between progress calls."""
    from mtl_lab.widgets.landscape import ToyLandscape

    view = ToyLandscape(methods=(*METHODS, "nash_mtl"), name="bench-stop")
    calls: list[float] = []
    report = view.progress

    def timed_progress(fraction: float) -> bool:
        calls.append(time.perf_counter())
        return report(fraction)

    view.progress = timed_progress  # the same callback, with a clock around it
    view.start()
    time.sleep(1.0)
    stopped_at = time.perf_counter()
    view.stop()
    view.wait()
    drawn = time.perf_counter() - stopped_at
    ended = min((t for t in calls if t >= stopped_at), default=float("nan")) - stopped_at
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    view.close()
    return ended, drawn, max(gaps, default=float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=toy.PAPER_STEPS)
    parser.add_argument("--old-steps", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="20 000 and 300 steps")
    parser.add_argument("--previous", help="an earlier mtl_lab/toy_batched.py to time side by side")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.old_steps = 20_000, 300
    torch.set_num_threads(1)
    timed(50, True)  # warm-up (imports, first calls)
    timed(5, False)

    new_same, _ = timed(args.old_steps, True)
    old_same, _ = timed(args.old_steps, False)
    new_full, runs = timed(args.steps, True)
    old_full = old_same * args.steps / args.old_steps
    if args.previous:
        previous_full, previous = timed_previous(args.previous, args.steps)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{len(METHODS)} methods × {len(toy.PAPER_STARTS)} starts, Adam lr {toy.PAPER_LR:g}; "
          f"load average at the end {load:.1f} on {os.cpu_count()} cores\n")
    print("| path | steps | time | µs per step (all 12 paths) |")
    print("|---|---|---|---|")
    print(f"| per-step (old) | {args.old_steps:,} | {old_same:.2f} s | {1e6 * old_same / args.old_steps:.0f} |")
    print(f"| batched (new) | {args.old_steps:,} | {new_same:.2f} s | {1e6 * new_same / args.old_steps:.0f} |")
    print(f"| batched (new) | {args.steps:,} | {new_full:.2f} s | {1e6 * new_full / args.steps:.0f} |")
    if args.previous:
        print(f"| previous batched ({Path(args.previous).name}) | {args.steps:,} | {previous_full:.2f} s | "
              f"{1e6 * previous_full / args.steps:.0f} |")
    print(f"| per-step (old), extrapolated | {args.steps:,} | {old_full:.0f} s | |")
    print(f"\nratio old/new on {args.old_steps:,} steps: {old_same / new_same:.0f}×; "
          f"new on {args.steps:,} steps: {new_full:.2f} s (goal ≤ 5 s)")
    if args.previous:
        gap = max(abs(p.end[k] - float(previous[method]["points"][i, -1, k]))
                  for method, paths in runs.items() for i, p in enumerate(paths) for k in range(2))
        print(f"ratio previous/new on {args.steps:,} steps: {previous_full / new_full:.1f}×; "
              f"largest difference of the end points {gap:.3g}")
    print()
    ended, drawn, gap = stop_latency()
    print(f"landscape Stop: the run ends {ended * 1000:.0f} ms after stop() (goal ≤ 500 ms), the figure of what "
          f"it has is shown after {drawn * 1000:.0f} ms; longest gap between progress calls {gap * 1000:.0f} ms\n")
    print("| method | " + " | ".join(f"end from ({a:g}, {b:g})" for a, b in toy.PAPER_STARTS) + " |")
    print("|---|" + "---|" * len(toy.PAPER_STARTS))
    for method, paths in runs.items():
        print(f"| {method} | " + " | ".join(f"({p.end[0]:.3f}, {p.end[1]:.3f})" for p in paths) + " |")


if __name__ == "__main__":
    main()
