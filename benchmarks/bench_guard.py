"""Cost of the non-finite guard (mtl_lab.training.guards), measured side by side on the same trainer set-up.

Rows: equal weighting on a small and a compute-bound MLP, 3 tasks. Columns, steps/s (median of
interleaved repeats):

* ``unguarded`` — the guard's checks replaced by no-ops (what training cost before the guard);
* ``host``      — the CPU default: losses and gradient ∞-norms checked and read on the host every step;
* ``device``    — the device-side flag gating a fused optimiser (the GPU default), read at the flush.

Reported: each column's ratio to ``unguarded``, and the share of the run's time spent inside the
guard's two checks (timed directly, so it does not depend on how noisy the whole-step timing is).
``device`` also changes the optimiser implementation (fused instead of foreach), so its ratio includes
that difference. Run: ``python benchmarks/bench_guard.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtl_lab import tasks  # noqa: E402
from mtl_lab.data.base import MultiTaskData  # noqa: E402
from mtl_lab.training import build_trainer  # noqa: E402

MODELS = {"small 64-256-256 b128": ((256, 256), 128), "compute-bound 64-1024-1024 b512": ((1024, 1024), 512)}
STEPS = 40
REPEATS = 5


def make_data(batch: int) -> MultiTaskData:
    n = batch * STEPS + 2
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 64, generator=g)
    targets = {f"t{i}": torch.randint(0, 10, (n,), generator=g) for i in range(3)}
    return MultiTaskData.from_tensors(x, targets, [tasks.classification(f"t{i}", 10) for i in range(3)],
                                      val_fraction=0.0, test_fraction=1 / n, normalize=False)


def timed(function, spent: list[float]):
    """``function``, adding the seconds each call takes to ``spent[0]``."""

    def wrapper(*args):
        started = time.perf_counter()
        try:
            return function(*args)
        finally:
            spent[0] += time.perf_counter() - started

    return wrapper


def steps_per_second(data: MultiTaskData, hidden: tuple[int, ...], batch: int, mode: str) -> tuple[float, float]:
    """Steps/s of one run, and the share of its time spent inside the guard's checks."""
    check = "device" if mode == "device" else "host"
    trainer = build_trainer(data, "hard", "equal", model_options={"hidden": hidden}, epochs=1, batch_size=batch,
                            diagnostics_every=0, evaluate=False, train_metrics=False, nonfinite_check=check)
    spent = [0.0]
    if mode == "unguarded":
        trainer.guard.check_losses = lambda *args: None
        trainer.guard.check_gradients = lambda *args: None
    else:
        trainer.guard.check_losses = timed(trainer.guard.check_losses, spent)
        trainer.guard.check_gradients = timed(trainer.guard.check_gradients, spent)
    trainer.fit(max_steps=3)  # warm-up
    spent[0] = 0.0
    started = time.perf_counter()
    trainer.fit(max_steps=STEPS - 5)
    seconds = time.perf_counter() - started
    return (STEPS - 5) / seconds, spent[0] / seconds


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); steps/s, median of {REPEATS}")
    print(f"{'model':34} {'unguarded':>10} {'host':>8} {'device':>8} {'host/ung.':>10} {'device/ung.':>12} "
          f"{'in checks: host':>16} {'device':>8}")
    for label, (hidden, batch) in MODELS.items():
        data = make_data(batch)
        runs: dict[str, list[tuple[float, float]]] = {"unguarded": [], "host": [], "device": []}
        for _ in range(REPEATS):  # interleaved, so drifts in machine load hit every column alike
            for mode in runs:
                runs[mode].append(steps_per_second(data, hidden, batch, mode))
        rate = {mode: statistics.median(r for r, _ in v) for mode, v in runs.items()}
        share = {mode: statistics.median(s for _, s in v) for mode, v in runs.items()}
        print(f"{label:34} {rate['unguarded']:10.1f} {rate['host']:8.1f} {rate['device']:8.1f} "
              f"{rate['host'] / rate['unguarded']:10.3f} {rate['device'] / rate['unguarded']:12.3f} "
              f"{share['host']:15.1%} {share['device']:8.1%}")


if __name__ == "__main__":
    main()
