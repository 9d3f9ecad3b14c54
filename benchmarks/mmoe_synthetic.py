"""MMoE's task-correlation study with the paper's set-up, repeated over seeds for confidence intervals.

Ma, Zhao, Yi, Chen, Hong and Chi, "Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018, section 5 (synthetic data). The question: as two tasks become
less related (the cosine ρ of their weight vectors falls from 1 to 0.5), does MMoE's loss rise less
than a shared-bottom model's? The paper's Figure 4 says yes (claim 2), and that every model does
better as ρ grows (claim 1).

Set-up, and where each choice comes from:

* data: :func:`mtl_lab.data.mmoe_synthetic` — the paper's generator (section 3.2) with its input size
  ``d = 100``, noise standard deviation 0.1 and 10 000 rows per setting (8 000 train, 1 000 val, 1 000
  test); ρ ∈ {0.5, 0.9, 1.0} as in Figure 4. A seed draws the data and the initialisation; datasets of
  one seed share everything but ρ, so the change across ρ is measured per seed (paired);
* models (section 5.1): **MMoE** and **OMoE** (one gate, the paper's "MoE") with 8 experts of one
  hidden layer of 16 ReLU units, towers of one hidden layer of 8 units; **shared-bottom**: one hidden
  layer whose width gives the MMoE's parameter count (within one unit), the same towers;
* training: equal weights (the sum of the two MSE losses), Adam at learning rate 1e-3 (the paper uses
  Adam and a grid of learning rates; 1e-3 is our pick from it), batch 128 (ours), ``--epochs`` passes;
* repeats: the paper averages 200 runs per setting; the 2-core budget allows ``--seeds`` (default 10).

Measured per run: the training loss of every epoch (the mean batch MSE of the two tasks, what the
paper's Figure 4 plots) and the test MSE at the end. For each model and seed the **gap** is
``L(ρ = 0.5) − L(ρ = 1)``, and the **relative gap** ``L(ρ = 0.5) / L(ρ = 1) − 1`` (scale-free: the
spread of the labels, hence of every loss, changes from seed to seed with the sines' constants). Claim
2 compares shared-bottom and MMoE seed by seed: the mean of ``gap_shared-bottom − gap_MMoE`` with a 95 %
confidence interval (Student's t over seeds), for both gaps. The claim is supported when the whole
interval lies above 0, contradicted when below, undecided otherwise.

Run: ``python benchmarks/mmoe_synthetic.py [--quick] [--seeds N] [--epochs N] [--jobs N] [--omoe]``.
The default (8 seeds, 6 epochs, shared-bottom and MMoE, 2 processes) takes about 4 minutes on 2 busy
cores; ``--quick`` (3 seeds, 3 epochs) about a minute. ``--json PATH`` also writes every run's numbers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtl_lab.data import mmoe_synthetic  # noqa: E402
from mtl_lab.models import HardSharing, MMoE  # noqa: E402
from mtl_lab.models.experts import PAPER_EXPERT_HIDDEN, PAPER_TOWER_HIDDEN  # noqa: E402
from mtl_lab.training import build_trainer  # noqa: E402

CORRELATIONS = (0.5, 0.9, 1.0)
NUM_EXPERTS = 8
N_ROWS = 10_000
# two-sided 95 % quantiles of Student's t for 1 … 30 degrees of freedom
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)  # fmt: skip


def moe_options() -> dict:
    """The paper's expert and tower sizes."""
    return {"num_experts": NUM_EXPERTS, "hidden": PAPER_EXPERT_HIDDEN, "tower_hidden": PAPER_TOWER_HIDDEN}


def matched_width(data) -> int:
    """The shared-bottom hidden width whose parameter count is closest to the MMoE's."""
    target = MMoE(data.tasks, data.input_shape, **moe_options()).parameter_count()["total"]

    def count(width: int) -> int:
        model = HardSharing(data.tasks, data.input_shape, hidden=(width,), head_hidden=PAPER_TOWER_HIDDEN)
        return model.parameter_count()["total"]

    return min(range(8, 1024), key=lambda w: abs(count(w) - target))


def architecture(model: str, width: int) -> tuple[str, dict]:
    """Registry name and options of one of the models."""
    if model == "shared_bottom":
        return "hard", {"hidden": (width,), "head_hidden": PAPER_TOWER_HIDDEN}
    return model, moe_options()


def run_one(job: tuple[str, float, int, int, int]) -> tuple[list[float], float, int]:
    """One run ``(model, ρ, seed, epochs, width)``: training loss per epoch, test MSE, parameter count."""
    model, rho, seed, epochs, width = job
    torch.set_num_threads(1)
    data = mmoe_synthetic(correlation=rho, n=N_ROWS, seed=seed)
    arch, options = architecture(model, width)
    trainer = build_trainer(
        data, arch, "equal", model_options=options, epochs=epochs, batch_size=128, lr=1e-3, seed=seed,
        diagnostics_every=0, train_metrics=False, evaluate=False, device="cpu",
    )  # fmt: skip
    history = trainer.fit()
    train = [statistics.mean(e["train_loss"].values()) for e in history.epochs]
    test = statistics.mean(history.meta["test_loss"].values())
    return train, test, trainer.model.parameter_count()["total"]


def run_study(models: tuple[str, ...], seeds: list[int], epochs: int, jobs: int) -> tuple[dict, dict, dict]:
    """``{(model, ρ): [per-seed training-loss curves]}``, ``{(model, ρ): [per-seed test MSE]}``, ``{model: size}``."""
    width = matched_width(mmoe_synthetic(correlation=0.5, n=N_ROWS, seed=0))
    work = [(model, rho, seed, epochs, width) for model in models for rho in CORRELATIONS for seed in seeds]
    if jobs > 1:
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            answers = pool.map(run_one, work, chunksize=1)
    else:
        answers = [run_one(job) for job in work]
    curves: dict[tuple[str, float], list[list[float]]] = {}
    tests: dict[tuple[str, float], list[float]] = {}
    sizes: dict[str, int] = {}
    for (model, rho, _, _, _), (train, test, count) in zip(work, answers):
        curves.setdefault((model, rho), []).append(train)
        tests.setdefault((model, rho), []).append(test)
        sizes[model] = count
    return curves, tests, sizes


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % confidence interval (Student's t)."""
    mean = statistics.mean(values)
    if len(values) < 2:
        return mean, float("nan")
    df = len(values) - 1
    t = T975[df - 1] if df <= len(T975) else 1.96
    return mean, t * statistics.stdev(values) / len(values) ** 0.5


def fmt(values: list[float]) -> str:
    mean, half = mean_ci(values)
    return f"{mean:.3f} ± {half:.3f}"


def verdict(values: list[float]) -> str:
    mean, half = mean_ci(values)
    if mean - half > 0:
        return "supported (95 % CI above 0)"
    if mean + half < 0:
        return "contradicted (95 % CI below 0)"
    return "not decided (95 % CI contains 0)"


def report(losses: dict, models: tuple[str, ...], sizes: dict, what: str) -> str:
    """Mean ± 95 % CI of ``what`` per model and ρ, the per-seed gaps, and claim 2 checked pairwise."""
    head = f"| model | params | {' | '.join(f'ρ = {r}' for r in CORRELATIONS)} | gap ρ=0.5 − ρ=1 |"
    lines = [f"{what} (mean ± 95 % CI over seeds):", "", head, "|" + "---|" * (len(CORRELATIONS) + 3)]
    lines[2] += " relative gap % |"
    lines[3] += "---|"
    gaps, relative = {}, {}
    for model in models:
        low, high = losses[(model, CORRELATIONS[0])], losses[(model, CORRELATIONS[-1])]
        gaps[model] = [a - b for a, b in zip(low, high)]
        relative[model] = [100.0 * (a / b - 1.0) for a, b in zip(low, high)]
        cells = " | ".join(fmt(losses[(model, r)]) for r in CORRELATIONS)
        lines.append(f"| {model} | {sizes[model]} | {cells} | {fmt(gaps[model])} | {fmt(relative[model])} |")
    difference = [s - m for s, m in zip(gaps["shared_bottom"], gaps["mmoe"])]
    relative_difference = [s - m for s, m in zip(relative["shared_bottom"], relative["mmoe"])]
    falls = {m: statistics.mean(losses[(m, CORRELATIONS[0])]) > statistics.mean(losses[(m, CORRELATIONS[-1])])
             for m in models}  # fmt: skip
    lines += [
        "",
        f"claim 1, loss lower at ρ = 1 than at ρ = 0.5 (means): {falls}",
        f"claim 2, gap(shared-bottom) − gap(MMoE) = {fmt(difference)}: {verdict(difference)}",
        f"claim 2, relative gap(shared-bottom) − relative gap(MMoE) = {fmt(relative_difference)} points: "
        f"{verdict(relative_difference)}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, 3 epochs (smoke run)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 8, quick 3)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 6, quick 3)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes, one thread each (default 2)")
    parser.add_argument("--omoe", action="store_true", help="also train the one-gate OMoE")
    parser.add_argument("--json", default=None, help="write every run's training curve and test MSE here")
    args = parser.parse_args()
    seeds = list(range(args.seeds or (3 if args.quick else 8)))
    epochs = args.epochs or (3 if args.quick else 6)
    models = ("shared_bottom", "omoe", "mmoe") if args.omoe else ("shared_bottom", "mmoe")
    started = time.perf_counter()
    curves, tests, sizes = run_study(models, seeds, epochs, max(1, args.jobs))
    print(f"MMoE synthetic study: {N_ROWS} rows per ρ (8000 train), {epochs} epochs, Adam 1e-3, batch 128, "
          f"{len(seeds)} seeds")  # fmt: skip
    for epoch in sorted({1, max(1, epochs // 2), epochs}):
        at = {key: [curve[epoch - 1] for curve in runs] for key, runs in curves.items()}
        print()
        print(report(at, models, sizes, f"training loss, epoch {epoch}"))
    print()
    print(report(tests, models, sizes, f"test MSE after epoch {epochs}"))
    if args.json:
        runs = [{"model": m, "rho": r, "seed": s, "train_loss": curves[(m, r)][i], "test_mse": tests[(m, r)][i]}
                for (m, r) in curves for i, s in enumerate(seeds)]  # fmt: skip
        Path(args.json).write_text(json.dumps({"sizes": sizes, "epochs": epochs, "runs": runs}, indent=1))
    print(f"\nwall time {time.perf_counter() - started:.1f} s with {args.jobs} process(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
