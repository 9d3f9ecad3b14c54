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
5. **Dense, NYUv2-shaped** — random tensors in MTAN's NYUv2 shapes (288×384 images, 13-class labels with
   ignored pixels, depth with holes, unit normals), batch 8, SegNet-lite and MTAN-dense (``channels``
   (16, 32, 64)): steps/s of equal, a loss method (uncertainty), the gradient engine alone, a gradient
   method (PCGrad) on the parameters and PCGrad on the representation (``rep_grads``: the feature map),
   peak GPU memory of the step (``torch.cuda.max_memory_allocated`` after a reset), the size of the
   per-task matrix the engine builds (``G[T, P]`` or ``Z[T, B·D]``), and host syncs per step.

Without CUDA the script says so and exits with status 1. Run:
``python benchmarks/gpu_check.py [--quick] [--skip-tests] [--dense-only]``; on a CPU,
``--dry-run-on-cpu --dense-size 32x48`` checks both tables at a tiny size (no sync counts; each dense
row runs in its own process and its peak resident memory is reported).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
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
from mtl_lab.models import HardSharing, build_model  # noqa: E402
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


DENSE_ROWS = [("equal", False), ("uncertainty", False), ("engine", False), ("pcgrad", False), ("pcgrad", True)]
DENSE_ARCHS = {"segnet_lite": "SegNet-lite", "mtan_dense": "MTAN-dense"}


def nyuv2_like(height: int, width: int, rows: int) -> MultiTaskData:
    """Random tensors with NYUv2's shapes and conventions (13 classes, −1 ignore, depth 0 and normal 0 holes)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(rows, 3, height, width, generator=g)
    label = torch.randint(-1, 13, (rows, height, width), generator=g)
    depth = torch.rand(rows, 1, height, width, generator=g) * 10
    depth[torch.rand(rows, 1, height, width, generator=g) < 0.1] = 0.0
    normal = torch.nn.functional.normalize(torch.randn(rows, 3, height, width, generator=g), dim=1)
    normal = normal * (depth > 0)
    task_list = [tasks.segmentation("segmentation", 13), tasks.depth("depth"), tasks.normals("normal")]
    return MultiTaskData.from_tensors(x, {"segmentation": label, "depth": depth, "normal": normal}, task_list,
                                      val_fraction=0.0, test_fraction=1 / rows, normalize=False)


def measure_dense(arch: str, method: str, rep_grads: bool, data: MultiTaskData, batch: int, steps: int,
                  device: str) -> dict:
    torch.manual_seed(0)
    model = build_model(arch, data, channels=(16, 32, 64))
    weighting = EngineOnly() if method == "engine" else method
    trainer = Trainer(model, data, weighting, device=device, batch_size=batch, diagnostics_every=0,
                      record_every=10**6, evaluate=False, train_metrics=False, rep_grads=rep_grads)
    x, y = next(trainer.data.train.batches(batch))
    if device.startswith("cuda"):
        x, y = x.to(device), {k: v.to(device) for k, v in y.items()}
    for _ in range(3):
        trainer.train_step(x, y)
    synchronize(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(x, y)
    synchronize(device)
    rate = steps / (time.perf_counter() - started)
    shared = sum(p.numel() for p in model.shared_parameters())
    with torch.no_grad():
        rep = model.encode(x[:1]).numel() * x.shape[0]
    per_task = {"engine": shared, "pcgrad": rep if rep_grads else shared}.get(method, 0)  # G: [T, P]; Z: [T, B·D]
    row = {"steps_per_s": rate, "matrix_mb": 3 * per_task * 4 / 2**20, "peak_mb": float("nan"),
           "syncs_per_step": float("nan")}
    if not device.startswith("cuda"):  # run alone in its process (see cpu_row): the peak RSS above the start
        import resource

        row["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - START_RSS_MB
    if device.startswith("cuda"):
        row["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                for _ in range(5):
                    trainer.train_step(x, y)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        row["syncs_per_step"] = sum("synchroniz" in str(w.message) for w in caught) / 5
    return row


def dense_table(quick: bool, device: str = "cuda", size: tuple[int, int] = (288, 384), batch: int = 8) -> None:
    steps = 5 if quick else 30
    data = nyuv2_like(*size, rows=batch + 1)
    print(f"\n## Dense, NYUv2-shaped ({size[0]}×{size[1]}, batch {batch}, channels (16, 32, 64)) on {device}\n")
    print("| model | method | steps/s | slowdown vs equal | peak MB | G or Z MB | host syncs / step |")
    print("|---|---|---|---|---|---|---|")
    for arch, label in DENSE_ARCHS.items():
        equal = float("nan")
        for method, rep_grads in DENSE_ROWS:
            name = method + (" (rep_grads)" if rep_grads else "")
            try:
                if device.startswith("cuda"):
                    r = measure_dense(arch, method, rep_grads, data, batch, steps, device)
                else:
                    r = cpu_row(arch, method, rep_grads, size, batch, steps)
            except Exception as exc:  # one failing row must not hide the others
                print(f"| {label} | {name} | failed: {type(exc).__name__}: {exc} | | | | |")
                continue
            equal = r["steps_per_s"] if method == "equal" else equal
            print(f"| {label} | {name} | {r['steps_per_s']:.2f} | {equal / r['steps_per_s']:.2f} | "
                  f"{r['peak_mb']:.0f} | {r['matrix_mb']:.1f} | {r['syncs_per_step']:g} |", flush=True)
    if not device.startswith("cuda"):
        print("\nOn the CPU each row runs in its own process; peak MB = its peak resident memory above what it "
              "held before building the data and model (interpreter and torch excluded).")


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


START_RSS_MB = 0.0


def cpu_row(arch: str, method: str, rep_grads: bool, size: tuple[int, int], batch: int, steps: int) -> dict:
    """One dense row measured in a fresh process, so that its peak memory is its own."""
    command = [sys.executable, __file__, "--cpu-row", json.dumps([arch, method, rep_grads, list(size), batch, steps])]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_cpu_row(spec: str) -> None:
    global START_RSS_MB
    arch, method, rep_grads, size, batch, steps = json.loads(spec)
    torch.set_num_threads(1)
    START_RSS_MB = current_rss_mb()
    data = nyuv2_like(*size, rows=batch + 1)
    print(json.dumps(measure_dense(arch, method, rep_grads, data, batch, steps, "cpu")))


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--dense-size must be HxW (e.g. 288x384), got {text!r}") from None
    if h < 8 or w < 8 or h % 8 or w % 8:
        raise SystemExit(f"--dense-size sides must be multiples of 8 (three pooling stages), got {text!r}")
    return h, w


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
    parser.add_argument("--dense-only", action="store_true", help="only the dense (NYUv2-shaped) table")
    parser.add_argument("--cpu-row", default=None, help=argparse.SUPPRESS)  # one dense row, in its own process
    parser.add_argument("--dense-size", default="288x384", help="image size HxW of the dense table (default 288x384)")
    args = parser.parse_args()
    if args.cpu_row:
        run_cpu_row(args.cpu_row)
        return 0
    size = parse_size(args.dense_size)
    if args.dry_run_on_cpu:
        torch.set_num_threads(1)  # a shared CPU: one thread keeps the rows comparable
        if not args.dense_only:
            speed_table(quick=True, device="cpu")
        dense_table(quick=True, device="cpu", size=size)
        return 0
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device (torch.cuda.is_available() is False): nothing to measure here. "
              "Run this script on a machine with an NVIDIA GPU and a CUDA build of torch.", file=sys.stderr)
        return 1
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, CUDA {torch.version.cuda}")
    if args.dense_only:
        dense_table(args.quick, size=size)
        return 0
    status = 0
    if not args.skip_tests:
        print("\n## CUDA tests\n", flush=True)
        status = subprocess.call([sys.executable, "-m", "pytest", str(ROOT / "tests"), "-k", "cuda", "-q",
                                  "-o", "addopts=", "-p", "no:cacheprovider"], cwd=str(ROOT))
    speed_table(args.quick)
    dense_table(args.quick, size=size)
    try:
        live_table(args.quick)
    except Exception as exc:
        print(f"\nlive lab: not measured ({type(exc).__name__}: {exc})")
    return status


if __name__ == "__main__":
    sys.exit(main())
