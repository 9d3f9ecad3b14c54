"""Speed of the Trainer against a bare PyTorch loop doing the same maths, measured side by side.

Rows (each at T = 3 and 5 tasks, on a small and a compute-bound MLP):

* ``equal``        — one backward pass of Σ L_t. Bare loop vs Trainer (no diagnostics), and the Trainer
                     with diagnostics every 10 steps (what a learner sees by default).
* ``jacobian``     — the per-task-gradient step: ``G[T, P]`` by T backward passes, ``d = Gᵀ1``. Bare loop
                     (autograd.grad per task, flatten, assign) vs Trainer with a method that requires ``G``.
* ``gramian``      — a method that needs only ``K = GGᵀ``: Trainer on the Jacobian path vs the linear-layer
                     Gramian path that never forms ``G``.
* ``rep``          — a method on the representation gradients (MGDA-UB style) vs equal weighting.

The FLOP bound for materialising ``G`` is ``(1 + 2T)/3`` × an equal-weighting step (forward = 1 unit,
each backward = 2). Reported: steps/s (median of interleaved repeats), Trainer/bare ratio, and
measured/bound for the per-task rows. Run: ``python benchmarks/bench_core.py [--quick]``.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtl_lab import tasks  # noqa: E402
from mtl_lab.data.base import MultiTaskData  # noqa: E402
from mtl_lab.models import HardSharing  # noqa: E402
from mtl_lab.training import Trainer  # noqa: E402
from mtl_lab.weighting import Combination, Weighting  # noqa: E402

MODELS = {"small 64-256-256 b128": ((256, 256), 128), "compute-bound 64-1024-1024 b512": ((1024, 1024), 512)}


class OnesOn(Weighting):
    """Weights of 1 computed from whatever ``requires`` names: isolates the engine's cost."""

    name = "ones"

    def __init__(self, requires: str) -> None:
        super().__init__()
        self.requires = requires

    def combine(self, losses, grads, ctx) -> Combination:
        return Combination(torch.ones_like(losses))


def make_data(T: int, batch: int, steps: int) -> MultiTaskData:
    n = batch * steps + 2
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 64, generator=g)
    targets = {f"t{i}": torch.randint(0, 10, (n,), generator=g) for i in range(T)}
    task_list = [tasks.classification(f"t{i}", 10) for i in range(T)]
    return MultiTaskData.from_tensors(x, targets, task_list, val_fraction=0.0, test_fraction=1 / n, normalize=False)


def make_model(data: MultiTaskData, hidden: tuple[int, ...]) -> HardSharing:
    torch.manual_seed(0)
    return HardSharing(data.tasks, data.input_shape, hidden=hidden)


def bare_equal(model: HardSharing, data: MultiTaskData, batch: int, steps: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    names = data.task_names
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for x, y in data.train.batches(batch, shuffle=True, generator=g):
        out = model(x)
        loss = sum(torch.nn.functional.cross_entropy(out[n], y[n]) for n in names)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps -= 1
        if steps == 0:
            break
    return time.perf_counter() - start


def bare_jacobian(model: HardSharing, data: MultiTaskData, batch: int, steps: int) -> float:
    """The per-task gradient step written out by hand: T autograd.grad calls, flatten, d = Gᵀ1."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    names = data.task_names
    shared = model.shared_parameters()
    heads = [model.task_parameters(n) for n in names]
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for x, y in data.train.batches(batch, shuffle=True, generator=g):
        out = model(x)
        losses = [torch.nn.functional.cross_entropy(out[n], y[n]) for n in names]
        opt.zero_grad(set_to_none=True)
        rows = []
        for t, loss in enumerate(losses):
            grads = torch.autograd.grad(loss, shared + heads[t], retain_graph=True)
            rows.append(torch.cat([v.reshape(-1) for v in grads[: len(shared)]]))
            for p, v in zip(heads[t], grads[len(shared) :]):
                p.grad = v
        d = torch.stack(rows).sum(dim=0)
        offset = 0
        for p in shared:
            p.grad = d[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
        opt.step()
        steps -= 1
        if steps == 0:
            break
    return time.perf_counter() - start


def trainer_run(model, data, batch, steps, method: str | Weighting, **options) -> float:
    trainer = Trainer(model, data, method, epochs=10_000, batch_size=batch, evaluate=False, train_metrics=False,
                      device="cpu", **options)
    start = time.perf_counter()
    trainer.fit(max_steps=steps)
    return time.perf_counter() - start


def variant_seconds(kind: str, n: int, data: MultiTaskData, hidden: tuple[int, ...], batch: int, **opts) -> float:
    """Seconds for ``n`` steps of one variant on a freshly initialised model."""
    model = make_model(data, hidden)
    if kind == "bare_equal":
        return bare_equal(model, data, batch, n)
    if kind == "bare_jacobian":
        return bare_jacobian(model, data, batch, n)
    return trainer_run(model, data, batch, n, **opts)


def variant(kind: str, shape: dict, **opts):
    """A function of the step count that times one variant (``shape``: data, hidden widths, batch)."""
    return functools.partial(variant_seconds, kind, **shape, **opts)


def measure(fn, steps: int, repeats: int) -> float:
    """Median steps/s over ``repeats`` calls (after one warm-up call)."""
    fn(max(2, steps // 4))
    return statistics.median(steps / fn(steps) for _ in range(repeats))


def run(quick: bool = False) -> list[dict]:
    repeats = 3 if quick else 5
    rows = []
    for label, (hidden, batch) in MODELS.items():
        steps = 20 if "compute" in label else 60
        if quick:
            steps //= 2
        for T in (3, 5):
            data = make_data(T, batch, steps)

            shape = {"data": data, "hidden": hidden, "batch": batch}
            fns = {
                "bare equal": variant("bare_equal", shape),
                "Trainer equal": variant("t", shape, method="equal", diagnostics_every=0),
                "Trainer equal + diagnostics/10": variant("t", shape, method="equal", diagnostics_every=10),
                "bare jacobian": variant("bare_jacobian", shape),
                "Trainer jacobian": variant("t", shape, method=OnesOn("grads"), diagnostics_every=0),
                "Trainer gramian-method, G path": variant("t", shape, method=OnesOn("gramian"), diagnostics_every=0,
                                                         gradient_path="jacobian"),
                "Trainer gramian-method, K path": variant("t", shape, method=OnesOn("gramian"), diagnostics_every=0,
                                                         gradient_path="gramian"),
                "Trainer rep-grads (MGDA-UB style)": variant("t", shape, method=OnesOn("rep_grads"),
                                                             diagnostics_every=0),
            }
            sps = {name: [] for name in fns}
            for _ in range(repeats):  # interleaved: every variant once per round
                for name, fn in fns.items():
                    sps[name].append(measure(fn, steps, 1))
            med = {name: statistics.median(v) for name, v in sps.items()}
            bound = med["bare equal"] / ((1 + 2 * T) / 3)
            for name, value in med.items():
                ref = med["bare jacobian"] if ("jacobian" in name or "G path" in name or "K path" in name) else (
                    med["bare equal"])
                rows.append({
                    "model": label, "T": T, "variant": name, "steps_per_s": value,
                    "vs_bare": value / ref,
                    "vs_flop_bound": value / bound if name not in ("bare equal", "Trainer equal",
                                                                   "Trainer equal + diagnostics/10") else None,
                })
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | T | variant | steps/s | ratio to bare | measured / FLOP bound |", "|---|---|---|---|---|---|"]
    for r in rows:
        bound = f"{r['vs_flop_bound']:.2f}" if r["vs_flop_bound"] is not None else ""
        lines.append(f"| {r['model']} | {r['T']} | {r['variant']} | {r['steps_per_s']:.1f} | {r['vs_bare']:.3f} | "
                     f"{bound} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print("ratio to bare: Trainer / hand-written loop of the same maths (jacobian-type rows vs the bare jacobian loop)")
    print(table(run(args.quick)))


if __name__ == "__main__":
    main()
