"""Per-step cost of every weighting method, next to a naive loop and TorchJD, measured side by side.

For each model (the digits-sized MLP 64-256-256 at batch 128, and a compute-bound MLP 64-1024-1024 at
batch 512) and T = 3 and 5 tasks, every registered method runs in the Trainer (diagnostics off) and its
time per step is divided by the Trainer's equal-weighting step. Next to it, for the methods that need
per-task gradients:

* naive — the LibMTL-style loop: T ``backward()`` calls, zeroing the shared gradients in between,
  flattening and copying each task's gradient (a ``.cpu()`` round trip), then the same method maths;
* TorchJD — ``mtl_backward`` + ``jac_to_grad`` with TorchJD's aggregator of the same method, and, for
  Gramian-based weightings, TorchJD's ``autogram.Engine`` on the trunk followed by ``losses.backward(w)``.

Both loops use ``torch.optim.Adam`` as their authors' examples do (PyTorch's CPU default: the per-tensor
loop); the Trainer uses the fused Adam (``training/setup.py``). ``--same-optimizer`` gives both loops the
fused Adam too, which leaves only the step's own work (per-task gradients, the method, the update, and the
Trainer's non-finite guard and records) to compare.

Goals (issue "method zoo"): no method above the FLOP bound of the per-task Jacobian ``(1 + 2T)/3`` plus
10 %; at least as fast as naive and TorchJD on every row; ``mgda_ub`` within 1.3× of equal weighting.
Run: ``python benchmarks/bench_methods.py [--quick] [--methods a,b] [--models digits|compute-bound]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_core import make_data, make_model  # noqa: E402

from mtl_lab.training import Trainer  # noqa: E402
from mtl_lab.weighting import METHODS, StepContext, create  # noqa: E402

MODELS = {
    "digits MLP 64-256-256 b128": ((256, 256), 128, 30),
    "compute-bound 64-1024-1024 b512": ((1024, 1024), 512, 8),
}
TORCHJD_AGGREGATORS = {
    "equal": ("Mean", {}), "rlw": ("Random", {}), "mgda": ("MGDA", {}), "pcgrad": ("PCGrad", {}),
    "gradvac": ("GradVac", {}), "cagrad": ("CAGrad", {"c": 0.5}), "imtl_g": ("IMTLG", {}),
    "nash_mtl": ("NashMTL", {"n_tasks": None}), "aligned_mtl": ("AlignedMTL", {}), "upgrad": ("UPGrad", {}),
    "dualproj": ("DualProj", {}), "graddrop": ("GradDrop", {}),
    "fairgrad": ("FairGrad", {"alpha": 1.0}), "config": ("ConFIG", {}), "pcd": ("PCD", {}),
    "excess_mtl": ("ExcessMTL", {}), "cr_mogm": ("GramianWeightedAggregator", {}),
}
TORCHJD_WEIGHTINGS = {
    "mgda": ("MGDAWeighting", {}), "upgrad": ("UPGradWeighting", {}), "imtl_g": ("IMTLGWeighting", {}),
    "cagrad": ("CAGradWeighting", {"c": 0.5}), "aligned_mtl": ("AlignedMTLWeighting", {}),
    "dualproj": ("DualProjWeighting", {}), "fairgrad": ("FairGradWeighting", {"alpha": 1.0}),
    "pcd": ("PCDWeighting", {}), "cr_mogm": ("CRMOGMWeighting", {}),
}
# TorchJD's CR-MOGM wraps another weighting: ours defaults to MGDA inside, so theirs gets MGDA too
TORCHJD_WRAPPED = {"cr_mogm": "MGDAWeighting"}


def trainer_runner(data, hidden, batch, method):
    """A function ``run(steps)`` that trains one persistent Trainer for ``steps`` more steps.

    Each block continues one run through the Trainer's loop (``train_until``: batches, the step, the records),
    like the naive loop's blocks. ``fit(max_steps=…)`` per block would also end a run every block (the test
    split's evaluation, the History's meta, the end event): about 1.5 ms per call, 2 % of a 30-step block of
    the small model, which a run pays once, not once per 30 steps.
    """
    model = make_model(data, hidden)
    trainer = Trainer(model, data, method, epochs=10_000, batch_size=batch, evaluate=False, train_metrics=False,
                      diagnostics_every=0, device="cpu")
    trainer.fit(max_steps=2)  # warm-up (first-step work, allocator) and the run's start

    def run(steps: int) -> None:
        trainer.train_until(steps)

    return run


def batches(data, batch):
    g = torch.Generator().manual_seed(0)
    while True:
        yield from data.train.batches(batch, shuffle=True, generator=g)


def adam(model: torch.nn.Module, fused: bool) -> torch.optim.Adam:
    """A loop's optimiser: PyTorch's CPU default (the per-tensor loop), or the Trainer's fused one."""
    return torch.optim.Adam(model.parameters(), lr=1e-3, fused=True if fused else None)


def naive_runner(data, hidden, batch, method_name, fused: bool):
    """LibMTL-style: one backward() per task, shared grads zeroed in between, flattened and copied."""
    model = make_model(data, hidden)
    opt = adam(model, fused)
    method = create(method_name)
    method.reset(data.task_names)
    shared = model.shared_parameters()
    feed = batches(data, batch)
    ctx = StepContext()

    def step():
        x, y = next(feed)
        out = model(x)
        losses = [torch.nn.functional.cross_entropy(out[n], y[n]) for n in data.task_names]
        opt.zero_grad()
        rows = []
        for loss in losses:
            for p in shared:
                p.grad = None
            loss.backward(retain_graph=True)
            rows.append(torch.cat([p.grad.detach().clone().reshape(-1) for p in shared]).cpu())
        G = torch.stack(rows)
        L = torch.stack([loss.detach() for loss in losses])
        need = method.requires
        combination = method.combine(L, G @ G.T if need == "gramian" else G, ctx)
        d = combination.direction if combination.direction is not None else combination.weights.to(G.dtype) @ G
        offset = 0
        for p in shared:
            p.grad = d[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        opt.step()

    return warmed(step)


def torchjd_runner(data, hidden, batch, method_name, engine: bool, fused: bool):
    import torchjd.aggregation as jd
    from torchjd.autojac import jac_to_grad, mtl_backward

    model = make_model(data, hidden)
    opt = adam(model, fused)
    shared = model.shared_parameters()
    heads = [model.task_parameters(n) for n in data.task_names]
    feed = batches(data, batch)
    if engine:
        from torchjd.autogram import Engine

        gram_engine = Engine(model.trunk, batch_dim=None)
        name, options = TORCHJD_WEIGHTINGS[method_name]
        weighting = getattr(jd, name)(*wrapped(jd, method_name), **options)
    else:
        name, options = TORCHJD_AGGREGATORS[method_name]
        options = {k: (len(data.tasks) if v is None else v) for k, v in options.items()}
        if method_name in TORCHJD_WRAPPED:
            aggregator = getattr(jd, name)(jd.CRMOGMWeighting(*wrapped(jd, method_name)))
        else:
            aggregator = getattr(jd, name)(**options)

    def step():
        x, y = next(feed)
        rep = model.encode(x)
        out = model.decode(rep)
        losses = [torch.nn.functional.cross_entropy(out[n], y[n]) for n in data.task_names]
        opt.zero_grad()
        if engine:
            stacked = torch.stack(losses)
            gramian = gram_engine.compute_gramian(stacked)
            stacked.backward(weighting(gramian))
        else:
            mtl_backward(losses, features=rep, tasks_params=heads, shared_params=shared)
            jac_to_grad(shared, aggregator)
        opt.step()

    return warmed(step)


def wrapped(jd, method_name: str) -> list:
    """The inner TorchJD weighting of a wrapper method (CR-MOGM), or nothing."""
    return [getattr(jd, TORCHJD_WRAPPED[method_name])()] if method_name in TORCHJD_WRAPPED else []


def warmed(step):
    """``run(steps)`` for a single-step function, after two warm-up steps."""
    for _ in range(2):
        step()

    def run(steps: int) -> None:
        for _ in range(steps):
            step()

    return run


def variants_of(data, hidden, batch, methods: list[str], fused: bool) -> dict[tuple[str, str], object]:
    """Every (method, implementation) pair to time, each a persistent ``run(steps)`` function (``fused``: the
    loops take the Trainer's fused Adam)."""
    runners = {}
    for m in methods:
        runners[(m, "mtl_lab")] = trainer_runner(data, hidden, batch, m)
        if METHODS[m].requires in ("grads", "gramian"):
            runners[(m, "naive")] = naive_runner(data, hidden, batch, m, fused)
        if m in TORCHJD_AGGREGATORS:
            runners[(m, "torchjd")] = torchjd_runner(data, hidden, batch, m, engine=False, fused=fused)
        if m in TORCHJD_WEIGHTINGS:
            runners[(m, "torchjd autogram")] = torchjd_runner(data, hidden, batch, m, engine=True, fused=fused)
    return runners


def run(quick: bool, only: list[str] | None, rounds: int | None = None, models: str | None = None,
        fused: bool = False) -> list[dict]:
    """Interleaved rounds: each round times every variant once for a block of steps.

    Reported per row: the median over rounds of the time per step, the median over rounds of the
    ratio to the same round's equal-weighting step (drifts of the machine's speed cancel in a ratio
    of neighbours), and for the other implementations the median over rounds of the paired ratio
    ``ours ÷ theirs`` with its range over the rounds.
    """
    rounds = rounds or (1 if quick else 7)
    # Auto-λ reads a validation batch every step; the synthetic benchmark data have no validation split
    methods = [m for m in METHODS if m != "static" and METHODS[m].requires != "lookahead"
               and (only is None or m in only or m == "equal")]
    rows = []
    for label, (hidden, batch, steps) in MODELS.items():
        if models is not None and not label.startswith(models):
            continue
        steps = max(3, steps // 3) if quick else steps
        for T in (3, 5):
            data = make_data(T, batch, steps + 4)
            runners = variants_of(data, hidden, batch, methods, fused)
            seconds: dict[tuple[str, str], list[float]] = {key: [] for key in runners}
            for _ in range(rounds):
                for key, runner in runners.items():
                    start = time.perf_counter()
                    runner(steps)
                    seconds[key].append((time.perf_counter() - start) / steps)
            equal = seconds[("equal", "mtl_lab")]
            for m in methods:
                ours = seconds[(m, "mtl_lab")]
                row = {"model": label, "T": T, "method": m, "ms": 1000 * statistics.median(ours),
                       "ratio": paired(ours, equal), "bound": (1 + 2 * T) / 3, "requires": METHODS[m].requires}
                for other in ("naive", "torchjd", "torchjd autogram"):
                    if (m, other) in seconds:
                        theirs = seconds[(m, other)]
                        row[other] = paired(theirs, equal)
                        row[f"ours/{other}"] = paired(ours, theirs)
                        row[f"ours/{other} range"] = spread(ours, theirs)
                rows.append(row)
    return rows


def paired(a: list[float], b: list[float]) -> float:
    """Median over rounds of ``a[i] / b[i]``."""
    return statistics.median(x / y for x, y in zip(a, b))


def spread(a: list[float], b: list[float]) -> tuple[float, float]:
    """Smallest and largest ``a[i] / b[i]`` over the rounds."""
    ratios = [x / y for x, y in zip(a, b)]
    return min(ratios), max(ratios)


def goal(row: dict) -> float:
    """The row's limit as a ratio to equal weighting.

    Methods that need per-task gradients: the issue's FLOP bound of the per-task Jacobian,
    ``(1 + 2T)/3``, plus 10 %. ``mgda_ub``: 1.3. Loss-only methods: 1.1 (they need nothing but the
    losses), except FAMO, which by design evaluates the losses once more after the step (a forward pass
    without gradients, a third of a step): ``4/3`` plus 10 %.
    """
    if row["method"] == "mgda_ub":
        return 1.3
    if row["requires"] == "losses":
        return 1.1 * 4 / 3 if row["method"] == "famo" else 1.1
    return 1.1 * row["bound"]


def table(rows: list[dict]) -> str:
    head = ("| model | T | method | needs | ms/step | × equal | goal | naive × equal | TorchJD × equal | "
            "TorchJD autogram × equal | ours ÷ naive | ours ÷ TorchJD | ours ÷ autogram |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        limit = goal(r)
        ok = "ok" if r["ratio"] <= limit else "OVER"
        cells = [r["model"], str(r["T"]), r["method"], r["requires"], f"{r['ms']:.2f}", f"{r['ratio']:.2f}",
                 f"{limit:.2f} {ok}"]
        cells += [f"{r[k]:.2f}" if k in r else "" for k in ("naive", "torchjd", "torchjd autogram")]
        for k in ("naive", "torchjd", "torchjd autogram"):
            if f"ours/{k}" in r:
                low, high = r[f"ours/{k} range"]
                cells.append(f"{r[f'ours/{k}']:.2f} [{low:.2f}–{high:.2f}]")
            else:
                cells.append("")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    """How many rows meet each goal."""
    over = [f"{r['model'].split()[0]} T={r['T']} {r['method']} ({r['ratio']:.2f} > {goal(r):.2f})"
            for r in rows if r["ratio"] > goal(r)]
    lines = [f"rows within their goal: {len(rows) - len(over)} of {len(rows)}" + (f"; over: {', '.join(over)}"
                                                                                   if over else "")]
    for k, name in (("naive", "the naive loop"), ("torchjd", "TorchJD"), ("torchjd autogram", "TorchJD autogram")):
        compared = [r for r in rows if f"ours/{k}" in r]
        faster = [r for r in compared if r[f"ours/{k}"] <= 1.0]
        slower = [f"{r['model'].split()[0]} T={r['T']} {r['method']} {r[f'ours/{k}']:.2f}"
                  for r in compared if r[f"ours/{k}"] > 1.0]
        lines.append(f"as fast as {name} (median paired ratio ≤ 1): {len(faster)} of {len(compared)}"
                     + (f"; slower: {', '.join(slower)}" if slower else ""))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, fewer steps")
    parser.add_argument("--methods", default=None, help="comma-separated subset (equal is always measured)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7, 1 with --quick)")
    parser.add_argument("--models", default=None, choices=("digits", "compute-bound"), help="only this model")
    parser.add_argument("--same-optimizer", action="store_true",
                        help="the naive and TorchJD loops take the Trainer's fused Adam too")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # solver notices from optional packages would flood the table
    only = args.methods.split(",") if args.methods else None
    optimiser = "fused Adam in every loop" if args.same_optimizer else "the loops on PyTorch's default Adam"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; medians of interleaved rounds; "
          f"{optimiser}")
    rows = run(args.quick, only, args.rounds, args.models, args.same_optimizer)
    print(table(rows))
    print()
    print(summary(rows))


if __name__ == "__main__":
    main()
