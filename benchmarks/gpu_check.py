"""GPU readiness: the CUDA tests, steps/s of equal weighting against per-task-gradient methods, host syncs
per step, and the live lab's cost — on one CUDA device, in one run.

1. **CUDA tests** — ``pytest tests -k cuda`` (the tests that skip without a GPU run here).
2. **Steps/s** — a 64-1024-1024 MLP trunk, batch 512, T = 3 and 5 classification tasks, on the GPU,
   ``Trainer.train_step`` timed between ``torch.cuda.synchronize()`` calls after a warm-up. Rows: equal,
   static, the gradient engine alone (a method that returns weights of 1 from ``G``: the cost of
   building ``G``), and real gradient methods. ``slowdown`` = equal's steps/s ÷ the row's; the FLOP bound
   of materialising ``G`` is ``(1 + 2T)/3`` (forward = 1 unit, each of the T backward passes = 2), and
   ``slowdown / bound`` near 1 means the per-task passes cost what their FLOPs say.
3. **Host syncs per step** — ``torch.cuda.set_sync_debug_mode("warn")`` makes every synchronising CUDA
   call warn; the warnings of a few steps (records buffered: ``record_every`` larger than the count) are
   counted. Expected: 0 for equal, static and the gradient engine; a method that solves a small problem
   on the host (MGDA's, Nash-MTL's solvers) syncs by design, and the table says how often.
4. **Live lab** — ``benchmarks/bench_live.py``'s headless vs live comparison with ``device="cuda"``.

Without CUDA the script says so and exits with status 1. Run:
``python benchmarks/gpu_check.py [--quick] [--skip-tests]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mtl_lab import tasks  # noqa: E402
from mtl_lab.data.base import MultiTaskData  # noqa: E402
from mtl_lab.models import HardSharing  # noqa: E402
from mtl_lab.training import Trainer  # noqa: E402
from mtl_lab.weighting import Combination, Weighting  # noqa: E402

METHODS = ["equal", "static", "engine", "pcgrad", "mgda", "cagrad", "imtl_g", "upgrad", "aligned_mtl", "graddrop",
           "nash_mtl"]


class EngineOnly(Weighting):
    """Weights of 1 from ``G``: the cost of building the per-task gradients, and nothing else."""

    name = "engine"
    requires = "grads"

    def combine(self, losses, grads, ctx) -> Combination:
        return Combination(torch.ones_like(losses))


def make_data(T: int, batch: int, rows: int) -> MultiTaskData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 64, generator=g)
    targets = {f"t{i}": torch.randint(0, 10, (rows,), generator=g) for i in range(T)}
    task_list = [tasks.classification(f"t{i}", 10) for i in range(T)]
    return MultiTaskData.from_tensors(x, targets, task_list, val_fraction=0.0, test_fraction=2 / rows,
                                      normalize=False)


def make_trainer(method: str, batch: int, data: MultiTaskData, device: str, hidden: tuple[int, ...]) -> Trainer:
    torch.manual_seed(0)
    model = HardSharing(data.tasks, data.input_shape, hidden=hidden)
    weighting = EngineOnly() if method == "engine" else method
    return Trainer(model, data, weighting, device=device, batch_size=batch, diagnostics_every=0,
                   record_every=10**6, evaluate=False, train_metrics=False)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(method: str, T: int, batch: int, steps: int, device: str = "cuda",
            hidden: tuple[int, ...] = (1024, 1024)) -> dict:
    data = make_data(T, batch, batch * 4)
    trainer = make_trainer(method, batch, data, device, hidden)
    x, y = next(trainer.data.train.batches(batch))
    for _ in range(10):  # warm-up: kernels, allocator, first-step bookkeeping
        trainer.train_step(x, y)
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(x, y)
    synchronize(device)
    rate = steps / (time.perf_counter() - started)
    if not device.startswith("cuda"):
        return {"steps_per_s": rate, "syncs_per_step": float("nan")}
    counted = 10
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for _ in range(counted):
                trainer.train_step(x, y)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    return {"steps_per_s": rate, "syncs_per_step": syncs / counted}


def speed_table(quick: bool, device: str = "cuda") -> None:
    steps = 30 if quick else 200
    hidden, batch = ((1024, 1024), 512) if device.startswith("cuda") else ((64,), 32)
    print(f"\n## Steps/s on {device} (64-{'-'.join(map(str, hidden))} MLP, batch {batch})\n")
    print("| T | method | steps/s | slowdown vs equal | (1+2T)/3 | slowdown / bound | host syncs / step |")
    print("|---|---|---|---|---|---|---|")
    for T in (3, 5):
        bound = (1 + 2 * T) / 3
        rows = {}
        for method in METHODS:
            try:
                rows[method] = measure(method, T, batch, steps, device, hidden)
            except Exception as exc:  # one failing method must not hide the others' numbers
                print(f"| {T} | {method} | failed: {type(exc).__name__}: {exc} | | | | |")
        equal = rows.get("equal", {}).get("steps_per_s", float("nan"))
        for method, r in rows.items():
            slowdown = equal / r["steps_per_s"]
            per_task = method not in ("equal", "static")
            print(f"| {T} | {method} | {r['steps_per_s']:.1f} | {slowdown:.2f} | {bound:.2f} | "
                  f"{slowdown / bound if per_task else float('nan'):.2f} | {r['syncs_per_step']:g} |")


def live_table(quick: bool) -> None:
    import bench_live

    epochs = 3 if quick else 30
    cfg = dataclasses.replace(bench_live.config(epochs), device="cuda")
    bench_live.headless(dataclasses.replace(cfg, epochs=1))
    headless = [bench_live.headless(cfg)["steps_per_s"] for _ in range(2)]
    live = [bench_live.live(cfg)["steps_per_s"] for _ in range(2)]
    h, v = statistics.median(headless), statistics.median(live)
    print("\n## The live lab on the GPU (bench_live's config, device cuda)\n")
    print(f"| run | steps/s |\n|---|---|\n| headless fit() | {h:.1f} |\n| Lab.train() with the live figure | {v:.1f} |")
    print(f"\nlive / headless = {v / h:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke test)")
    parser.add_argument("--skip-tests", action="store_true", help="do not run the CUDA tests")
    parser.add_argument("--dry-run-on-cpu", action="store_true",
                        help="check this script without a GPU: the speed table on the CPU, a tiny model, no sync count")
    args = parser.parse_args()
    if args.dry_run_on_cpu:
        speed_table(quick=True, device="cpu")
        return 0
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device (torch.cuda.is_available() is False): nothing to measure here. "
              "Run this script on a machine with an NVIDIA GPU and a CUDA build of torch.", file=sys.stderr)
        return 1
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, CUDA {torch.version.cuda}")
    status = 0
    if not args.skip_tests:
        print("\n## CUDA tests\n", flush=True)
        status = subprocess.call([sys.executable, "-m", "pytest", str(ROOT / "tests"), "-k", "cuda", "-q",
                                  "-o", "addopts=", "-p", "no:cacheprovider"], cwd=str(ROOT))
    speed_table(args.quick)
    try:
        live_table(args.quick)
    except Exception as exc:
        print(f"\nlive lab: not measured ({type(exc).__name__}: {exc})")
    return status


if __name__ == "__main__":
    sys.exit(main())
